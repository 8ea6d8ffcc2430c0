"""A file sent with a GraphQL multipart request (the `Upload` scalar's value): its name, declared type and bytes.

The endpoint (schema/engine/endpoint.py, `multipart`) reads the whole request within its size limit and hands
resolvers this, never a stream or a temporary file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileUpload:
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)
