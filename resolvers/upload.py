"""The platform's own image storage: a message's picture is a reference to an upload, never a URL.

Images arrive base64-encoded in a mutation (GraphQL multipart uploads stay off: they invite cross-site
requests), are checked for size and for their real type by their first bytes, and are kept in the
database so every instance serves the same file. An account keeps at most UPLOAD_QUOTA_BYTES; an upload that
nothing refers to is removed after a while by the `uploads.purge_unattached` system job
(resolvers/operations/system.py). They are read back by their owner, or through what
refers to them (a message its reader may see: the upload's reach, policies/tables.py), as a data URL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence

from sqlalchemy import func
from strawberry.dataloader import DataLoader

from core.errors import bad_input, not_found
from models.upload import Upload
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context

MAX_IMAGE_BYTES = 512 * 1024  # within the request body limit once base64-encoded
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def sniff(data: bytes) -> str | None:
    """The image type the bytes really are, whatever the client declared."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def upload_image(ctx: Context, *, content_base64: str, content_type: str) -> Upload:
    declared = content_type.strip().lower()
    if declared not in IMAGE_TYPES:
        raise bad_input(f"Images only: {', '.join(IMAGE_TYPES)}", "contentType")
    if len(content_base64) > (MAX_IMAGE_BYTES * 4) // 3 + 8:
        raise bad_input(f"At most {MAX_IMAGE_BYTES // 1024} KB", "contentBase64")
    try:
        data = base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise bad_input("Not valid base64", "contentBase64") from error
    if not data or len(data) > MAX_IMAGE_BYTES:
        raise bad_input(f"An image of 1 byte to {MAX_IMAGE_BYTES // 1024} KB", "contentBase64")
    if sniff(data) != declared:
        raise bad_input("The file is not the image type it claims to be", "contentType")
    row = Upload(
        owner_id=ctx.principal.user_id,  # type: ignore[arg-type]
        content_type=declared,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data_base64=base64.b64encode(data).decode("ascii"),
    )
    quota = ctx.settings.upload_quota_bytes
    async with ctx.data.write(operation="uploadImage", action="create", entity_type="Upload") as unit:
        unit.add(row)
        await unit.flush()
        # Counted after the insert, in its transaction: what the account keeps, this upload included. Uploads
        # never attached are removed by the uploads.purge_unattached job, which frees the quota again.
        kept = await unit.scalars(
            await ctx.data.select(
                Upload,
                func.coalesce(func.sum(Upload.byte_size), 0),
                purpose="attach",  # the caller's own
            )
        )
        if int(kept[0] if kept else 0) > quota:
            raise bad_input(
                f"Your uploads would exceed {quota // 1024} KB; attach or wait for unattached ones to expire",
                "contentBase64",
            )
        unit.entity_id = str(row.id)
        unit.detail = {"contentType": declared, "bytes": len(data)}
    return row


async def attachable(unit: WriteUnit, upload_id: int) -> int:
    """An upload the caller may attach to what they write: only their own (else NOT_FOUND)."""
    if await unit.find(Upload, upload_id, purpose="attach") is None:
        raise not_found("Upload")
    return upload_id


class UploadLoaders:
    """Per request: an upload's metadata and its bytes as a data URL, batched by id, within the caller's reach
    for uploads (their own, or shown by a message they may read)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.meta_by_id: DataLoader[int, tuple[str, int] | None] = DataLoader(self._meta)
        self.data_url_by_id: DataLoader[int, str | None] = DataLoader(self._data_urls)

    async def _meta(self, ids: Sequence[int]) -> list[tuple[str, int] | None]:
        data = self._ctx.data
        statement = await data.select(
            Upload, Upload.id, Upload.content_type, Upload.byte_size, then=lambda s: s.where(Upload.id.in_(list(ids)))
        )
        found = {pk: (kind, size) for pk, kind, size in await data.rows(statement)}
        return [found.get(pk) for pk in ids]

    async def _data_urls(self, ids: Sequence[int]) -> list[str | None]:
        data = self._ctx.data
        statement = await data.select(
            Upload,
            Upload.id,
            Upload.content_type,
            Upload.data_base64,
            then=lambda s: s.where(Upload.id.in_(list(ids))),
        )
        found = {pk: f"data:{kind};base64,{encoded}" for pk, kind, encoded in await data.rows(statement)}
        return [found.get(pk) for pk in ids]


def upload_loaders(ctx: Context) -> UploadLoaders:
    return ctx.loaders_of(UploadLoaders)
