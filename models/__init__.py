"""Every table, imported so that SQLModel.metadata (and so Alembic) knows them all."""

from models.audit_chain import AuditSealState, EventSeal
from models.auth import AuthSession, LoginLog, RefreshToken
from models.clinical import Diagnosis, ExamReport, FollowUp, FollowUpProtocol, TreatmentPlan, Visit
from models.engagement import (
    Article,
    Comment,
    Conversation,
    LearningAssignment,
    LearningTask,
    Message,
    ModerationKeyword,
    Upload,
    Video,
)
from models.event import Event
from models.integrity import AccessGrant, Amendment, PatientMerge
from models.organisation import Department, Position
from models.patient import Patient, PatientBindingCode
from models.policy import CasbinRule, SeededPolicyLine
from models.user import DataScope, Role, User, UserRole, UserStatus

__all__ = [
    "AccessGrant",
    "Amendment",
    "Article",
    "AuditSealState",
    "AuthSession",
    "CasbinRule",
    "Comment",
    "Conversation",
    "DataScope",
    "Department",
    "Diagnosis",
    "Event",
    "EventSeal",
    "ExamReport",
    "FollowUp",
    "FollowUpProtocol",
    "LearningAssignment",
    "LearningTask",
    "LoginLog",
    "Message",
    "ModerationKeyword",
    "Patient",
    "PatientBindingCode",
    "PatientMerge",
    "Position",
    "RefreshToken",
    "Role",
    "SeededPolicyLine",
    "TreatmentPlan",
    "Upload",
    "User",
    "UserRole",
    "UserStatus",
    "Video",
    "Visit",
]
