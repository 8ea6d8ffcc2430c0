"""Every table's reach, declared once: who may read its rows, and who may change them.

A table missing here refuses start-up (`check_tables`), so a new module cannot forget to say who reaches its
rows. `read` applies to every read through the repository, `write` (default: the same as read) to the rows a
write unit loads or changes; a table may name further purposes (`edit`, `moderate`) for operations that
reach narrower than a plain read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import SQLModel

from models.audit import AuditSealState, Event, EventSeal
from models.auth import AuthSession, LoginLog, RefreshToken
from models.clinical import Diagnosis, ExamReport, FollowUp, FollowUpProtocol, TreatmentPlan, Visit
from models.consultation import Conversation, Message
from models.education import Article, Comment, ContentKind, PublicationStatus, Video
from models.integrity import AccessGrant, Amendment, PatientMerge
from models.learning import LearningAssignment, LearningTask
from models.moderation import ContentStatus, ModerationKeyword
from models.operations import JobRun, RequestMinute, ScheduledJob
from models.organisation import Department, Position
from models.patient import Patient, PatientBindingCode
from models.persisted import PersistedDocument
from models.policy import CasbinRule, SeededPolicyLine
from models.role import Role, UserRole
from models.upload import Upload
from models.user import User
from policies.access import Access
from policies.capabilities import Capability
from policies.reach import (
    DECLARED,
    AllOf,
    AnyOf,
    Everyone,
    Holding,
    InDepartments,
    LoggedIn,
    Nobody,
    Own,
    OwnRecord,
    PatientScope,
    ReferencedBy,
    Rule,
    Via,
    ViaPatient,
    Where,
    _exists,
    reach_clause,
)


@dataclass(frozen=True)
class TableReach:
    read: Rule
    write: Rule | None = None
    purposes: dict[str, Rule] = field(default_factory=dict)

    def rule(self, purpose: str) -> Rule:
        if purpose == "read":
            return self.read
        if purpose == "write":
            return self.write or self.read
        return self.purposes[purpose]


def _published(table: Any) -> ColumnElement[bool]:
    return and_(table.status == PublicationStatus.PUBLISHED.value, table.deleted_at.is_(None))


_EDITABLE = Holding(
    Capability.CONTENT_EDIT,
    AllOf(Where(lambda table: table.deleted_at.is_(None)), AnyOf(InDepartments(), Own("author_id"))),
)


class CommentOnContent:
    """Comments on content the inner rule reaches (articles and videos alike: the target is polymorphic)."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        return or_(
            and_(
                table.target_kind == ContentKind.ARTICLE.value,
                _exists(Article.id == table.target_id, self.rule.clause(Article, access)),
            ),
            and_(
                table.target_kind == ContentKind.VIDEO.value,
                _exists(Video.id == table.target_id, self.rule.clause(Video, access)),
            ),
        )


_OF_STAFF_IN_REACH = Via("user_id", User, InDepartments())

