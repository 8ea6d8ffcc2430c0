"""WeChat mini-program login: `jscode2session` turns a login code into the user's openid, and the openid into
an account (created, with no role, on first sight: system work, the caller is nobody yet)."""

from __future__ import annotations

import logging

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
        openid = await exchange_code(ctx.settings, code)
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
