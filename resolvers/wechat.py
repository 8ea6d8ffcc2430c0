"""WeChat mini-program login: `jscode2session` turns a login code into the user's openid."""

from __future__ import annotations

import logging

import httpx

from core.errors import AppError, ErrorCode, bad_input
from core.settings import Settings

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
