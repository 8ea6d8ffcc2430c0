"""The GraphQL multipart request convention (what apollo-upload-client sends): an `operations` JSON part, a `map`
part saying which variable each file goes to, then the files.

Strawberry leaves multipart off because a browser sends `multipart/form-data` cross-site without a preflight: a
form on any site could post to the API with the user's cookies. This API takes no cookies, and a multipart
request is accepted only with an `Authorization` header, which no cross-site form can set and which makes a
browser ask (CORS preflight) first. At most one file, within SCHEDULE_IMPORT_MAX_BYTES (plus room for the other
parts); the file reaches the resolver as core/files.py's FileUpload.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from core.errors import ErrorCode
from core.files import FileUpload

MULTIPART = "multipart/form-data"
_ROOM = 64 * 1024  # the operations and map parts beside the file
Refusal = tuple[ErrorCode, str, int]


def body_limit(file_limit: int) -> int:
    return file_limit + _ROOM


async def read_multipart(request: Request, raw: bytes) -> dict[str, Any] | Refusal:
    """The request as a JSON request would be, its file in the variable the map names."""
    if not request.headers.get("authorization", "").strip():
        return (
            ErrorCode.BAD_USER_INPUT,
            "A multipart request needs an Authorization header (cross-site request protection)",
            400,
        )
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    replay = Request(request.scope, receive)
    try:
        form = await replay.form(max_files=1, max_fields=4, max_part_size=_ROOM)
    except Exception:  # python-multipart and starlette raise several kinds for a malformed body
        return (ErrorCode.BAD_USER_INPUT, "The multipart request is malformed", 400)
    try:
        operations = orjson.loads(str(form.get("operations") or ""))
        mapping = orjson.loads(str(form.get("map") or "{}"))
    except orjson.JSONDecodeError:
        return (ErrorCode.BAD_USER_INPUT, "'operations' and 'map' must be JSON", 400)
    if not isinstance(operations, dict) or not isinstance(mapping, dict):
        return (ErrorCode.BAD_USER_INPUT, "'operations' must be one operation and 'map' an object", 400)
    if len(mapping) > 1:
        return (ErrorCode.BAD_USER_INPUT, "At most one file per request", 400)
    variables = operations.get("variables")
    if variables is None:
        variables = operations["variables"] = {}
    if not isinstance(variables, dict):
        return (ErrorCode.BAD_USER_INPUT, "'variables' must be an object", 400)
    for key, paths in mapping.items():
        part = form.get(key)
        if not isinstance(part, UploadFile):
            return (ErrorCode.BAD_USER_INPUT, f"The map names a file '{key}' that was not sent", 400)
        upload = FileUpload(
            filename=(part.filename or "")[:255],
            content_type=(part.content_type or "application/octet-stream")[:100],
            data=await part.read(),
        )
        await part.close()
        if not isinstance(paths, list) or len(paths) != 1 or not isinstance(paths[0], str):
            return (ErrorCode.BAD_USER_INPUT, "Each file goes to one variable", 400)
        path = paths[0].split(".")
        if len(path) != 2 or path[0] != "variables":
            return (ErrorCode.BAD_USER_INPUT, "A file goes to a top-level variable (variables.<name>)", 400)
        variables[path[1]] = upload
    await form.close()
    return operations
