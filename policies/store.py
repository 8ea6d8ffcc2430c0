"""The one source of truth for permissions: a Casbin enforcer over the `casbin_rule` table.

Objects are GraphQL schema coordinates (`Patient.phone`, `Mutation.assignRoles`, or `Type.*`),
actions `read`, `read_masked`, `execute`. Role inheritance is Casbin's `g`. Decisions are derived
per role once and cached until the policy changes, never made per field per row.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casbin
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database
from models.policy import CasbinRule, SeededPolicyLine
from policies import capabilities as caps
from policies.access import ANONYMOUS, AUTHENTICATED
from policies.capabilities import Capability
from policies.decision import FieldDecision, grants
from policies.masking import MASKS

log = logging.getLogger(__name__)

MODEL_PATH = Path(__file__).with_name("model.conf")
DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.csv")

ACTIONS = ("read", "read_masked", "execute")
__all__ = ["ANONYMOUS", "AUTHENTICATED", "PolicyLine", "PolicyStore"]


@dataclass(frozen=True)
class PolicyLine:
    ptype: str
    values: tuple[str, ...]

    @property
    def text(self) -> str:
        return ", ".join((self.ptype, *self.values))


def read_default_policy(path: Path = DEFAULT_POLICY_PATH) -> list[PolicyLine]:
    lines: list[PolicyLine] = []
    with path.open(encoding="utf-8") as handle:
        for row in csv.reader(handle, skipinitialspace=True):
            if not row or row[0].strip().startswith("#"):
                continue
            ptype, *values = (cell.strip() for cell in row)
            lines.append(PolicyLine(ptype, tuple(values)))
    return lines


class PolicyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.enforcer = casbin.Enforcer(str(MODEL_PATH))
        self.version = 0
        self._permissions: dict[str, frozenset[tuple[str, str]]] = {}
        self._decisions: dict[frozenset[str], FieldDecision] = {}
        self._capabilities: dict[frozenset[str], frozenset[Capability]] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    async def load(self) -> None:
        """(Re)load every rule from the database; clears every derived decision."""
        async with self.db.session() as session:
            rows = (await session.execute(select(CasbinRule))).scalars().all()
        enforcer = casbin.Enforcer(str(MODEL_PATH))
        for row in rows:
            values = [v for v in (row.v0, row.v1, row.v2, row.v3, row.v4, row.v5) if v != ""]
            if row.ptype == "p":
                enforcer.add_policy(*values)
            elif row.ptype == "g":
                enforcer.add_grouping_policy(*values)
        self.enforcer = enforcer
        self._permissions = {}
        self._decisions = {}
        self._capabilities = {}
        self.version += 1
        for listener in self._listeners:
            listener()

    # ---- decisions -------------------------------------------------------------------------

    def permissions(self, role: str) -> frozenset[tuple[str, str]]:
        """Every (object, action) a role holds, its inherited roles' included."""
        cached = self._permissions.get(role)
        if cached is None:
            rules = self.enforcer.get_implicit_permissions_for_user(role)
            cached = frozenset((rule[1], rule[2]) for rule in rules)
            self._permissions[role] = cached
        return cached

    def permissions_of(self, roles: Iterable[str]) -> frozenset[tuple[str, str]]:
        result: set[tuple[str, str]] = set()
        for role in roles:
            result |= self.permissions(role)
        return frozenset(result)

    @staticmethod
    def grants(permissions: frozenset[tuple[str, str]], coordinate: str, action: str) -> bool:
        return grants(permissions, coordinate, action)

    @staticmethod
    def covers(own: frozenset[tuple[str, str]], wanted: Iterable[tuple[str, str]]) -> bool:
        """Whether `own` holds every permission in `wanted`: a `Type.*` covers its fields, `read` covers
        `read_masked` (whoever sees the value may let others see it masked)."""
        return all(grants(own, obj, act) or (act == "read_masked" and grants(own, obj, "read")) for obj, act in wanted)

    def decision(self, roles: frozenset[str]) -> FieldDecision:
        """The field decision of a role set, made once until the policy changes."""
        found = self._decisions.get(roles)
        if found is None:
            found = self._decisions[roles] = FieldDecision(self.permissions_of(roles))
        return found

    def capabilities(self, roles: frozenset[str]) -> frozenset[Capability]:
        """The capabilities a role set holds: inherited, except those that say they are not."""
        found = self._capabilities.get(roles)
        if found is None:
            held = self.permissions_of(roles)
            direct: set[tuple[str, str]] = set()
            for role in roles:
                direct.update(self.direct_permissions(role))
            found = frozenset(
                capability
                for capability in Capability
                if (capability.coordinate, caps.ACTION) in (held if capability.inherited else direct)
            )
            self._capabilities[roles] = found
        return found

    def holders(self, capability: Capability) -> list[str]:
        """The roles that hold a capability (by inheritance where it is inherited)."""
        roles = {line.values[0] for line in self.all_lines()} | {ANONYMOUS, AUTHENTICATED}
        return sorted(role for role in roles if capability in self.capabilities(frozenset({role})))

    def allows(self, roles: Iterable[str], coordinate: str, action: str) -> bool:
        return self.grants(self.permissions_of(roles), coordinate, action)

    def inherited_roles(self, role: str) -> list[str]:
        return list(self.enforcer.get_implicit_roles_for_user(role))

    def direct_permissions(self, role: str) -> list[tuple[str, str]]:
        return [(rule[1], rule[2]) for rule in self.enforcer.get_permissions_for_user(role)]

    def all_lines(self) -> list[PolicyLine]:
        policy = [PolicyLine("p", tuple(rule)) for rule in self.enforcer.get_policy()]
        grouping = [PolicyLine("g", tuple(rule)) for rule in self.enforcer.get_grouping_policy()]
        return policy + grouping

    def unknown_coordinates(self, known: set[str]) -> list[str]:
        """Policy lines naming no real schema coordinate or capability, or an action it cannot take."""
        return [line.text for line in self.all_lines() if line.ptype == "p" and line_problem(line, known)]