REACH: dict[type[SQLModel], TableReach] = {
    # ---- patients and their records: the patient scope (policies/scope.py)
    Patient: TableReach(read=PatientScope()),
    Visit: TableReach(read=ViaPatient()),
    Diagnosis: TableReach(read=ViaPatient()),
    ExamReport: TableReach(read=ViaPatient()),
    TreatmentPlan: TableReach(read=ViaPatient()),
    FollowUp: TableReach(read=ViaPatient()),
    PatientBindingCode: TableReach(read=ViaPatient()),
    Amendment: TableReach(read=ViaPatient()),
    # Both patients of a merge must be in reach, to read it and to undo it.
    PatientMerge: TableReach(read=AllOf(Via("keep_id", Patient), Via("merged_id", Patient))),
    # Break-the-glass grants: the holder's own, and for reviewers those of patients or staff in their departments.
    AccessGrant: TableReach(
        read=AnyOf(
            Own("user_id"),
            Holding(
                Capability.BREAK_GLASS_REVIEW,
                AnyOf(Via("patient_id", Patient, InDepartments()), _OF_STAFF_IN_REACH),
            ),
        ),
        write=Holding(
            Capability.BREAK_GLASS_REVIEW,
            AnyOf(Via("patient_id", Patient, InDepartments()), _OF_STAFF_IN_REACH),
        ),
    ),
    # ---- consultations: their two people, and managers of their department
    Conversation: TableReach(
        read=AnyOf(
            Own("patient_user_id"),
            Own("physician_id"),
            Holding(Capability.CONSULTATION_MANAGE, InDepartments()),
        ),
        purposes={"manage": Holding(Capability.CONSULTATION_MANAGE, InDepartments())},
    ),
    Message: TableReach(
        read=Via("conversation_id", Conversation),
        purposes={"manage": Via("conversation_id", Conversation, purpose="manage")},
    ),
    # An upload: its owner, and whoever reaches a message showing it.
    Upload: TableReach(read=AnyOf(Own("owner_id"), ReferencedBy(Message, "image_id")), write=Own("owner_id")),
    # ---- health education: published content for anyone logged in; editors their departments' and their own
    Article: TableReach(read=AnyOf(LoggedIn(Where(_published)), _EDITABLE), write=_EDITABLE),
    Video: TableReach(read=AnyOf(LoggedIn(Where(_published)), _EDITABLE), write=_EDITABLE),
    Comment: TableReach(
        read=AnyOf(
            LoggedIn(
                AllOf(
                    Where(lambda table: table.status == ContentStatus.VISIBLE.value),
                    CommentOnContent(Where(_published)),
                )
            ),
            Own("commenter_id"),
            Holding(Capability.COMMENTS_MODERATE, CommentOnContent(InDepartments())),
        ),
        write=Holding(Capability.COMMENTS_MODERATE, CommentOnContent(InDepartments())),
    ),
    # The keyword list: every comment and message is checked against all of it, whoever writes.
    ModerationKeyword: TableReach(read=Everyone()),
    # ---- learning: managers their departments' tasks, staff their own assignments
    LearningTask: TableReach(
        read=AnyOf(InDepartments(), ReferencedBy(LearningAssignment, "task_id", Own("user_id"))),
        write=InDepartments(),
    ),
    LearningAssignment: TableReach(
        read=AnyOf(Own("user_id"), Via("task_id", LearningTask, InDepartments())),
        write=AnyOf(Own("user_id"), Via("task_id", LearningTask, InDepartments())),
    ),
    # ---- people and organisation
    User: TableReach(read=AnyOf(Own("id"), InDepartments()), purposes={"name": Everyone()}),
    Role: TableReach(read=Everyone()),
    UserRole: TableReach(read=Everyone()),
    Department: TableReach(read=Everyone()),
    Position: TableReach(read=Everyone()),
    FollowUpProtocol: TableReach(read=Everyone()),
    # ---- sessions and logs
    AuthSession: TableReach(read=AnyOf(Own("user_id"), _OF_STAFF_IN_REACH)),
    RefreshToken: TableReach(read=Nobody()),
    LoginLog: TableReach(read=AnyOf(Own("user_id"), _OF_STAFF_IN_REACH)),
    # Events: by the caller, by staff in their departments, or about the caller's own record.
    Event: TableReach(read=AnyOf(Own("actor_id"), Via("actor_id", User, InDepartments()), OwnRecord())),
    # ---- the platform's machinery: system code only
    EventSeal: TableReach(read=Nobody()),
    AuditSealState: TableReach(read=Nobody()),
    CasbinRule: TableReach(read=Nobody()),
    SeededPolicyLine: TableReach(read=Nobody()),
    PersistedDocument: TableReach(read=Nobody()),
    # ---- operations: jobs are the platform's (whoever the policy shows them to sees them all); request figures
    # per staff member reach like that staff member, the other groupings (operation, role) whoever sees them
    ScheduledJob: TableReach(read=Everyone()),
    JobRun: TableReach(read=Everyone()),
    RequestMinute: TableReach(read=AnyOf(Where(lambda table: table.user_id.is_(None)), Via("user_id", User))),
}


@cache
def _by_table_name() -> dict[str, type[SQLModel]]:
    return {model.__tablename__: model for model in REACH}  # type: ignore[misc]


DECLARED.update(REACH)
__all__ = ["REACH", "TableReach", "check_tables", "reach_clause"]


def check_tables(metadata: Any = None) -> list[str]:
    """Tables of the metadata with no declared reach (start-up refuses them)."""
    tables = (metadata or SQLModel.metadata).tables
    declared = set(_by_table_name())
    return sorted(name for name in tables if name not in declared)
