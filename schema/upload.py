"""Images in the platform's own storage: uploading one, and reading it where a message shows it."""

from __future__ import annotations

import strawberry

from core.ids import encode_id
from models.upload import Upload
from resolvers import upload as uploads
from resolvers.data.context import Info


@strawberry.type(name="UploadedImage", description="An image in the platform's own storage.")
class UploadedImageType:
    id: strawberry.ID
    content_type: str
    byte_size: int
    _pk: strawberry.Private[int]

    @classmethod
    def of(cls, pk: int, content_type: str, byte_size: int) -> UploadedImageType:
        return cls(id=strawberry.ID(encode_id("Upload", pk)), content_type=content_type, byte_size=byte_size, _pk=pk)

    @strawberry.field(description="The image as a data: URL (base64).")
    async def data_url(self, info: Info) -> str | None:
        return await uploads.upload_loaders(info.context).data_url_by_id.load(self._pk)


async def image_by_id(info: Info, pk: int) -> UploadedImageType | None:
    """The image with that id, where the caller reaches it."""
    meta = await uploads.upload_loaders(info.context).meta_by_id.load(pk)
    if meta is None:
        return None
    content_type, size = meta
    return UploadedImageType.of(pk, content_type, size)


@strawberry.type
class UploadMutation:
    @strawberry.mutation(
        description="Store an image (PNG, JPEG, GIF or WebP, at most 512 KB, base64) to attach to a message."
    )
    async def upload_image(self, info: Info, content_base64: str, content_type: str) -> UploadedImageType:
        row: Upload = await uploads.upload_image(info.context, content_base64=content_base64, content_type=content_type)
        return UploadedImageType.of(row.id, row.content_type, row.byte_size)  # type: ignore[arg-type]
