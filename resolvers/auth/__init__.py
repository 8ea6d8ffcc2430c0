"""Authentication: logging in and out (password with lockout, TOTP, WeChat), sessions and rotating refresh
tokens, and one's own account.

login.py     password login, the lockout, changing one's password
sessions.py  sessions, access and refresh tokens, logout, revoking a user's sessions
totp.py      two-factor enrolment and codes
wechat.py    the mini-program's login through WeChat's jscode2session
profile.py   `me`, completing one's profile, the rules for usernames, names and phone numbers
"""

from resolvers.auth.login import change_password, login
from resolvers.auth.profile import ProfileInput, complete_profile, current_user
from resolvers.auth.sessions import CONSOLE, MINI_PROGRAM, Tokens, logout, refresh, revoke_sessions
from resolvers.auth.totp import TotpEnrollment, confirm_totp, disable_totp, enroll_totp
from resolvers.auth.wechat import wechat_login

__all__ = [
    "CONSOLE",
    "MINI_PROGRAM",
    "ProfileInput",
    "Tokens",
    "TotpEnrollment",
    "change_password",
    "complete_profile",
    "confirm_totp",
    "current_user",
    "disable_totp",
    "enroll_totp",
    "login",
    "logout",
    "refresh",
    "revoke_sessions",
    "wechat_login",
]
