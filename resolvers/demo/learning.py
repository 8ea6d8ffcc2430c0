"""Demo data of learning tasks: one for Colorectal Surgery, assigned to its physicians, one of them halfway."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import encode_id
from models.education import Article
from models.learning import AssignmentStatus, LearningAssignment, LearningTask
from resolvers.learning import missing_assignments

# The demo's roles holding `capability:learning.assignee` (policies/default_policy.csv).
DEMO_ASSIGNEE_ROLES = ("physician", "chief_physician")


async def seed_learning(
    session: AsyncSession, *, users: dict[str, int], department_id: int, today: date, material: Article
) -> None:
    task = LearningTask(
        title="结直肠癌诊疗规范学习",
        description="学习规范并完成科室自测",
        materials=[
            {"kind": "article", "ref": encode_id("Article", material.id), "title": material.title},  # type: ignore[arg-type]
            {"kind": "link", "ref": "https://example.org/crc-guideline.pdf", "title": "规范全文"},
        ],
        department_id=department_id,
        due_date=today + timedelta(days=30),
        author_id=users["deptadmin"],
    )
    session.add(task)
    await session.flush()
    missing = missing_assignments(select, today=today, assignee_roles=DEMO_ASSIGNEE_ROLES, department_id=department_id)
    for task_id, user_id in (await session.execute(missing)).all():
        halfway = user_id == users["physician"] and task_id == task.id
        session.add(
            LearningAssignment(
                task_id=task_id,
                user_id=user_id,
                status=(AssignmentStatus.IN_PROGRESS if halfway else AssignmentStatus.ASSIGNED).value,
                progress=50 if halfway else 0,
            )
        )
