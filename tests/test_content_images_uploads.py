"""Images in content come from the hospital's own hosts (no tracking pixels), URLs carry no markup, uploads
have a per-account quota, and uploads nothing refers to are removed by a system job."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from core.db import Database
from core.timeutil import utcnow
from models.upload import Upload
from tests.conftest import GraphQLClient, error_codes
from tests.operations_helpers import SCHEDULER_ON
from tests.test_consultation_messages import SEND, UPLOAD, start
from tests.test_education_content import CREATE
from tests.test_operations_system import run_job

OWN_HOST = "img.hospital.example"
QUOTA = 3000


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**SCHEDULER_ON, "content_image_hosts": [OWN_HOST], "upload_quota_bytes": QUOTA}


def png(size: int) -> str:
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * (size - 8)).decode()


async def test_article_images_only_from_own_hosts(client: GraphQLClient) -> None:
    body = f"![pixel](https://tracker.example/p.gif?u=1) ![plain](http://{OWN_HOST}/a.png) ![ours](https://{OWN_HOST}/b.png)"
    html = (await client.data(CREATE, {"i": {"title": "图片", "bodyMarkdown": body}}, as_="chief"))["createArticle"][
        "bodyHtml"
    ]
    assert "tracker.example" not in html and f"http://{OWN_HOST}" not in html
    assert f'src="https://{OWN_HOST}/b.png"' in html
    assert html.count("<img") == 3  # the others are kept without a source (their alt text shows)


@pytest.mark.parametrize(
    "cover",
    [
        f'https://{OWN_HOST}/a.png" onerror="alert(1)',
        f"https://{OWN_HOST}/a.png'x",
        f"https://{OWN_HOST}/<b>.png",
        f"https://{OWN_HOST}/a b.png",
        "javascript:alert(1)",
        f"http://{OWN_HOST}/a.png",
        "https://tracker.example/pixel.gif",
    ],
)
async def test_cover_urls_are_refused_unless_safe_and_own(client: GraphQLClient, cover: str) -> None:
    refused = await client.run(CREATE, {"i": {"title": "封面", "coverUrl": cover}}, as_="chief")
    assert error_codes(refused) == ["BAD_USER_INPUT"], cover
    assert refused["errors"][0]["extensions"]["field"] == "coverUrl"


async def test_an_own_cover_is_kept(client: GraphQLClient) -> None:
    made = await client.run(CREATE, {"i": {"title": "封面", "coverUrl": f"https://{OWN_HOST}/c.png"}}, as_="chief")
    assert "errors" not in made, made


async def _kept_bytes(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.coalesce(func.sum(Upload.byte_size), 0)))).scalar_one())


async def test_uploads_have_a_quota_per_account(client: GraphQLClient, db: Database) -> None:
    assert (await client.data(UPLOAD, {"b": png(2000), "t": "image/png"}, as_="patient"))["uploadImage"]["id"]
    over = await client.run(UPLOAD, {"b": png(1500), "t": "image/png"}, as_="patient")
    assert error_codes(over) == ["BAD_USER_INPUT"]
    assert over["errors"][0]["extensions"]["field"] == "contentBase64"
    assert await _kept_bytes(db) == 2000  # nothing of the refused one stored
    # another account has its own quota
    assert (await client.data(UPLOAD, {"b": png(1500), "t": "image/png"}, as_="physician"))["uploadImage"]["id"]


async def test_unattached_uploads_are_removed_by_the_system_job(client: GraphQLClient, db: Database) -> None:
    conversation = await start(client)
    attached = (await client.data(UPLOAD, {"b": png(500), "t": "image/png"}, as_="patient"))["uploadImage"]["id"]
    await client.data(SEND, {"c": conversation, "t": "看图", "i": attached}, as_="patient")
    await client.data(UPLOAD, {"b": png(600), "t": "image/png"}, as_="patient")  # never attached
    recent = (await client.data(UPLOAD, {"b": png(700), "t": "image/png"}, as_="patient"))["uploadImage"]["id"]
    async with db.transaction() as session:  # all but the newest are two days old
        newest = (await session.execute(select(func.max(Upload.id)))).scalar_one()
        await session.execute(
            update(Upload).where(Upload.id != newest).values(created_at=utcnow() - timedelta(days=2))  # type: ignore[arg-type]
        )
    done = await run_job(client, "uploads.purge_unattached")
    assert done["status"] == "SUCCEEDED" and done["rowsAffected"] == 1, done
    async with db.session() as session:
        sizes = sorted((await session.execute(select(Upload.byte_size))).scalars().all())
    assert sizes == [500, 700]  # the attached one and the recent one stay
    assert recent
