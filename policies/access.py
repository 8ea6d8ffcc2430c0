"""Who is asking (Principal) and what they may reach (Access), decided once per request.

A Principal is what authentication established: the account, its session and roles, its department and
the widest data scope of its roles. An Access adds what the policy and the department tree make of it: the
departments in reach, the capabilities held and the field decision. Every scoped statement, masked value and
capability check of a request is derived from its Access; nothing outside `policies/` tests a role key or a
scope kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from models.role import DataScope
from policies.capabilities import Capability
from policies.decision import FieldDecision
from policies.scope import department_ids_in_scope

# Pseudo-roles every principal carries: nobody logged in, or anybody logged in.
ANONYMOUS = "anonymous"
AUTHENTICATED = "authenticated"


@dataclass(frozen=True)
class Principal:
    user_id: int | None = None
    session_id: str | None = None
    username: str | None = None
    role_keys: tuple[str, ...] = ()
    department_id: int | None = None
    data_scope: DataScope = DataScope.SELF
    client: str = "console"
    # Set when the account must first change its password or enrol TOTP, or is pending: its roles are withheld.
    restricted_reason: str | None = None
    # Runs only its client's trusted documents, by hash (policies/roles.py held_to_trusted_documents).
    trusted_documents_only: bool = False

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def schema_roles(self) -> frozenset[str]:
        """The role set whose schema this principal gets (pseudo-roles included)."""
        if not self.is_authenticated:
            return frozenset({ANONYMOUS})
        if self.restricted_reason:
            return frozenset({AUTHENTICATED})
        return frozenset({AUTHENTICATED, *self.role_keys})


ANONYMOUS_PRINCIPAL = Principal()


@dataclass(frozen=True)
class Access:
    """What one principal may reach. `departments` None means every department; empty means none."""

    principal: Principal
    departments: frozenset[int] | None
    capabilities: frozenset[Capability]
    decision: FieldDecision = field(compare=False)

    @property
    def user_id(self) -> int | None:
        return self.principal.user_id

    @property
    def scope(self) -> DataScope:
        return self.principal.data_scope

    @property
    def reaches_all(self) -> bool:
        return self.principal.data_scope is DataScope.ALL

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def reaches_department(self, department_id: int | None) -> bool:
        return self.departments is None or (department_id is not None and department_id in self.departments)

    # ---- rules that depend on the kind of scope (kept here, not in domain code) ------------------

    @property
    def attends_own_registrations(self) -> bool:
        """A caller who reaches only their own patients attends the patients they register."""
        return self.principal.data_scope is DataScope.SELF

    def registration_department(self, requested: int | None) -> int | None:
        """Where a patient this caller registers goes; None when the request is outside their reach."""
        if requested is None:
            return self.principal.department_id
        if self.principal.data_scope is DataScope.SELF:
            return requested if requested == self.principal.department_id else None
        return requested if self.reaches_department(requested) else None

    def reaches_group(self, department_id: int) -> bool:
        """Whether this caller may ask for a department's patients as a group (a FHIR Group export): a department
        their data scope reaches, or, for a caller who reaches only their own patients, their own department (they
        then get their own patients of it)."""
        if self.principal.data_scope is DataScope.SELF:
            return department_id == self.principal.department_id
        return self.reaches_department(department_id)

    def scope_covers(self, scope: DataScope) -> bool:
        """Whether a role of that data scope reaches no further than this caller."""
        return scope.rank <= self.principal.data_scope.rank


# The departments a scope reaches from a department, per department tree: the tree (`parents`) is replaced, never
# changed in place, when a department moves, so an entry holds while its tree is the one given (an identity check).
_IN_SCOPE: dict[tuple[DataScope, int | None], tuple[Mapping[int, int | None], frozenset[int] | None]] = {}
_IN_SCOPE_ENTRIES = 4096


def _departments(
    scope: DataScope, department_id: int | None, parents: Mapping[int, int | None]
) -> frozenset[int] | None:
    key = (scope, department_id)
    found = _IN_SCOPE.get(key)
    if found is not None and found[0] is parents:
        return found[1]
    allowed = department_ids_in_scope(scope, department_id, parents)
    departments = None if allowed is None else frozenset(allowed)
    if len(_IN_SCOPE) >= _IN_SCOPE_ENTRIES:
        _IN_SCOPE.clear()
    _IN_SCOPE[key] = (parents, departments)
    return departments


def build_access(
    principal: Principal,
    *,
    parents: Mapping[int, int | None],
    capabilities: frozenset[Capability],
    decision: FieldDecision,
) -> Access:
    return Access(
        principal=principal,
        departments=_departments(principal.data_scope, principal.department_id, parents),
        capabilities=capabilities,
        decision=decision,
    )
