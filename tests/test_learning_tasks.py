"""Learning tasks: department admins set them, physicians complete their own, chiefs follow completion."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update

from core.db import Database
from models.audit import Event
from models.learning import LearningTask
from models.organisation import Department
from models.user import User
from tests.clinical_helpers import gid, user_id
from tests.conftest import GraphQLClient, error_codes
from tests.test_clinical_followups import clinic_today

CREATE = """
mutation ($i: LearningTaskInput!) {
  createLearningTask(input: $i) { id title dueDate materials { kind ref title } progress { total assigned } }
}
"""
UPDATE = "mutation ($id: ID!, $i: LearningTaskInput!) { updateLearningTask(id: $id, input: $i) { id title } }"
DELETE = "mutation ($id: ID!) { deleteLearningTask(id: $id) }"
MINE = """
{ myLearningTasks(first: 10) { totalCount edges { node { id status progress completedAt task { id title dueDate } } } } }
"""
PROGRESS = (
    "mutation ($a: ID!, $p: Int!) { updateLearningProgress(assignmentId: $a, progress: $p) { id status progress } }"
)
COMPLETE = "mutation ($a: ID!) { completeLearningTask(assignmentId: $a) { id status progress completedAt } }"
OVERVIEW = """
{ learningTasks(first: 10) { totalCount edges { node { id title authorName
  progress { total assigned inProgress completed completionRate }
  assignments(first: 10) { edges { node { userName status progress } } } } } } }
