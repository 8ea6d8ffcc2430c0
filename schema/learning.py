"""Learning tasks for medical staff: managers set them, physicians complete them, chiefs follow progress."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from core.ids import decode_id, decode_optional_id, encode_id
from models import learning as m
from resolvers import learning
from resolvers.data.context import Info
from schema.engine.connection import Connection, connection

AssignmentStatusEnum = strawberry.enum(m.AssignmentStatus, name="AssignmentStatus")


@strawberry.type(name="LearningMaterial")
class LearningMaterialType:
    kind: str = strawberry.field(description="article, video or link")
    ref: str = strawberry.field(description="An Article or Video id, or an https:// URL")
    title: str


@strawberry.input
class LearningMaterialInput:
    kind: str
    ref: str
    title: str


@strawberry.type(name="LearningProgress", description="How a task's assignments stand.")
class LearningProgressType:
    assigned: int
    in_progress: int
    completed: int

    @strawberry.field
    def total(self) -> int:
        return self.assigned + self.in_progress + self.completed

    @strawberry.field(description="Completed share, 0 to 1.")
    def completion_rate(self) -> float:
        total = self.assigned + self.in_progress + self.completed
        return 0.0 if total == 0 else round(self.completed / total, 4)


@strawberry.type(name="LearningTask")
class LearningTaskType:
    id: strawberry.ID
    title: str
    description: str
    materials: list[LearningMaterialType]
    department_id: strawberry.ID
    due_date: date
    created_at: datetime
    _row: strawberry.Private[m.LearningTask]

    @classmethod
    def from_row(cls, row: m.LearningTask) -> LearningTaskType:
        return cls(
            id=strawberry.ID(encode_id("LearningTask", row.id)),  # type: ignore[arg-type]
            title=row.title,
            description=row.description,
            materials=[LearningMaterialType(kind=x["kind"], ref=x["ref"], title=x["title"]) for x in row.materials],
            department_id=strawberry.ID(encode_id("Department", row.department_id)),
            due_date=row.due_date,
            created_at=row.created_at,
            _row=row,
        )

    @strawberry.field
    async def author_name(self, info: Info) -> str | None:
        author = self._row.author_id
        return None if author is None else await info.context.loaders.user_name_by_id.load(author)

    @strawberry.field(description="The department's completion overview.")
    async def progress(self, info: Info) -> LearningProgressType:
        counts = await learning.learning_loaders(info.context).counts_by_task_id.load(self._row.id)  # type: ignore[arg-type]
        return LearningProgressType(
            assigned=counts.get(m.AssignmentStatus.ASSIGNED.value, 0),
            in_progress=counts.get(m.AssignmentStatus.IN_PROGRESS.value, 0),
            completed=counts.get(m.AssignmentStatus.COMPLETED.value, 0),
        )

    @strawberry.field(description="Each assignee's status.")
    async def assignments(
        self,
        info: Info,
        status: AssignmentStatusEnum | None = None,  # type: ignore[valid-type]
        first: int | None = 50,
        after: str | None = None,
    ) -> Connection[LearningAssignmentType]:
        page = await learning.task_assignments(
            info.context, self._row, status=None if status is None else status.value, first=first, after=after
        )
        return connection(page, LearningAssignmentType.from_row)


@strawberry.type(name="LearningAssignment")
class LearningAssignmentType:
    id: strawberry.ID
    user_id: strawberry.ID
    status: AssignmentStatusEnum  # type: ignore[valid-type]
    progress: int
    assigned_at: datetime
    completed_at: datetime | None
    _row: strawberry.Private[m.LearningAssignment]

    @classmethod
    def from_row(cls, row: m.LearningAssignment) -> LearningAssignmentType:
        return cls(
            id=strawberry.ID(encode_id("LearningAssignment", row.id)),  # type: ignore[arg-type]
            user_id=strawberry.ID(encode_id("User", row.user_id)),
            status=m.AssignmentStatus(row.status),
            progress=row.progress,
            assigned_at=row.assigned_at,
            completed_at=row.completed_at,
            _row=row,
        )

    @strawberry.field
    async def user_name(self, info: Info) -> str | None:
        return await info.context.loaders.user_name_by_id.load(self._row.user_id)

    @strawberry.field
    async def task(self, info: Info) -> LearningTaskType | None:
        row = await learning.learning_loaders(info.context).task_by_id.load(self._row.task_id)
        return None if row is None else LearningTaskType.from_row(row)


@strawberry.input
class LearningTaskInput:
    title: str | None = None
    description: str | None = None
    materials: list[LearningMaterialInput] | None = None
    department_id: strawberry.ID | None = None
    due_date: date | None = None

    def to_data(self) -> learning.TaskInput:
        return learning.TaskInput(
            title=self.title,
            description=self.description,
            materials=None
            if self.materials is None
            else [{"kind": x.kind, "ref": x.ref, "title": x.title} for x in self.materials],
            department_id=decode_optional_id("Department", self.department_id),
            due_date=self.due_date,
        )


@strawberry.type
class LearningQuery:
    @strawberry.field(description="Your learning tasks (open ones you were assigned, joiners included).")
    async def my_learning_tasks(
        self, info: Info, include_completed: bool = True, first: int | None = 20, after: str | None = None
    ) -> Connection[LearningAssignmentType]:
        page = await learning.my_assignments(
            info.context, include_completed=include_completed, first=first, after=after
        )
        return connection(page, LearningAssignmentType.from_row)

    @strawberry.field(description="Tasks of the departments in your data scope, newest first.")
    async def learning_tasks(
        self, info: Info, department_id: strawberry.ID | None = None, first: int | None = 20, after: str | None = None
    ) -> Connection[LearningTaskType]:
        page = await learning.list_tasks(
            info.context, department_id=decode_optional_id("Department", department_id), first=first, after=after
        )
        return connection(page, LearningTaskType.from_row)

    @strawberry.field
    async def learning_task(self, info: Info, id: strawberry.ID) -> LearningTaskType:
        return LearningTaskType.from_row(await learning.get_task(info.context, decode_id("LearningTask", id)))


@strawberry.type
class LearningMutation:
    @strawberry.mutation(description="A task for a department: assigned to its physicians and chief physicians.")
    async def create_learning_task(self, info: Info, input: LearningTaskInput) -> LearningTaskType:
        return LearningTaskType.from_row(await learning.create_task(info.context, input.to_data()))

    @strawberry.mutation
    async def update_learning_task(self, info: Info, id: strawberry.ID, input: LearningTaskInput) -> LearningTaskType:
        row = await learning.update_task(info.context, decode_id("LearningTask", id), input.to_data())
        return LearningTaskType.from_row(row)

    @strawberry.mutation(description="Delete a task (kept, marked deleted).")
    async def delete_learning_task(self, info: Info, id: strawberry.ID) -> bool:
        return await learning.delete_task(info.context, decode_id("LearningTask", id))

    @strawberry.mutation(description="Record your progress (percent) on one of your tasks; 100 completes it.")
    async def update_learning_progress(
        self, info: Info, assignment_id: strawberry.ID, progress: int
    ) -> LearningAssignmentType:
        row = await learning.update_progress(
            info.context, decode_id("LearningAssignment", assignment_id), progress=progress, complete=False
        )
        return LearningAssignmentType.from_row(row)

    @strawberry.mutation(description="Complete one of your tasks.")
    async def complete_learning_task(self, info: Info, assignment_id: strawberry.ID) -> LearningAssignmentType:
        row = await learning.update_progress(
            info.context, decode_id("LearningAssignment", assignment_id), progress=100, complete=True
        )
        return LearningAssignmentType.from_row(row)
