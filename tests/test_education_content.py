"""Health education: editors write, publish and delete; everyone logged in reads what is published."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import Database
from models.audit import Event
from models.education import Article
from tests.conftest import GraphQLClient, error_codes

CREATE = """
mutation ($i: ArticleInput!) {
  createArticle(input: $i) { id title status bodyHtml bodyMarkdown keywords authorName publishedAt }
}
"""
UPDATE = "mutation ($id: ID!, $i: ArticleInput!) { updateArticle(id: $id, input: $i) { id title bodyHtml } }"
STATUS = (
    "mutation ($id: ID!, $s: PublicationStatus!) { setArticleStatus(id: $id, status: $s) { id status publishedAt } }"
)
DELETE = "mutation ($id: ID!) { deleteArticle(id: $id) }"
PUBLIC_LIST = "query ($s: String) { articles(search: $s, first: 10) { totalCount edges { node { id title } } } }"
PUBLIC_ONE = "query ($id: ID!) { article(id: $id) { id title bodyHtml viewCount commentCount } }"
DRAFTS = "query ($s: PublicationStatus) { editorialArticles(status: $s, first: 10) { totalCount edges { node { id title status } } } }"
VIDEO = """
mutation ($i: VideoInput!) { createVideo(input: $i) { id title videoUrl durationSeconds status } }
"""
VIDEO_STATUS = "mutation ($id: ID!, $s: PublicationStatus!) { setVideoStatus(id: $id, status: $s) { id status } }"
VIDEOS = "{ videos(first: 10) { totalCount edges { node { id title videoUrl durationSeconds viewCount } } } }"

MARKDOWN = """# 术后护理

**保持清洁**，每日温水坐浴。

<script>alert('x')</script>

