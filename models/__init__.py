"""Every table, imported so that SQLModel.metadata (and so Alembic) knows them all."""

from models.audit import AuditSealState, Event, EventSeal
from models.auth import AuthSession, LoginLog, RefreshToken
from models.clinical import Diagnosis, ExamReport, FollowUp, FollowUpProtocol, TreatmentPlan, Visit
from models.consultation import Conversation, Message
from models.education import Article, Comment, Video
from models.integrity import AccessGrant, Amendment, PatientMerge
from models.learning import LearningAssignment, LearningTask
from models.moderation import ModerationKeyword
from models.organisation import Department, Position
from models.patient import Patient, PatientBindingCode
from models.policy import CasbinRule, SeededPolicyLine
from models.role import DataScope, Role, UserRole
from models.upload import Upload
from models.user import User, UserStatus

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
