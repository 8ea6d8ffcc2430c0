"""Comments on education content and the moderation keyword list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.db import Database
from models.education import Comment
from tests.clinical_helpers import gid, user_id
from tests.conftest import GraphQLClient, error_codes
from tests.test_education_content import CREATE, STATUS, VIDEO, VIDEO_STATUS

ADD = (
    "mutation ($c: ID!, $t: String!) { addComment(contentId: $c, text: $t) { id text status commenterName contentId } }"
)
REPLY = "mutation ($c: ID!, $t: String!) { replyToComment(commentId: $c, text: $t) { id text parentId } }"
ON_ARTICLE = """
query ($id: ID!) { article(id: $id) { commentCount comments(first: 10) { edges { node { id text status parentId } } } } }
"""
SEARCH = """
query ($f: CommentFilter) {
  comments(filter: $f, first: 10) { totalCount edges { node { id text status commenterName contentTitle moderationReason } } }
}
"""
REVIEW = "mutation ($id: ID!, $a: Boolean!) { reviewComment(id: $id, approve: $a) { id status reviewedAt } }"
DELETE = "mutation ($id: ID!) { deleteComment(id: $id) { id status } }"
KEYWORD = """
mutation ($k: String!, $a: ModerationAction!, $c: String) {
  createModerationKeyword(keyword: $k, action: $a, category: $c) { id keyword category action }
}
"""
UPDATE_KEYWORD = (
    "mutation ($id: ID!, $a: ModerationAction) { updateModerationKeyword(id: $id, action: $a) { id action } }"
)
DELETE_KEYWORD = "mutation ($id: ID!) { deleteModerationKeyword(id: $id) }"
KEYWORDS = "{ moderationKeywords(first: 10) { totalCount edges { node { keyword category action } } } }"


async def published_article(client: GraphQLClient, title: str = "肛瘘术后饮食") -> str:
    article = (await client.data(CREATE, {"i": {"title": title, "bodyMarkdown": "少吃辛辣"}}, as_="chief"))[
        "createArticle"
    ]
    await client.data(STATUS, {"id": article["id"], "s": "PUBLISHED"}, as_="chief")
    return str(article["id"])


async def comment(client: GraphQLClient, content: str, text: str, as_: str = "patient") -> dict[str, Any]:
    result: dict[str, Any] = (await client.data(ADD, {"c": content, "t": text}, as_=as_))["addComment"]
    return result


async def test_patients_comment_staff_reply_search_and_delete(client: GraphQLClient, db: Database) -> None:
    article = await published_article(client)
    first = await comment(client, article, "请问术后多久可以吃辣？")
    assert first["status"] == "VISIBLE" and first["contentId"] == article and first["commenterName"].startswith("赵")
    reply = (await client.data(REPLY, {"c": first["id"], "t": "建议一个月后"}, as_="physician"))["replyToComment"]
    assert reply["parentId"] == first["id"]
    markup = await comment(client, article, "<img src=x onerror=alert(1)>")
    assert markup["text"] == "<img src=x onerror=alert(1)>"  # plain text, stored and returned as typed

    shown = (await client.data(ON_ARTICLE, {"id": article}, as_="patient"))["article"]
    assert shown["commentCount"] == 3 and len(shown["comments"]["edges"]) == 3

    by_text = (await client.data(SEARCH, {"f": {"text": "吃辣"}}, as_="chief"))["comments"]
    assert [e["node"]["id"] for e in by_text["edges"]] == [first["id"]]
    assert by_text["edges"][0]["node"]["contentTitle"] == "肛瘘术后饮食"
    by_commenter = (await client.data(SEARCH, {"f": {"commenterName": "陈医生", "contentId": article}}, as_="chief"))[
        "comments"
    ]
    assert [e["node"]["id"] for e in by_commenter["edges"]] == [reply["id"]]
    patient = gid("User", await user_id(db, "patient"))
    mine = {"commenterId": patient, "contentId": article}
    assert (await client.data(SEARCH, {"f": mine}, as_="chief"))["comments"]["totalCount"] == 2
    assert (await client.data(SEARCH, {"f": {"contentId": article}}, as_="chief"))["comments"]["totalCount"] == 3
    assert (await client.data(SEARCH, {"f": {"contentTitle": "肛瘘"}}, as_="chief"))["comments"]["totalCount"] == 3
    window = {"from": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(), "to": datetime.now(UTC).isoformat()}
    assert (await client.data(SEARCH, {"f": window}, as_="chief"))["comments"]["totalCount"] == 3
    tomorrow = {"from": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    assert (await client.data(SEARCH, {"f": tomorrow}, as_="chief"))["comments"]["totalCount"] == 0

    assert (await client.data(DELETE, {"id": markup["id"]}, as_="chief"))["deleteComment"]["status"] == "HIDDEN"
    assert (await client.data(ON_ARTICLE, {"id": article}, as_="patient"))["article"]["commentCount"] == 2

    # The other side: a patient neither replies, searches nor deletes; a physician does not moderate.
    assert set(error_codes(await client.run(REPLY, {"c": first["id"], "t": "x"}, as_="patient"))) == {
        "GRAPHQL_VALIDATION_FAILED"
    }
    for who in ("patient", "physician"):
        assert set(error_codes(await client.run(SEARCH, {}, as_=who))) == {"GRAPHQL_VALIDATION_FAILED"}
        assert set(error_codes(await client.run(DELETE, {"id": first["id"]}, as_=who))) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_comments_only_on_published_content(client: GraphQLClient) -> None:
    draft = (await client.data(CREATE, {"i": {"title": "草稿"}}, as_="chief"))["createArticle"]
    assert error_codes(await client.run(ADD, {"c": draft["id"], "t": "hi"}, as_="patient")) == ["NOT_FOUND"]
    assert error_codes(await client.run(ADD, {"c": "bm90LWFuLWlk", "t": "hi"}, as_="patient")) == ["NOT_FOUND"]
    video = (
        await client.data(VIDEO, {"i": {"title": "v", "videoUrl": "https://video.example.org/v.mp4"}}, as_="chief")
    )["createVideo"]
    await client.data(VIDEO_STATUS, {"id": video["id"], "s": "PUBLISHED"}, as_="chief")
    on_video = await comment(client, video["id"], "很有帮助")
    assert on_video["contentId"] == video["id"]


async def test_keyword_list_blocks_holds_and_replaces(client: GraphQLClient) -> None:
    made = {}
    for keyword, action, category in (
        ("Spam", "BLOCK", "广告"),
        ("偏方", "HOLD", "医疗误导"),
        ("笨蛋", "REPLACE", "辱骂"),
    ):
        made[keyword] = (await client.data(KEYWORD, {"k": keyword, "a": action, "c": category}, as_="admin"))[
            "createModerationKeyword"
        ]
    assert made["Spam"]["keyword"] == "spam"  # matched without regard to case
    duplicate = await client.run(KEYWORD, {"k": "SPAM", "a": "HOLD"}, as_="admin")
    assert error_codes(duplicate) == ["CONFLICT"]
    assert (await client.data(KEYWORDS, as_="admin"))["moderationKeywords"]["totalCount"] == 6  # 3 from the demo
    for who in ("chief", "deptadmin", "patient"):
        assert set(error_codes(await client.run(KEYWORD, {"k": "x", "a": "BLOCK"}, as_=who))) == {
            "GRAPHQL_VALIDATION_FAILED"
        }

    article = await published_article(client)
    blocked = await client.run(ADD, {"c": article, "t": "Buy now ＳＰＡＭ offer"}, as_="patient")  # full-width too
    assert error_codes(blocked) == ["BAD_USER_INPUT"]
    assert "spam" in blocked["errors"][0]["message"] and "广告" in blocked["errors"][0]["message"]

    masked = await comment(client, article, "你们是笨蛋")
    assert masked["text"] == "你们是**" and masked["status"] == "VISIBLE"

    held = await comment(client, article, "我有祖传偏方")
    assert held["status"] == "HELD"
    # The author sees their held comment (marked); others do not until it is approved.
    mine = (await client.data(ON_ARTICLE, {"id": article}, as_="patient"))["article"]["comments"]["edges"]
    assert [e["node"]["status"] for e in mine] == ["VISIBLE", "HELD"]
    others = (await client.data(ON_ARTICLE, {"id": article}, as_="physician"))["article"]
    assert others["commentCount"] == 1 and len(others["comments"]["edges"]) == 1
    queue = (await client.data(SEARCH, {"f": {"status": "HELD", "contentId": article}}, as_="chief"))["comments"][
        "edges"
    ]
    assert [e["node"]["id"] for e in queue] == [held["id"]]
    assert "偏方" in queue[0]["node"]["moderationReason"]
    reviewed = (await client.data(REVIEW, {"id": held["id"], "a": True}, as_="chief"))["reviewComment"]
    assert reviewed["status"] == "VISIBLE" and reviewed["reviewedAt"]
    assert error_codes(await client.run(REVIEW, {"id": held["id"], "a": False}, as_="chief")) == ["BAD_USER_INPUT"]
    assert (await client.data(ON_ARTICLE, {"id": article}, as_="physician"))["article"]["commentCount"] == 2

    # Changing and removing a keyword.
    changed = await client.data(UPDATE_KEYWORD, {"id": made["Spam"]["id"], "a": "REPLACE"}, as_="admin")
    assert changed["updateModerationKeyword"]["action"] == "REPLACE"
    assert (await comment(client, article, "spam here"))["text"] == "**** here"
    assert (await client.data(DELETE_KEYWORD, {"id": made["Spam"]["id"]}, as_="admin"))["deleteModerationKeyword"]
    assert (await comment(client, article, "spam here"))["text"] == "spam here"


REVOKE = (
    "mutation ($r: String!, $o: String!, $a: String!) { revokePermission(roleKey: $r, object: $o, action: $a) { key } }"
)


async def test_moderating_is_a_capability_not_the_review_fields(client: GraphQLClient) -> None:
    """The review fields let a role ask; `capability:comments.moderate` is what reaches the comments."""
    await client.data(KEYWORD, {"k": "偏方", "a": "HOLD", "c": "医疗误导"}, as_="admin")
    article = await published_article(client)
    held = await comment(client, article, "有个偏方很灵")
    visible = await comment(client, article, "谢谢医生")
    queue = (await client.data(SEARCH, {"f": {"status": "HELD", "contentId": article}}, as_="chief"))["comments"]
    assert [e["node"]["id"] for e in queue["edges"]] == [held["id"]]

    await client.data(
        REVOKE, {"r": "chief_physician", "o": "capability:comments.moderate", "a": "execute"}, as_="admin"
    )
    # without the capability the article is no content of theirs to moderate: the filter's id is NOT_FOUND
    refused = await client.run(SEARCH, {"f": {"contentId": article}}, as_="chief")
    assert error_codes(refused) == ["NOT_FOUND"]
    assert error_codes(await client.run(REVIEW, {"id": held["id"], "a": True}, as_="chief")) == ["NOT_FOUND"]
    assert error_codes(await client.run(DELETE, {"id": visible["id"]}, as_="chief")) == ["NOT_FOUND"]
    # Under the article nothing changed: the author sees their held comment, others the visible one.
    mine = (await client.data(ON_ARTICLE, {"id": article}, as_="patient"))["article"]["comments"]["edges"]
    assert [e["node"]["status"] for e in mine] == ["HELD", "VISIBLE"]
    theirs = (await client.data(ON_ARTICLE, {"id": article}, as_="chief"))["article"]
    assert theirs["commentCount"] == 1 and [e["node"]["id"] for e in theirs["comments"]["edges"]] == [visible["id"]]


INVISIBLE = ["\u200b", "\u200d", "\u00ad", "\u2060", "\ufeff", "\ufe0f", "\u200c", "\u180e", "\U000e0041"]


async def test_invisible_characters_do_not_hide_a_keyword(client: GraphQLClient, db: Database) -> None:
    for keyword, action in (("spam", "BLOCK"), ("偏方", "HOLD"), ("笨蛋", "REPLACE")):
        await client.data(KEYWORD, {"k": keyword, "a": action}, as_="admin")
    article = await published_article(client)
    for mark in INVISIBLE:
        blocked = await client.run(ADD, {"c": article, "t": f"buy s{mark}p{mark}a{mark}m now"}, as_="patient")
        assert error_codes(blocked) == ["BAD_USER_INPUT"], repr(mark)
        # full-width and invisible together
        blocked = await client.run(ADD, {"c": article, "t": f"ＳＰ{mark}ＡＭ"}, as_="patient")
        assert error_codes(blocked) == ["BAD_USER_INPUT"], repr(mark)

        written = f"我有祖传偏{mark}方"
        held = await comment(client, article, written)
        assert held["status"] == "HELD" and held["text"] == written  # kept as written, held for review

        replaced = await comment(client, article, f"你们是笨{mark}蛋!")
        assert replaced["text"] == "你们是**!" and replaced["status"] == "VISIBLE", repr(mark)
    # no comment with a blocked word was stored, in any disguise
    async with db.session() as session:
        bodies = (await session.execute(select(Comment.body))).scalars().all()
    assert not [body for body in bodies if "s" in body.casefold() and "m" in body.casefold() and "now" in body]
