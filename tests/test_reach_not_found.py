"""An id of an existing object outside the caller's reach answers NOT_FOUND, for every ID argument of every
query and mutation in each demo role's schema, and writes nothing (issue 13, item 6).

Generic: the ID arguments (and ID fields of input objects) come from the role's schema, their types from the
server's own decoding, the objects from the admin's lists and the demo data, reach from the role's own lists
and the demo layout (tests/reach_oracle.py, tests/schema_walk.py). A module added later is covered without
new test code; an argument whose type cannot be worked out, or a type no oracle can place, fails the test.
One database reset per role: nothing the role is refused may change a row anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from graphql import GraphQLField, Undefined, is_non_null_type

from core.db import Database
from core.ids import encode_id
from tests.conftest import GraphQLClient, error_codes
from tests.reach_makers import make_outside
from tests.reach_oracle import (
    DISCOVERED,
    Caller,
    DecodeRecorder,
    Layout,
    Variant,
    caller,
    changed_rows,
    demo_layout,
    discover,
    events_since,
    last_event,
    outside,
    pk,
    table_rows,
)
from tests.schema_walk import (
    Slot,
    enum_arguments,
    id_kind,
    id_slots,
    minimal_selection,
    plausible,
    root_field,
    set_path,
    variables_document,
)

ROLES = ["physician", "physician2", "chief", "deptadmin", "patient"]

# Values for arguments (or input fields) whose plausible default input validation would refuse before any
# id is looked at, so a refusal could not be told from the reach check.
OVERRIDES: dict[str, Any] = {
    "icd10Code": "K64.1",  # checked against the ICD-10 list: a made-up code is BAD_USER_INPUT
    "text": "generic reach probe: a message",  # a message needs text or an image: both optional in the schema
    "reason": "generic reach probe: a reason",  # amending a signed-off record needs one: optional in the schema
}

# Slots found answering otherwise (see the report for the answers); listed here, they are reported, not failed,
# and one that answers NOT_FOUND again fails until it is taken out. Delete an entry to see it fail.
_EMPTY_PAGE = "an empty page, no error: the filter's id is not loaded through the caller's reach"
_CHECKED_FIRST = "BAD_USER_INPUT 'Unknown diagnosis for this patient': checked before (instead of) the reach check"
KNOWN: dict[tuple[str, tuple[str, ...]], str] = {}

# Operations whose purpose is to reach beyond the caller's reach: not NOT_FOUND by design.
EXEMPT: dict[tuple[str, tuple[str, ...]], str] = {
    ("emergencyAccess", ("patientId",)): "breaking the glass reaches a patient outside one's scope (a grant, reviewed)",
}

# ---- running an operation ---------------------------------------------------------------------------------


def _required(graphql_field: GraphQLField, name: str) -> bool:
    arg = graphql_field.args[name]
    return is_non_null_type(arg.type) and arg.default_value is Undefined


async def run(
    client: GraphQLClient, who: Caller, slot: Slot, enums: dict[str, str], ids: dict[tuple[str, ...], Any]
) -> dict[str, Any]:
    graphql_field = root_field(who.schema, slot)
    label = slot.operation
    variables = {
        name: plausible(arg.type, name, OVERRIDES, label)
        for name, arg in graphql_field.args.items()
        if _required(graphql_field, name) or name in OVERRIDES
    }
    variables.update(enums)
    slots = {s.path: s for s in id_slots(who.schema) if s.operation == slot.operation and s.root == slot.root}
    for path, value in ids.items():
        set_path(variables, path, value, slots[path].is_list)
    document = variables_document(graphql_field, slot.root, slot.operation, minimal_selection(graphql_field))
    return await client.run(document, variables, as_=who.username)


async def variants_of(
    client: GraphQLClient, recorder: DecodeRecorder, who: Caller, admin: Caller, slot: Slot
) -> list[Variant]:
    key = (slot.root, slot.operation)
    if key not in DISCOVERED:
        admin_root = admin.schema.query_type if slot.root == "query" else admin.schema.mutation_type
        finder = admin if admin_root is not None and slot.operation in admin_root.fields else who
        slots = [s for s in id_slots(finder.schema) if (s.root, s.operation) == key]

        async def call(enums: dict[str, str], ids: dict[tuple[str, ...], Any]) -> dict[str, Any]:
            return await run(client, finder, slots[0], enums, ids)

        def existing(kind: str) -> str:
            return (finder.inside(kind) or [encode_id(kind, 1)])[0]

        DISCOVERED[key] = await discover(
            recorder, slots, enum_arguments(root_field(finder.schema, slot)), existing, call
        )
    return DISCOVERED[key]


# ---- the report -------------------------------------------------------------------------------------------


@dataclass
class Finding:
    slot: Slot
    enums: dict[str, str]
    where: str
    answer: str
    codes: list[str]
    filler_refused: bool = False  # the test's own input is refused with ids in reach too

    def known(self) -> bool:
        return (self.slot.operation, self.slot.path) in KNOWN and not self.filler_refused


@dataclass
class Report:
    username: str
    findings: list[Finding] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)
    exempt: list[str] = field(default_factory=list)
    passed: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    probes: int = 0

    def settle(self) -> None:
        """Findings listed in KNOWN are reported, not failed; a KNOWN slot that now answers NOT_FOUND fails."""
        wrong = {(f.slot.operation, f.slot.path) for f in self.findings}
        self.failures += [f"{f.where}: {f.answer}" for f in self.findings if not f.known()]
        self.failures += [
            f"{operation}({'.'.join(path)}) answers NOT_FOUND now: remove it from KNOWN"
            for operation, path in sorted(self.passed & KNOWN.keys() - wrong)
        ]

    def render(self) -> str:
        lines = [f"{self.username}: {self.probes} out-of-reach calls, {len(self.failures)} wrong"]
        lines += [f"  WRONG {line}" for line in self.failures]
        lines += [f"  known: {f.where}: {f.answer}" for f in self.findings if f.known()]
        lines += [f"  not covered: {line}" for line in self.uncovered]
        lines += [f"  exempt: {line}" for line in self.exempt]
        return "\n".join(lines)


def _readable(gid: str) -> str:
    kind = id_kind(gid)
    return f"{kind[0]}:{kind[1]}" if kind else gid


def _answer(result: dict[str, Any], operation: str) -> str:
    errors = result.get("errors") or []
    data = result.get("data")
    parts = [f"{e.get('extensions', {}).get('code')} {e.get('message', '')!r}" for e in errors] or ["no error"]
    if data and data.get(operation) is not None:
        parts.append(f"data {str(data[operation])[:80]}")
    return "; ".join(parts)


def _pick(targets: list[str]) -> list[str]:
    """The first and the last by key: in the demo layout they lie outside for different reasons."""
    return sorted({targets[0], targets[-1]}, key=pk)


async def _probe(
    client: GraphQLClient,
    db: Database,
    who: Caller,
    layout: Layout,
    slot: Slot,
    variant: Variant,
    target: str,
    report: Report,
) -> None:
    ids: dict[tuple[str, ...], Any] = {slot.path: target}
    for other in id_slots(who.schema):
        if (other.root, other.operation) == (slot.root, slot.operation) and other != slot and other.required:
            # optional ones stay out; required ones get an id the caller reaches (else one it does not)
            kinds = sorted(variant.of(other.path))
            mine = [g for g in who.inside(kinds[0]) if layout.inside(g, who.seen) is not False] if kinds else []
            ids[other.path] = mine[0] if mine else target
    enums = dict(variant.enums)
    mark = await last_event(db)
    result = await run(client, who, slot, enums, ids)
    events = await events_since(db, mark)
    report.probes += 1
    data = result.get("data")
    codes = error_codes(result)
    answered = data is not None and data.get(slot.operation) is not None
    if codes == ["NOT_FOUND"] and not answered and len(events) <= 1 and all(e[2] != "success" for e in events):
        report.passed.add((slot.operation, slot.path))
        return
    where = f"{slot.name} [{', '.join(f'{k}={v}' for k, v in variant.enums)}] {_readable(target)}".replace(" [] ", " ")
    wrote = len(events) > 1 or any(e[2] == "success" for e in events)
    answer = _answer(result, slot.operation) + (f"; events {events}" if wrote else "")
    report.findings.append(Finding(slot, enums, where, answer, codes))


async def _control(client: GraphQLClient, recorder: DecodeRecorder, who: Caller, admin: Caller, report: Report) -> None:
    """A BAD_USER_INPUT for an out-of-reach id: the same input with ids the caller reaches tells the test's
    filler (refused there too: add an OVERRIDE) from input checked before the reach check (a finding).
    Runs after the write check: in reach, the operation may well write."""
    for finding in report.findings:
        if "BAD_USER_INPUT" not in finding.codes:
            continue
        variants = await variants_of(client, recorder, who, admin, finding.slot)
        variant = next(v for v in variants if dict(v.enums) == finding.enums)
        ids = {path: (who.inside(sorted(kinds)[0]) or [""])[0] for path, kinds in variant.types}
        result = await run(client, who, finding.slot, finding.enums, ids)
        codes = error_codes(result)
        finding.filler_refused = "BAD_USER_INPUT" in codes
        if finding.filler_refused:
            verdict = "the test's input is refused in reach too: add an OVERRIDE"
        elif codes == ["NOT_FOUND"]:
            verdict = "nothing in reach to compare with"
        else:
            verdict = "input checked before reach"
        finding.answer += f" ({verdict}; in reach: {_answer(result, finding.slot.operation)})"


@pytest.mark.parametrize("username", ROLES)
async def test_out_of_reach_ids_answer_not_found(
    client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    recorder = DecodeRecorder(monkeypatch)
    made, owned = await make_outside(client, db)
    admin = await caller(client, "admin")
    admin.seen.add(made + owned)  # some are in no list
    owners = {obj["id"]: admin.user_gid for obj in owned}
    who = await caller(client, username)
    slots = id_slots(who.schema)
    variants = {slot: await variants_of(client, recorder, who, admin, slot) for slot in slots}

    kinds = {kind for vs in variants.values() for v in vs for _, ks in v.types for kind in ks}
    missing = sorted(kind for kind in kinds if not admin.seen.of(kind))
    assert not missing, f"no object of {missing} in the demo data or tests/reach_makers.py: add one"
    layout = await demo_layout(db, username, owners)

    report = Report(username)
    before = await table_rows(db)
    for slot in slots:
        for variant in variants[slot]:
            if slot.path in variant.undetermined:
                report.failures.append(f"{slot.name}: its type could not be worked out (no decode_id call seen)")
            for kind in sorted(variant.of(slot.path)):
                if (slot.operation, slot.path) in EXEMPT:
                    report.exempt.append(f"{slot.name}: {EXEMPT[(slot.operation, slot.path)]}")
                    continue
                targets, decided = outside(who, admin, layout, kind)
                if not decided:
                    report.failures.append(
                        f"{slot.name}: no oracle places {kind} for {username} (a list or DEMO_REACH)"
                    )
                elif not targets:
                    report.uncovered.append(f"{slot.name}: no {kind} outside {username}'s reach")
                for target in _pick(targets) if targets else []:
                    await _probe(client, db, who, layout, slot, variant, target, report)
    report.failures += [f"written: {change}" for change in changed_rows(before, await table_rows(db))]
    await _control(client, recorder, who, admin, report)
    report.settle()
    print(report.render())
    assert not report.failures, report.render()