[恶意链接](javascript:alert(1)) [指南](https://example.org/guide)

<img src=x onerror=alert(1)>
"""


async def create(client: GraphQLClient, title: str, as_: str = "chief") -> dict[str, Any]:
    article: dict[str, Any] = (
        await client.data(
            CREATE,
            {"i": {"title": title, "summary": "摘要", "bodyMarkdown": MARKDOWN, "keywords": ["痔疮", "术后"]}},
            as_=as_,
        )
    )["createArticle"]
    return article


async def test_editor_writes_publishes_and_patients_read(client: GraphQLClient, db: Database) -> None:
    draft = await create(client, "痔疮术后护理")
    assert draft["status"] == "DRAFT" and draft["publishedAt"] is None and draft["keywords"] == ["痔疮", "术后"]
    html = draft["bodyHtml"]
    assert "<h1>术后护理</h1>" in html and "<strong>保持清洁</strong>" in html
    assert "<script" not in html and 'href="javascript' not in html and "<img" not in html  # escaped, inert
    assert 'href="https://example.org/guide"' in html and "noopener" in html

    # A draft is not public: not listed, not readable, even by id.
    assert (await client.data(PUBLIC_LIST, {"s": "痔疮"}, as_="patient"))["articles"]["totalCount"] == 0
    assert error_codes(await client.run(PUBLIC_ONE, {"id": draft["id"]}, as_="patient")) == ["NOT_FOUND"]
    drafts = (await client.data(DRAFTS, {"s": "DRAFT"}, as_="chief"))["editorialArticles"]
    assert draft["id"] in [e["node"]["id"] for e in drafts["edges"]]
    editable = (await client.data(DRAFTS, as_="chief"))["editorialArticles"]["totalCount"]

    published = (await client.data(STATUS, {"id": draft["id"], "s": "PUBLISHED"}, as_="chief"))["setArticleStatus"]
    assert published["status"] == "PUBLISHED" and published["publishedAt"]
    listed = (await client.data(PUBLIC_LIST, {"s": "痔疮"}, as_="patient"))["articles"]
    assert [e["node"]["title"] for e in listed["edges"]] == ["痔疮术后护理"]
    first = (await client.data(PUBLIC_ONE, {"id": draft["id"]}, as_="patient"))["article"]
    second = (await client.data(PUBLIC_ONE, {"id": draft["id"]}, as_="physician"))["article"]
    assert second["viewCount"] == first["viewCount"] + 1

    updated = (await client.data(UPDATE, {"id": draft["id"], "i": {"bodyMarkdown": "*新内容*"}}, as_="chief"))[
        "updateArticle"
    ]
    assert updated["bodyHtml"].strip() == "<p><em>新内容</em></p>" and updated["title"] == "痔疮术后护理"

    assert (await client.data(STATUS, {"id": draft["id"], "s": "ARCHIVED"}, as_="chief"))["setArticleStatus"][
        "status"
    ] == "ARCHIVED"
    assert (await client.data(PUBLIC_LIST, {"s": "痔疮"}, as_="patient"))["articles"]["totalCount"] == 0
    assert (await client.data(DELETE, {"id": draft["id"]}, as_="chief"))["deleteArticle"] is True
    assert (await client.data(DRAFTS, as_="chief"))["editorialArticles"]["totalCount"] == editable - 1
    async with db.session() as session:
        kept = (await session.execute(select(Article).where(Article.title == "痔疮术后护理"))).scalars().all()
        operations = (
            (await session.execute(select(Event.operation).where(Event.entity_type == "Article").order_by(Event.id)))
            .scalars()
            .all()
        )
    assert len(kept) == 1 and kept[0].deleted_at is not None  # kept, marked deleted
    assert operations == ["createArticle", "publishArticle", "updateArticle", "archiveArticle", "deleteArticle"]


async def test_only_editors_write_and_see_drafts(client: GraphQLClient) -> None:
    for who in ("patient", "physician"):
        result = await client.run(CREATE, {"i": {"title": "x"}}, as_=who)
        assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}
        result = await client.run(DRAFTS, as_=who)
        assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}
    # The editorial fields are not in a patient's schema.
    result = await client.run("{ articles { edges { node { bodyMarkdown status } } } }", as_="patient")
    assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}
    # Nobody logged in: nothing.
    response = await client.post(PUBLIC_LIST)
    assert set(error_codes(response.json())) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_editors_reach_their_own_departments_content(client: GraphQLClient, db: Database) -> None:
    """The chief (Colorectal Surgery) cannot edit an article of Gastroenterology; the admin can."""
    article = await create(client, "胃镜检查须知", as_="admin")
    async with db.transaction() as session:
        from models.organisation import Department

        gi = (await session.execute(select(Department.id).where(Department.code == "GI"))).scalar_one()
        row = (await session.execute(select(Article).where(Article.title == "胃镜检查须知"))).scalar_one()
        row.department_id = gi
    result = await client.run(UPDATE, {"id": article["id"], "i": {"title": "改"}}, as_="chief")
    assert error_codes(result) == ["NOT_FOUND"]
    assert error_codes(await client.run(STATUS, {"id": article["id"], "s": "PUBLISHED"}, as_="chief")) == ["NOT_FOUND"]
    listed = (await client.data(DRAFTS, as_="chief"))["editorialArticles"]["edges"]
    assert article["id"] not in [e["node"]["id"] for e in listed]
    assert (await client.data(UPDATE, {"id": article["id"], "i": {"title": "改"}}, as_="admin"))["updateArticle"][
        "title"
    ] == "改"


async def test_videos_and_input_checks(client: GraphQLClient) -> None:
    bad = await client.run(VIDEO, {"i": {"title": "v", "videoUrl": "javascript:alert(1)"}}, as_="chief")
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    bad = await client.run(CREATE, {"i": {"title": "a", "coverUrl": "http://insecure.example/x.png"}}, as_="chief")
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    assert error_codes(await client.run(CREATE, {"i": {"title": "  "}}, as_="chief")) == ["BAD_USER_INPUT"]
    video = (
        await client.data(
            VIDEO,
            {"i": {"title": "提肛运动", "videoUrl": "https://video.example.org/kegel.mp4", "durationSeconds": 180}},
            as_="chief",
        )
    )["createVideo"]
    assert video["status"] == "DRAFT"
    before = (await client.data(VIDEOS, as_="patient"))["videos"]["totalCount"]
    await client.data(VIDEO_STATUS, {"id": video["id"], "s": "PUBLISHED"}, as_="chief")
    videos = (await client.data(VIDEOS, as_="patient"))["videos"]
    assert videos["totalCount"] == before + 1 and videos["edges"][0]["node"]["durationSeconds"] == 180


async def test_demo_data_covers_the_modules(client: GraphQLClient) -> None:
    articles = (await client.data(PUBLIC_LIST, {"s": "便血"}, as_="patient"))["articles"]["edges"]
    assert [e["node"]["title"] for e in articles] == ["便血的常见原因"]
    videos = (await client.data(VIDEOS, as_="patient"))["videos"]["edges"]
    assert "坐浴的正确方法" in [e["node"]["title"] for e in videos]
    conversations = (
        await client.data("{ myConversations { edges { node { physicianName unreadCount } } } }", as_="patient")
    )["myConversations"]["edges"]
    assert [(e["node"]["physicianName"][:3], e["node"]["unreadCount"]) for e in conversations] == [("张主任", 1)]
    tasks = await client.data("{ myLearningTasks { edges { node { status progress } } } }", as_="physician")
    assert [e["node"] for e in tasks["myLearningTasks"]["edges"]] == [{"status": "IN_PROGRESS", "progress": 50}]


REVOKE = (
    "mutation ($r: String!, $o: String!, $a: String!) { revokePermission(roleKey: $r, object: $o, action: $a) { key } }"
)
EDITORIAL_ONE = "query ($id: ID!) { editorialArticle(id: $id) { id title status } }"


async def test_editing_is_a_capability_not_the_editorial_fields(client: GraphQLClient) -> None:
    """The editorial fields let a role ask; `capability:content.edit` is what reaches content to edit."""
    draft = await create(client, "肛周脓肿术后换药")
    published = await create(client, "便秘的饮食调理")
    await client.data(STATUS, {"id": published["id"], "s": "PUBLISHED"}, as_="chief")
    assert (await client.data(EDITORIAL_ONE, {"id": draft["id"]}, as_="chief"))["editorialArticle"]["status"] == "DRAFT"

    await client.data(REVOKE, {"r": "chief_physician", "o": "capability:content.edit", "a": "execute"}, as_="admin")
    # Still in the chief's schema, but nothing to edit any more: their own draft included.
    assert (await client.data(DRAFTS, as_="chief"))["editorialArticles"]["totalCount"] == 0
    assert error_codes(await client.run(EDITORIAL_ONE, {"id": draft["id"]}, as_="chief")) == ["NOT_FOUND"]
    assert error_codes(await client.run(UPDATE, {"id": draft["id"], "i": {"title": "改"}}, as_="chief")) == [
        "NOT_FOUND"
    ]
    assert error_codes(await client.run(STATUS, {"id": published["id"], "s": "ARCHIVED"}, as_="chief")) == ["NOT_FOUND"]
    assert error_codes(await client.run(DELETE, {"id": published["id"]}, as_="chief")) == ["NOT_FOUND"]
    # Published content stays readable, for them and everyone logged in.
    for who in ("chief", "patient"):
        assert (await client.data(PUBLIC_ONE, {"id": published["id"]}, as_=who))["article"]["title"] == "便秘的饮食调理"
    assert error_codes(await client.run(PUBLIC_ONE, {"id": draft["id"]}, as_="chief")) == ["NOT_FOUND"]
