"""What tests/test_reach_not_found.py needs besides the schema walk (tests/schema_walk.py) and the objects the
demo lacks (tests/reach_makers.py): which type each ID argument takes, which existing objects lie outside a
caller's reach, and what was written.

Types of ID arguments come from the server's own `decode_id` calls, watched while the operation runs with a
distinct probe id in each ID argument (core/ids.py: ids are base64 of `Type:pk`, and an id of another type
answers NOT_FOUND before anything is loaded): the probe of the first argument decoded names its type; that
argument then gets a real id and the next probe is watched. No call runs with real ids in every argument,
so working types out writes nothing.

Reach is decided by two sources, neither of them the by-id path under test:
* the caller's own list queries as the caller sees them, against the admin's (every id in the answers of
  every query field that takes no required argument, walked to depth; tests/schema_walk.py);
* the demo data's layout (tests/conftest.py; resolvers/demo/seed.py), read from the tables: patients 5 and 11
  are in Gastroenterology with physician2, 4 and 9 attended by chief, the rest by physician, patient 0 is
  bound to the `patient` account. So a physician reaches the patients they attend, the chief and the
  department admin those of Colorectal Surgery and the clinic below it, the patient their own record; a
  department-wide role reaches the accounts of its departments, anyone else only their own. Objects found
  below a patient in every place the admin sees them belong to that patient.
An object is outside when the caller's lists do not show it and the layout does not place it inside; where
the layout says nothing, the caller must have a list that could show the type, or the test fails loudly.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from graphql import GraphQLSchema
from sqlmodel import SQLModel, col, select

from core import ids
from core.db import Database
from models.audit import Event
from models.organisation import Department
from models.patient import Patient
from models.user import User
from resolvers.data.principal import principal_from_token
from tests.conftest import GraphQLClient
from tests.schema_walk import Seen, Slot, harvest_documents, id_kind

PROBE = "ReachProbe"  # no type has this name: a probe id is decoded, recorded, and refused

# ---- who is asking, and what they see ---------------------------------------------------------------


@dataclass
class Caller:
    username: str
    user_gid: str
    schema: GraphQLSchema
    seen: Seen = field(default_factory=Seen)
    listed: set[str] = field(default_factory=set)  # object types whose ids its list queries read

    def sees(self, gid: str) -> bool:
        kind = id_kind(gid)
        return kind is not None and gid in self.seen.of(kind[0])

    def inside(self, kind: str) -> list[str]:
        return sorted(self.seen.of(kind), key=pk)


def pk(gid: str) -> tuple[int, str]:
    kind = id_kind(gid)
    key = kind[1] if kind else ""
    return (int(key), gid) if key.isdigit() else (0, gid)


async def caller(client: GraphQLClient, username: str) -> Caller:
    """The demo user's own schema (the principal's role set, as the endpoint picks it) and everything it lists."""
    principal = await principal_from_token(client.services, await client.token(username))
    schema = client.services.registry.for_roles(principal.schema_roles)._schema
    who = Caller(username, ids.encode_id("User", principal.user_id), schema)
    await harvest(client, who)
    return who


async def harvest(client: GraphQLClient, who: Caller) -> None:
    for name, document in harvest_documents(who.schema, who.listed).items():
        result = await client.run(document, as_=who.username)
        assert "errors" not in result, (who.username, name, result["errors"][:2], document)
        who.seen.add(result["data"])


# ---- the type of each ID argument -------------------------------------------------------------------


class DecodeRecorder:
    """Every (type, value) the server's `decode_id` (and `decode_key`, for ids keyed by a token: sessions) is
    asked for while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        for original in (ids.decode_id, ids.decode_key):
            recording = self._recording(original)
            for name, module in list(sys.modules.items()):
                if module is None or not (name == "core.ids" or name.startswith(("schema.", "resolvers."))):
                    continue
                for attribute, value in list(vars(module).items()):
                    if value is original:
                        monkeypatch.setattr(module, attribute, recording)

    def _recording(self, original: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
        def recording(type_name: str, value: str) -> Any:
            self.calls.append((type_name, value))
            return original(type_name, value)

        return recording


@dataclass(frozen=True)
class Variant:
    """The types an operation's ID arguments take for one choice of its top-level enum arguments (a record
    type decides which table an id names)."""

    enums: tuple[tuple[str, str], ...]
    types: tuple[tuple[tuple[str, ...], frozenset[str]], ...]
    undetermined: tuple[tuple[str, ...], ...]

    def of(self, path: tuple[str, ...]) -> frozenset[str]:
        return dict(self.types).get(path, frozenset())


# (root, operation) -> its variants: types do not change between roles or databases, so work them out once.
DISCOVERED: dict[tuple[str, str], list[Variant]] = {}

# Runs the operation with these top-level enum values and these ids at these argument paths.
Call = Callable[[dict[str, str], dict[tuple[str, ...], Any]], Awaitable[dict[str, Any]]]


async def discover(
    recorder: DecodeRecorder, slots: list[Slot], enums: dict[str, list[str]], ids_of: Callable[[str], str], call: Call
) -> list[Variant]:
    """The variants of one operation; `ids_of(type)` gives an existing id of a type the caller reaches."""
    settings = [{name: values[0] for name, values in enums.items()}]
    settings += [{**settings[0], name: value} for name, values in enums.items() for value in values[1:]]
    variants: list[Variant] = []
    for chosen in settings:
        types: dict[tuple[str, ...], frozenset[str]] = {}
        while len(types) < len(slots):
            probes: dict[str, tuple[str, ...]] = {}
            values: dict[tuple[str, ...], Any] = {}
            for index, slot in enumerate(slots):
                if slot.path in types:
                    values[slot.path] = ids_of(sorted(types[slot.path])[0])
                else:
                    values[slot.path] = probe = ids.encode_id(PROBE, index + 1)
                    probes[probe] = slot.path
            recorder.calls.clear()
            await call(chosen, values)
            found: dict[tuple[str, ...], set[str]] = {}
            for type_name, value in recorder.calls:
                if value in probes:
                    found.setdefault(probes[value], set()).add(type_name)
            if not found:
                break
            types.update({path: frozenset(kinds) for path, kinds in found.items()})
        variant = Variant(
            enums=tuple(sorted(chosen.items())),
            types=tuple(sorted(types.items())),
            undetermined=tuple(slot.path for slot in slots if slot.path not in types),
        )
        if not any(v.types == variant.types and v.undetermined == variant.undetermined for v in variants):
            variants.append(variant)
    return variants


# ---- the demo layout --------------------------------------------------------------------------------

# How each demo user reaches patients and accounts (tests/conftest.py, resolvers/demo/seed.py).
DEMO_REACH = {
    "physician": "attends",
    "physician2": "attends",
    "chief": "department",
    "deptadmin": "department",
    "patient": "bound",
}


@dataclass
class Layout:
    user_gid: str
    patients: set[str]
    users: set[str]
    owners: dict[str, str]  # objects the test made: their owner

    def inside(self, gid: str, admin: Seen) -> bool | None:
        """True or False where the layout decides, None where it says nothing."""
        kind = id_kind(gid)
        assert kind is not None
        if kind[0] == "Patient":
            return gid in self.patients
        if kind[0] == "User":
            return gid in self.users
        if gid in self.owners:
            return self.owners[gid] == self.user_gid
        sightings = admin.sightings.get(gid, [])
        patients = [{other for other in seen if _is_patient(other)} for seen in sightings]
        if sightings and all(patients):
            return any(patient in self.patients for group in patients for patient in group)
        return None


def _is_patient(gid: str) -> bool:
    kind = id_kind(gid)
    return kind is not None and kind[0] == "Patient"


async def demo_layout(db: Database, username: str, owners: dict[str, str]) -> Layout:
    how = DEMO_REACH.get(username)
    if how is None:
        raise AssertionError(f"no demo layout for {username}: add it to DEMO_REACH")
    async with db.session() as session:
        user = (await session.execute(select(User.id, User.department_id).where(User.username == username))).one()
        parents: dict[int, int | None] = dict(
            (await session.execute(select(Department.id, Department.parent_id))).all()
        )
        patients = (
            await session.execute(
                select(Patient.id, Patient.department_id, Patient.attending_physician_id, Patient.wechat_user_id)
            )
        ).all()
        users = (await session.execute(select(User.id, User.department_id))).all()
    subtree = {d for d in parents if _below(d, user.department_id, parents)} if how == "department" else set()
    if how == "attends":
        reached = {p.id for p in patients if p.attending_physician_id == user.id}
    elif how == "bound":
        reached = {p.id for p in patients if p.wechat_user_id == user.id}
    else:
        reached = {p.id for p in patients if p.department_id in subtree}
    accounts = {u.id for u in users if u.id == user.id or u.department_id in subtree}
    return Layout(
        user_gid=ids.encode_id("User", user.id),
        patients={ids.encode_id("Patient", p) for p in reached},
        users={ids.encode_id("User", u) for u in accounts},
        owners=owners,
    )


def _below(department: int | None, top: int | None, parents: dict[int, int | None]) -> bool:
    while department is not None:
        if department == top:
            return True
        department = parents.get(department)
    return False


def outside(who: Caller, admin: Caller, layout: Layout, kind: str) -> tuple[list[str], bool]:
    """Existing objects of `kind` outside the caller's reach, and whether any oracle could decide."""
    found, decided = [], False
    for gid in sorted(admin.seen.of(kind), key=pk):
        verdict = layout.inside(gid, admin.seen)
        if verdict is None and kind not in who.listed:
            continue
        decided = True
        if not who.sees(gid) and verdict is not True:
            found.append(gid)
    return found, decided or not admin.seen.of(kind)


# ---- what was written -------------------------------------------------------------------------------

# Not domain data: the event table is checked call by call (a refusal at most); the chain's seals follow
# the events; sessions, tokens and login logs belong to logging in, done before the checks begin; request
# figures are counted for every request, refused ones too, and written in the background; a patient's probes are
# registered as the mini-program's trusted documents first (tests/conftest.py), as its build would be.
UNWATCHED = {
    "event",
    "event_seal",
    "audit_seal_state",
    "audit_seal_gap",
    "auth_session",
    "refresh_token",
    "login_log",
    "request_minute",
    "persisted_document",
}


async def table_rows(db: Database) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    async with db.session() as session:
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in UNWATCHED:
                rows[table.name] = sorted(repr(tuple(row)) for row in (await session.execute(table.select())).all())
    return rows


def changed_rows(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    changes = []
    for name, rows in before.items():
        gone, new = set(rows) - set(after[name]), set(after[name]) - set(rows)
        changes += [f"{name}: - {row[:200]}" for row in sorted(gone)] + [
            f"{name}: + {row[:200]}" for row in sorted(new)
        ]
    return changes


async def last_event(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(Event.id).order_by(col(Event.id).desc()).limit(1))).scalar() or 0)


async def events_since(db: Database, after: int) -> list[tuple[int, str, str]]:
    async with db.session() as session:
        statement = (
            select(Event.id, Event.operation, Event.outcome).where(col(Event.id) > after).order_by(col(Event.id))
        )
        return [(row.id, row.operation, row.outcome) for row in (await session.execute(statement)).all()]
