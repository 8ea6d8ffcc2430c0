"""Names that pose as staff: a name someone picks may not carry a staff title (titles come from roles), and a
comment keeps the name and title it showed when written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db import Database
from models.education import Comment
from tests.conftest import GraphQLClient, error_codes
from tests.test_comments_moderation import REPLY, comment, published_article

COMPLETE = "mutation ($n: String!) { completeProfile(input: {displayName: $n}) { displayName } }"
SHOWN = """
query ($id: ID!) {
  article(id: $id) { comments(first: 10) { edges { node { id text commenterName commenterTitle } } } }
}
"""


@pytest.mark.parametrize(
    "name",
    [
        "张主任 Zhang (chief physician)",
        "李医生",
        "王医师",
        "刘护士",
        "Dr Zhang",
        "dr. wang",
        "Doctor Who",
        "Chief Li",
        "ＤＲ Wang",  # full-width
        "张\u200b主\u200d任",  # invisible characters between the letters
        "陈 主 任",
    ],
)
async def test_a_chosen_name_may_not_pose_as_staff(client: GraphQLClient, name: str) -> None:
    refused = await client.run(COMPLETE, {"n": name}, as_="patient")
    assert error_codes(refused) == ["BAD_USER_INPUT"], name
    assert refused["errors"][0]["extensions"]["field"] == "displayName"


async def test_ordinary_names_are_kept(client: GraphQLClient) -> None:
    for name in ("Andrew Li", "赵敏", "Docherty Ann", "Drew"):
        assert (await client.data(COMPLETE, {"n": name}, as_="patient"))["completeProfile"]["displayName"] == name


async def test_a_comment_keeps_what_it_showed_and_titles_come_from_roles(client: GraphQLClient, db: Database) -> None:
    article = await published_article(client)
    await client.data(COMPLETE, {"n": "赵敏"}, as_="patient")
    written = await comment(client, article, "术后第三天还痛吗")
    reply = (await client.data(REPLY, {"c": written["id"], "t": "正常，按时换药"}, as_="chief"))["replyToComment"]

    # the patient changes their name afterwards: the comment still shows the name it was written under
    await client.data(COMPLETE, {"n": "赵新名"}, as_="patient")
    nodes = {
        e["node"]["id"]: e["node"]
        for e in (await client.data(SHOWN, {"id": article}, as_="physician"))["article"]["comments"]["edges"]
    }
    assert nodes[written["id"]]["commenterName"] == "赵敏"
    assert nodes[written["id"]]["commenterTitle"] is None  # a patient: no title
    assert nodes[reply["id"]]["commenterTitle"] == "主任医师 Chief physician"  # from the role, not the name
    async with db.session() as session:
        stored = (await session.execute(select(Comment.commenter_name).order_by(Comment.id))).scalars().all()
    assert stored[-2:][0] == "赵敏"
