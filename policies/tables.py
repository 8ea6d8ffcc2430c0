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

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlmodel import SQLModel

from models.appointment import Appointment, AppointmentStatusChange, Schedule, ScheduleStatus
from models.audit import AuditSealGap, AuditSealState, Event, EventSeal
from models.auth import AuthSession, LoginGate, LoginLog, RefreshToken
from models.clinical import Diagnosis, ExamReport, FollowUp, FollowUpProtocol, TreatmentPlan, Visit
from models.consultation import Conversation, Message
from models.dictionary import DictionaryEntry
from models.education import Article, Comment, ContentKind, PublicationStatus, Video
from models.fhir import FhirExport
from models.integrity import AccessGrant, Amendment, PatientMerge
from models.learning import LearningAssignment, LearningTask
from models.menu import Menu, SeededMenuEntry
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
    _is_false,
    _is_true,
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


def _not_deleted(table: Any) -> ColumnElement[bool]:
    return table.deleted_at.is_(None)


def _status(status: ContentStatus) -> Where:
    return Where(lambda table: table.status == status.value)


class CommentOnContent:
    """Comments on content the inner rule reaches (articles and videos alike: the target is polymorphic)."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def clause(self, table: Any, access: Access) -> ColumnElement[bool]:
        on_article = self.rule.clause(Article, access)
        on_video = self.rule.clause(Video, access)
        if _is_true(on_article) and _is_true(on_video):
            return true()
        parts = []
        for kind, model, inner in ((ContentKind.ARTICLE, Article, on_article), (ContentKind.VIDEO, Video, on_video)):
            if not _is_false(inner):
                parts.append(and_(table.target_kind == kind.value, _exists(model.id == table.target_id, inner)))
        return or_(*parts) if parts else false()


# ---- consultations: their two people; managers (capability) the conversations of their departments
_PARTICIPANT = AnyOf(Own("patient_user_id"), Own("physician_id"))
_MANAGED = Holding(Capability.CONSULTATION_MANAGE, InDepartments())
_CONVERSATION = AnyOf(_PARTICIPANT, _MANAGED)
# What a participant sees of their conversation: messages not deleted, visible or their own held for review.
_SHOWN_MESSAGE = AllOf(
    Where(_not_deleted),
    AnyOf(_status(ContentStatus.VISIBLE), AllOf(_status(ContentStatus.HELD), Own("sender_id"))),
    Via("conversation_id", Conversation, _PARTICIPANT),
)
_MANAGED_MESSAGE = Via("conversation_id", Conversation, _MANAGED)

# ---- health education: published content for anyone logged in; editors (capability) their departments' and
# their own; moderators (capability) the content of their departments and its comments
_PUBLISHED = LoggedIn(Where(_published))
_EDITABLE = Holding(Capability.CONTENT_EDIT, AllOf(Where(_not_deleted), AnyOf(InDepartments(), Own("author_id"))))
_MODERATED_CONTENT = Holding(Capability.COMMENTS_MODERATE, InDepartments())
_CONTENT = TableReach(
    read=AnyOf(_PUBLISHED, _EDITABLE, _MODERATED_CONTENT),
    write=_EDITABLE,
    purposes={"published": _PUBLISHED, "edit": _EDITABLE, "moderate": _MODERATED_CONTENT},
)
# Under a piece of content: visible comments, and the reader's own held ones (marked held).
_SHOWN_COMMENT = AnyOf(
    LoggedIn(_status(ContentStatus.VISIBLE)), AllOf(_status(ContentStatus.HELD), Own("commenter_id"))
)
_MODERATED_COMMENT = Holding(Capability.COMMENTS_MODERATE, CommentOnContent(InDepartments()))

# ---- learning: managers the live tasks of their departments (and every assignment of them); staff their own
_LIVE_TASK = Where(_not_deleted)
_MANAGED_TASK = AllOf(_LIVE_TASK, InDepartments())
_OWN_ASSIGNMENT = AllOf(Own("user_id"), Via("task_id", LearningTask, _LIVE_TASK))

_OF_STAFF_IN_REACH = Via("user_id", User, InDepartments())

# ---- schedules: the clinic's timetable is anyone's to read (a patient picks a session from it); managers
# (capability) change the schedules of their departments and their own; a place is taken in an open session
_MANAGED_SCHEDULE = Holding(Capability.SCHEDULE_MANAGE, AnyOf(InDepartments(), Own("physician_id")))
_OPEN_SCHEDULE = Where(lambda table: table.status == ScheduleStatus.OPEN.value)

REACH: dict[type[SQLModel], TableReach] = {
    # ---- patients and their records: the patient scope (policies/scope.py). Voided records stay in reach (a merge
    # moves them, writes and history find them); whether one is shown is policies/voided.py's rule, not the reach.
    Patient: TableReach(read=PatientScope()),
    Visit: TableReach(read=ViaPatient()),
    Diagnosis: TableReach(read=ViaPatient()),
    ExamReport: TableReach(read=ViaPatient()),
    TreatmentPlan: TableReach(read=ViaPatient()),
    FollowUp: TableReach(read=ViaPatient()),
    PatientBindingCode: TableReach(read=ViaPatient()),
    Amendment: TableReach(read=ViaPatient()),
    # Appointments are the patient's records; their status history goes with them.
    # Which places of a session are taken is no patient's data: booking reads the place numbers of everyone's.
    Appointment: TableReach(read=ViaPatient(), purposes={"places": Everyone()}),
    AppointmentStatusChange: TableReach(read=Via("appointment_id", Appointment)),
    Schedule: TableReach(
        read=Everyone(),
        write=_MANAGED_SCHEDULE,
        purposes={"manage": _MANAGED_SCHEDULE, "book": _OPEN_SCHEDULE, "release": Everyone()},
    ),
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
    # ---- consultations
    Conversation: TableReach(
        read=_CONVERSATION,
        purposes={
            "participate": _PARTICIPANT,
            "manage": _MANAGED,
            # A system message: by a manager, in a conversation they reach (one they take part in included).
            "post": Holding(Capability.CONSULTATION_MANAGE, _CONVERSATION),
        },
    ),
    # Managers see every message of their conversations (deleted and held ones marked); participants what is
    # shown to them; only managers change a message, and a recipient marks what was sent to them read.
    Message: TableReach(
        read=AnyOf(_SHOWN_MESSAGE, _MANAGED_MESSAGE),
        write=_MANAGED_MESSAGE,
        purposes={"shown": _SHOWN_MESSAGE, "manage": _MANAGED_MESSAGE, "recipient": Own("recipient_id")},
    ),
    # An upload: its owner (the only one who attaches it), and whoever reaches a message showing it.
    Upload: TableReach(
        read=AnyOf(Own("owner_id"), ReferencedBy(Message, "image_id")),
        write=Own("owner_id"),
        purposes={"attach": Own("owner_id")},
    ),
    # ---- health education
    Article: _CONTENT,
    Video: _CONTENT,
    Comment: TableReach(
        read=AnyOf(_SHOWN_COMMENT, _MODERATED_COMMENT),
        write=_MODERATED_COMMENT,
        purposes={"shown": _SHOWN_COMMENT, "moderate": _MODERATED_COMMENT},
    ),
    # The keyword list: every comment and message is checked against all of it, whoever writes.
    ModerationKeyword: TableReach(read=Everyone()),
    # ---- learning
    LearningTask: TableReach(
        read=AllOf(_LIVE_TASK, AnyOf(InDepartments(), ReferencedBy(LearningAssignment, "task_id", Own("user_id")))),
        write=_MANAGED_TASK,
        purposes={"manage": _MANAGED_TASK},
    ),
    LearningAssignment: TableReach(
        read=AnyOf(_OWN_ASSIGNMENT, Via("task_id", LearningTask, _MANAGED_TASK)),
        write=_OWN_ASSIGNMENT,
        purposes={"own": _OWN_ASSIGNMENT},
    ),
    # ---- people and organisation
    # Users of the caller's departments, and oneself (one's own account: profile, password, TOTP). Administering
    # a user (`manage`) reaches the users of one's departments only: a user one creates or moves must land
    # there, so nobody moves themselves (or anyone) out to a department they do not reach. Display names
    # (`name`: an attending physician, an author) and whether a username is taken are everyone's.
    User: TableReach(
        read=AnyOf(Own("id"), InDepartments()),
        purposes={
            "name": Everyone(),
            "manage": InDepartments(),
            # whom a filter of a search may name: people of the rows the search itself reaches
            "sender": ReferencedBy(Message, "sender_id", purpose="manage"),
            "recipient": ReferencedBy(Message, "recipient_id", purpose="manage"),
            "commenter": ReferencedBy(Comment, "commenter_id", purpose="moderate"),
            "scheduled": ReferencedBy(Schedule, "physician_id"),  # physicians of the timetable
        },
    ),
    # Roles and the organisation are reference data; a user's role links are seen with the user.
    Role: TableReach(read=Everyone()),
    # Whether an account a schedule plan names holds a physician role is asked by whoever may name the account.
    UserRole: TableReach(read=Via("user_id", User), purposes={"name": Via("user_id", User, purpose="name")}),
    # A filter of the timetable names a department holding sessions.
    Department: TableReach(read=Everyone(), purposes={"scheduled": ReferencedBy(Schedule, "department_id")}),
    Position: TableReach(read=Everyone()),
    # Labels of coded values and the console's menu are reference data too: which dictionaries and entries a
    # caller is shown is decided by their schema (schema/dictionary.py, resolvers/menu.py), not by row.
    DictionaryEntry: TableReach(read=Everyone()),
    Menu: TableReach(read=Everyone()),
    # Protocols are shared reference data: anyone whose schema reaches them reads every one (creating one is a
    # mutation's permission).
    FollowUpProtocol: TableReach(read=Everyone()),
    # ---- sessions and logs: one's own, and those of the staff one administers (ended with their account);
    # logging in, refreshing and the lockout count reach them as system work (resolvers/auth/).
    AuthSession: TableReach(read=AnyOf(Own("user_id"), _OF_STAFF_IN_REACH)),
    RefreshToken: TableReach(read=Nobody()),
    LoginLog: TableReach(read=AnyOf(Own("user_id"), _OF_STAFF_IN_REACH)),
    LoginGate: TableReach(read=Nobody()),
    # Events: by the caller, by staff in their departments, or about the caller's own record.
    # The operation log (mutations): one's own, and those of the staff of one's departments.
    Event: TableReach(
        read=AnyOf(Own("actor_id"), Via("actor_id", User, InDepartments()), OwnRecord()),
        purposes={"oplog": AnyOf(Own("actor_id"), Via("actor_id", User, InDepartments()))},
    ),
    # ---- the platform's machinery: system code only
    EventSeal: TableReach(read=Nobody()),
    AuditSealState: TableReach(read=Nobody()),
    AuditSealGap: TableReach(read=Nobody()),
    CasbinRule: TableReach(read=Nobody()),
    SeededPolicyLine: TableReach(read=Nobody()),
    SeededMenuEntry: TableReach(read=Nobody()),
    PersistedDocument: TableReach(read=Nobody()),
    # ---- FHIR bulk exports: the requester's own (their status URL, files and cancellation)
    FhirExport: TableReach(read=Own("requested_by_id")),
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