"""


async def department(db: Database, code: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(Department.id).where(Department.code == code))).scalar_one())


def task_input(department_pk: int, due: date, title: str = "结直肠癌诊疗指南（2026版）学习") -> dict[str, Any]:
    return {
        "title": title,
        "description": "阅读指南并完成自测",
        "departmentId": gid("Department", department_pk),
        "dueDate": due.isoformat(),
        "materials": [
            {"kind": "link", "ref": "https://example.org/guideline.pdf", "title": "指南全文"},
            {"kind": "article", "ref": gid("Article", 1), "title": "术后护理"},
        ],
    }


async def create(client: GraphQLClient, db: Database, *, code: str = "CRS", as_: str = "deptadmin") -> dict[str, Any]:
    due = clinic_today() + timedelta(days=14)
    task: dict[str, Any] = (await client.data(CREATE, {"i": task_input(await department(db, code), due)}, as_=as_))[
        "createLearningTask"
    ]
    return task


async def test_task_assigned_to_the_departments_physicians_who_complete_it(client: GraphQLClient, db: Database) -> None:
    task = await create(client, db)
    assert task["progress"] == {"total": 2, "assigned": 2}  # the chief and the physician of Colorectal Surgery
    assert [m["kind"] for m in task["materials"]] == ["link", "article"]

    mine = (await client.data(MINE, as_="physician"))["myLearningTasks"]
    (assignment,) = [e["node"] for e in mine["edges"] if e["node"]["task"]["id"] == task["id"]]
    assert assignment["status"] == "ASSIGNED" and assignment["task"]["id"] == task["id"]
    assert (await client.data(MINE, as_="physician2"))["myLearningTasks"]["totalCount"] == 0

    step = (await client.data(PROGRESS, {"a": assignment["id"], "p": 40}, as_="physician"))["updateLearningProgress"]
    assert (step["status"], step["progress"]) == ("IN_PROGRESS", 40)
    assert error_codes(await client.run(PROGRESS, {"a": assignment["id"], "p": 140}, as_="physician")) == [
        "BAD_USER_INPUT"
    ]
    # Nobody else completes it for them.
    assert error_codes(await client.run(COMPLETE, {"a": assignment["id"]}, as_="chief")) == ["NOT_FOUND"]
    done = (await client.data(COMPLETE, {"a": assignment["id"]}, as_="physician"))["completeLearningTask"]
    assert done["status"] == "COMPLETED" and done["progress"] == 100 and done["completedAt"]
    assert error_codes(await client.run(COMPLETE, {"a": assignment["id"]}, as_="physician")) == ["BAD_USER_INPUT"]

    overview = (await client.data(OVERVIEW, as_="chief"))["learningTasks"]["edges"][0]["node"]
    assert overview["progress"] == {"total": 2, "assigned": 1, "inProgress": 0, "completed": 1, "completionRate": 0.5}
    statuses = {a["node"]["userName"][:3]: a["node"]["status"] for a in overview["assignments"]["edges"]}
    assert statuses == {"张主任": "ASSIGNED", "陈医生": "COMPLETED"}
    assert overview["authorName"].startswith("李科管")


async def test_who_may_manage_and_see_tasks(client: GraphQLClient, db: Database) -> None:
    # Physicians and chiefs do not manage tasks; physicians see no department overview.
    due = (clinic_today() + timedelta(days=7)).isoformat()
    for who in ("physician", "chief"):
        result = await client.run(CREATE, {"i": {"title": "x", "dueDate": due}}, as_=who)
        assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert set(error_codes(await client.run(OVERVIEW, as_="physician"))) == {"GRAPHQL_VALIDATION_FAILED"}
    assert set(error_codes(await client.run(MINE, as_="patient"))) == {"GRAPHQL_VALIDATION_FAILED"}
    # A department admin manages only their departments; the admin any.
    gi = await department(db, "GI")
    result = await client.run(CREATE, {"i": task_input(gi, clinic_today() + timedelta(days=7))}, as_="deptadmin")
    assert error_codes(result) == ["NOT_FOUND"]
    theirs = await create(client, db, code="GI", as_="admin")
    assert theirs["progress"]["total"] == 1  # physician2
    assert error_codes(await client.run(UPDATE, {"id": theirs["id"], "i": {"title": "改"}}, as_="deptadmin")) == [
        "NOT_FOUND"
    ]
    assert error_codes(await client.run(DELETE, {"id": theirs["id"]}, as_="deptadmin")) == ["NOT_FOUND"]
    listed = (await client.data(OVERVIEW, as_="chief"))["learningTasks"]["edges"]
    assert theirs["id"] not in [e["node"]["id"] for e in listed]  # not their department
    past = await client.run(CREATE, {"i": task_input(gi, clinic_today() - timedelta(days=1))}, as_="admin")
    assert error_codes(past) == ["BAD_USER_INPUT"]

    ours = await create(client, db)
    assert (await client.data(UPDATE, {"id": ours["id"], "i": {"title": "改名"}}, as_="deptadmin"))[
        "updateLearningTask"
    ]["title"] == "改名"
    assert (await client.data(DELETE, {"id": ours["id"]}, as_="deptadmin"))["deleteLearningTask"] is True
    mine = (await client.data(MINE, as_="physician"))["myLearningTasks"]["edges"]
    assert ours["id"] not in [e["node"]["task"]["id"] for e in mine]
    async with db.session() as session:
        kept = (await session.execute(select(LearningTask).where(LearningTask.deleted_at.is_not(None)))).scalars()
        assert len(list(kept)) == 1


async def test_joiners_are_assigned_open_tasks(client: GraphQLClient, db: Database) -> None:
    open_task = await create(client, db)
    async with db.transaction() as session:
        closed = LearningTask(
            title="已截止", department_id=await department(db, "CRS"), due_date=clinic_today() - timedelta(days=1)
        )
        session.add(closed)
        # physician2 moves from Gastroenterology to Colorectal Surgery.
        await session.execute(
            update(User).where(User.username == "physician2").values(department_id=await department(db, "CRS"))
        )
    mine = (await client.data(MINE, as_="physician2"))["myLearningTasks"]
    titles = {e["node"]["task"]["title"] for e in mine["edges"]}
    assert open_task["id"] in {e["node"]["task"]["id"] for e in mine["edges"]}
    assert "已截止" not in titles and len(titles) == 2  # the open ones only (with the demo's task)
    again = (await client.data(MINE, as_="physician2"))["myLearningTasks"]
    assert again["totalCount"] == 2
    async with db.session() as session:
        events = (await session.execute(select(Event).where(Event.operation == "assignLearningTasks"))).scalars().all()
    assert [(e.actor_id, e.detail) for e in events] == [
        (await user_id(db, "physician2"), {"assigned": 2, "user": await user_id(db, "physician2"), "department": None})
    ]
    tasks = {e["node"]["id"]: e["node"] for e in (await client.data(OVERVIEW, as_="chief"))["learningTasks"]["edges"]}
    assert tasks[open_task["id"]]["progress"]["total"] == 3


POLICY = "mutation ($r: String!, $o: String!, $a: String!) { %s(roleKey: $r, object: $o, action: $a) { key } }"
ASSIGNEE = "capability:learning.assignee"


async def test_receiving_tasks_is_a_capability_that_is_not_inherited(client: GraphQLClient, db: Database) -> None:
    """Members of the department holding `capability:learning.assignee` receive its tasks; a role inheriting
    from one that holds it does not (an administrator does not take on a physician's duties)."""
    await client.data(POLICY % "revokePermission", {"r": "chief_physician", "o": ASSIGNEE, "a": "execute"}, as_="admin")
    task = await create(client, db)
    assert task["progress"] == {"total": 1, "assigned": 1}  # the physician only, no longer the chief
    assert task["id"] in [
        e["node"]["task"]["id"] for e in (await client.data(MINE, as_="physician"))["myLearningTasks"]["edges"]
    ]
    assert task["id"] not in [
        e["node"]["task"]["id"] for e in (await client.data(MINE, as_="chief"))["myLearningTasks"]["edges"]
    ]

    # Granted to department admins: the one in Colorectal Surgery receives the open task when they next look;
    # the administrator, whose role inherits theirs, does not.
    await client.data(POLICY % "grantPermission", {"r": "dept_admin", "o": ASSIGNEE, "a": "execute"}, as_="admin")
    theirs = (await client.data(MINE, as_="deptadmin"))["myLearningTasks"]["edges"]
    assert task["id"] in [e["node"]["task"]["id"] for e in theirs]
    async with db.transaction() as session:  # the administrator joins Colorectal Surgery: still no tasks
        await session.execute(
            update(User).where(User.username == "admin").values(department_id=await department(db, "CRS"))
        )
    assert (await client.data(MINE, as_="admin"))["myLearningTasks"]["totalCount"] == 0
    overview = {
        e["node"]["id"]: e["node"] for e in (await client.data(OVERVIEW, as_="chief"))["learningTasks"]["edges"]
    }
    names = {a["node"]["userName"][:3] for a in overview[task["id"]]["assignments"]["edges"]}
    assert names == {"陈医生", "李科管"}