def line_problem(line: PolicyLine, known: set[str]) -> str | None:
    """Why a permission line cannot be granted, or None. Capabilities take `execute`; `read_masked` only
    where the field has a mask (elsewhere it would show the value in clear)."""
    _role, obj, act = line.values[:3]
    if act not in ACTIONS:
        return f"unknown action {act}"
    if caps.is_capability(obj):
        if obj not in caps.COORDINATES:
            return f"unknown capability {obj}"
        return None if act == caps.ACTION else "a capability takes 'execute'"
    if obj not in known:
        return f"no schema coordinate {obj}"
    if act == "read_masked" and obj not in MASKS:
        return f"{obj} has no mask: grant 'read' or nothing"
    return None


# ---- writes (seeding, in the caller's transaction; the API's grants are resolvers/role.py's) ---------------


def rule_row(line: PolicyLine) -> CasbinRule:
    """The casbin_rule row holding the line."""
    values = [*line.values, "", "", "", "", "", ""][:6]
    return CasbinRule(ptype=line.ptype, v0=values[0], v1=values[1], v2=values[2], v3=values[3])


async def add_rule(session: AsyncSession, line: PolicyLine) -> bool:
    """Insert a rule unless present; True when it was new."""
    existing = await session.execute(select(CasbinRule.id).where(*line_conditions(line)))
    if existing.first() is not None:
        return False
    session.add(rule_row(line))
    return True


def line_conditions(line: PolicyLine) -> list[Any]:
    """The conditions that find the line's casbin_rule rows."""
    columns = [CasbinRule.v0, CasbinRule.v1, CasbinRule.v2, CasbinRule.v3]
    conditions: list[Any] = [CasbinRule.ptype == line.ptype]
    conditions += [column == value for column, value in zip(columns, line.values, strict=False)]
    return conditions


async def seed_default_policy(session: AsyncSession, lines: list[PolicyLine] | None = None) -> int:
    """Add default lines never seeded before; a line an admin revoked stays revoked."""
    seeded = set((await session.execute(select(SeededPolicyLine.line))).scalars().all())
    added = 0
    for line in lines if lines is not None else read_default_policy():
        if line.text in seeded:
            continue
        if await add_rule(session, line):
            added += 1
        session.add(SeededPolicyLine(line=line.text))
        seeded.add(line.text)
    return added
