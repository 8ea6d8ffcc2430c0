"""WeChat mini-program login: `jscode2session` turns a login code into the user's openid, and the openid into
an account (created, with no role, on first sight: system work, the caller is nobody yet).

In demo mode with no WeChat credentials configured, a built-in stand-in answers instead of WeChat, so the
mini-program path works out of the box (`make run`): the code `demo-<name>` is the openid `demo-<name>-openid`
(`demo-patient` logs in as the demo patient, bound to the first demo patient record; any other name is a new
account on first use). Outside demo mode, unconfigured WeChat is NOT_CONFIGURED naming the settings."""

from __future__ import annotations

import logging
import re

import httpx

from core.errors import AppError, ErrorCode, bad_input, unauthenticated
from core.settings import Settings
from models.user import User, UserStatus
from resolvers.audit import logins
from resolvers.auth.sessions import MINI_PROGRAM, Tokens, open_session
from resolvers.data.context import Context

log = logging.getLogger(__name__)

# https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/user-login/code2Session.html
_INVALID_CODE = {40029, 40163, 40226}
_RATE_LIMITED = 45011

# The demo stand-in's codes: `demo-` and a name of letters, digits and dashes.
DEMO_CODE = re.compile(r"^demo-([a-z0-9][a-z0-9-]{0,39})$")
WECHAT_SETTINGS = ["WECHAT_APP_ID", "WECHAT_APP_SECRET"]


def demo_openid(code: str) -> str:
    """The demo stand-in's answer: `demo-<name>` -> `demo-<name>-openid`; any other code is refused, as WeChat
    refuses an invalid one."""
    found = DEMO_CODE.match(code.strip().lower())
    if found is None:
        raise bad_input("Invalid WeChat login code (the demo stand-in takes demo-<name>, e.g. demo-patient)", "code")
    return f"demo-{found.group(1)}-openid"


def uses_demo_stand_in(settings: Settings) -> bool:
    """Demo mode with no WeChat credentials: the built-in stand-in answers instead of WeChat."""
    return settings.app_mode == "demo" and not settings.wechat_app_id


async def openid_for(settings: Settings, code: str) -> str:
    """The openid behind a `wx.login()` code: from WeChat, or from the demo stand-in."""
    if uses_demo_stand_in(settings):
        return demo_openid(code)
    if not settings.wechat_app_id or not settings.wechat_app_secret.get_secret_value():
        raise AppError(
            ErrorCode.NOT_CONFIGURED,
            "WeChat login is not configured on this server: set WECHAT_APP_ID and WECHAT_APP_SECRET",
            settings=WECHAT_SETTINGS,
        )
    return await exchange_code(settings, code)


async def exchange_code(settings: Settings, code: str) -> str:
    code = code.strip()
    if not code or len(code) > 128:
        raise bad_input("Invalid WeChat login code", "code")
    params = {
        "appid": settings.wechat_app_id,
        "secret": settings.wechat_app_secret.get_secret_value(),
        "js_code": code,
        "grant_type": "authorization_code",
    }
    try:
        async with httpx.AsyncClient(
            base_url=settings.wechat_api_base, timeout=settings.wechat_timeout_seconds
        ) as client:
            response = await client.get("/sns/jscode2session", params=params)
        payload = response.json()
    except httpx.TimeoutException as error:
        log.warning("WeChat jscode2session timed out")
        raise AppError(ErrorCode.INTERNAL, "WeChat did not answer in time; try again") from error
    except (httpx.HTTPError, ValueError) as error:
        log.warning("WeChat jscode2session failed: %s", type(error).__name__)
        raise AppError(ErrorCode.INTERNAL, "WeChat login is unavailable; try again later") from error
    errcode = int(payload.get("errcode") or 0) if isinstance(payload, dict) else -1
    if errcode in _INVALID_CODE:
        raise bad_input("Invalid or expired WeChat login code", "code")
    if errcode == _RATE_LIMITED:
        raise AppError(ErrorCode.RATE_LIMITED, "WeChat login is busy; try again shortly", retryAfter=60)
    openid = payload.get("openid") if isinstance(payload, dict) else None
    if errcode or not isinstance(openid, str) or not openid:
        log.warning("WeChat jscode2session refused the code (errcode %s)", errcode)
        raise AppError(ErrorCode.INTERNAL, "WeChat login failed; try again later")
    return openid


async def wechat_login(ctx: Context, *, code: str) -> Tokens:
    try:
        openid = await openid_for(ctx.settings, code)
    except AppError as error:
        await logins.record_failure(ctx, username="", user_id=None, reason=error.code.lower(), method="wechat")
        raise
    system = ctx.data.unscoped("WeChat login: the account is found (or made) by its openid, before anyone is logged in")
    async with ctx.data.write(operation="wechatLogin", action="login", entity_type="User") as unit:
        user = await unit.first(system.select(User).where(User.wechat_openid == openid))
        if user is None:
            user = User(wechat_openid=openid, status=UserStatus.ACTIVE.value)
            unit.add(user)
            await unit.flush()
            unit.detail["created"] = True
        if user.status == UserStatus.DISABLED.value:
            raise unauthenticated("This account is disabled")
        unit.entity_id = str(user.id)
        tokens = await open_session(ctx, unit, user, MINI_PROGRAM)
        unit.add(logins.entry(ctx, username="", user_id=user.id, success=True, reason="ok", method="wechat"))
    return tokens
