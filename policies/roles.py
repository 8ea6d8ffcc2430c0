"""The built-in roles (keys, names, data scopes) and the role the platform itself hands out.

Role keys are data everywhere else: the policy gives them their permissions and capabilities. These are the
roles every installation starts with, and the one a mini-program account receives when it binds a patient
record (it cannot be granted otherwise, through the API, without an admin).
"""

from __future__ import annotations

from collections.abc import Iterable

from models.role import DataScope
from policies.access import Access
from policies.capabilities import Capability
from policies.decision import grants
from policies.store import PolicyStore

BUILTIN_ROLES: tuple[tuple[str, str, DataScope], ...] = (
    ("admin", "系统管理员 Administrator", DataScope.ALL),
    ("dept_admin", "科室管理员 Department admin", DataScope.DEPARTMENT_AND_BELOW),
    ("chief_physician", "主任医师 Chief physician", DataScope.DEPARTMENT_AND_BELOW),
    ("physician", "医师 Physician", DataScope.SELF),
    ("patient", "患者 Patient", DataScope.SELF),
)

# The role of a mini-program account bound to its patient record (bindPatientRecord), taken away when the
# account is closed (deleteMyAccount).
PATIENT_ROLE = "patient"
# The role whose holders (by their own key or by inheritance: a chief physician is one) run clinic sessions.
PHYSICIAN_ROLE = "physician"
# The client a mini-program session is opened for (wechatLogin); its trusted documents are registered under it.
MINI_PROGRAM_CLIENT = "mini-program"
# The role of the operator's own principal on the command line (`server.py create-admin` and the like).
OPERATOR_ROLE = "admin"


def may_assign(access: Access, policy: PolicyStore, role_key: str, role_scope: DataScope) -> bool:
    """Whether this caller may give someone the role: holders of `capability:roles.assign_any` any role (whoever
    may grant permissions could give themselves any of them anyway); others only a role whose data scope and
    permissions do not exceed their own."""
    if access.can(Capability.ROLES_ASSIGN_ANY):
        return True
    own = policy.permissions_of(access.principal.schema_roles)
    return access.scope_covers(role_scope) and PolicyStore.covers(own, policy.permissions(role_key))


# What makes a role "admin-level" for the second factor (TOTP_REQUIRED_FOR_ADMIN): it can change who may do
# what. Any role holding one of these, by its own lines or by inheritance, needs TOTP: not a role key.
PRIVILEGED: tuple[tuple[str, str], ...] = (
    ("Mutation.grantPermission", "execute"),
    ("Mutation.revokePermission", "execute"),
    ("Mutation.createRole", "execute"),
    ("Mutation.updateRole", "execute"),
    (Capability.ROLES_ASSIGN_ANY.coordinate, "execute"),
)


def holds_physician_role(policy: PolicyStore, role_keys: Iterable[str]) -> bool:
    """Whether an account with these roles is a physician: one of them is the physician role or inherits it."""
    return any(key == PHYSICIAN_ROLE or PHYSICIAN_ROLE in policy.inherited_roles(key) for key in role_keys)


def needs_second_factor(policy: PolicyStore, role_keys: Iterable[str]) -> bool:
    held = policy.permissions_of(role_keys)
    return any(grants(held, coordinate, action) for coordinate, action in PRIVILEGED)


def held_to_trusted_documents(client: str, role_keys: Iterable[str]) -> bool:
    """Whether a session runs only the mini-program's trusted documents: every mini-program session, and every
    session of an account holding the patient role however it began (a password login included), so "patients
    run only the mini-program's documents" holds for the account, not for one way of logging in."""
    return client == MINI_PROGRAM_CLIENT or PATIENT_ROLE in role_keys


def may_request_console_account(role_keys: Iterable[str]) -> bool:
    """Whether `completeProfile` may give the account console credentials: not to a patient (their account is
    the mini-program's; a password login would only add a second way into the same trusted documents)."""
    return PATIENT_ROLE not in role_keys


def may_bind_patient_record(role_keys: Iterable[str]) -> bool:
    """Only an account with no role but the patient's may be linked to a patient record: a staff account linked
    to one would reach it for good (through the link), whatever its grants said."""
    return set(role_keys) <= {PATIENT_ROLE}


def is_staff(role_keys: Iterable[str]) -> bool:
    """An account holding any role but the patient's (whose use of the service is counted per staff member)."""
    return bool(set(role_keys) - {PATIENT_ROLE})
