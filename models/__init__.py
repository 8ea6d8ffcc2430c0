"""Every table, imported so that SQLModel.metadata (and so Alembic) knows them all."""

from models.auth import AuthSession, LoginLog, RefreshToken
from models.event import Event
from models.organisation import Department, Position
from models.policy import CasbinRule, SeededPolicyLine
from models.user import DataScope, Role, User, UserRole, UserStatus

__all__ = [
    "AuthSession",
    "CasbinRule",
    "DataScope",
    "Department",
    "Event",
    "LoginLog",
    "Position",
    "RefreshToken",
    "Role",
    "SeededPolicyLine",
    "User",
    "UserRole",
    "UserStatus",
]
