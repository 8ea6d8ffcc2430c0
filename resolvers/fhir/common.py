"""What every resource mapper shares: the code and identifier systems, the field decision as values are shown, a
patient's view while their resources are built, references and the pruning of those that would not resolve."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from policies.decision import FieldDecision, FieldMode

# ---- external systems (HL7, LOINC, UCUM, PRC identity cards) ---------------------------------------
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.1"  # PRC resident identity card
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_AGENT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


@dataclass(frozen=True)
class Systems:
    """The installation's own systems, under FHIR_SYSTEM_BASE (README, "FHIR"): stable once set."""

    base: str

    def code(self, name: str) -> str:
        return f"{self.base}/CodeSystem/{name}"

    def identifier(self, name: str) -> str:
        return f"{self.base}/sid/{name}"

    def full_url(self, reference: str) -> str:
        return f"{self.base}/{reference}"

    @property
    def tcm_syndrome(self) -> str:
        return self.code("tcm-syndrome")

    @property
    def measure(self) -> str:
        return self.code("follow-up-measure")

    @property
    def plan_type(self) -> str:
        return self.code("treatment-plan-type")

    @property
    def exam_kind(self) -> str:
        return self.code("exam-kind")

    @property
    def visit_type(self) -> str:
        return self.code("visit-type")

    @property
    def protocol(self) -> str:
        return self.code("follow-up-protocol")

    @property
    def staff(self) -> str:
        return self.identifier("staff")

    @property
    def department(self) -> str:
        return self.identifier("department")

    @property
    def patient(self) -> str:
        return self.identifier("patient")


class Shown:
    """The values of one type's fields as the caller's schema shows them (None: not shown)."""

    def __init__(self, decision: FieldDecision, type_name: str) -> None:
        self._decision = decision
        self._type = type_name
        self._modes: dict[str, FieldMode] = {}  # the decision's, looked up once per field (hot: every value)

    def _mode(self, field: str) -> FieldMode:
        mode = self._modes.get(field)
        if mode is None:
            mode = self._modes[field] = self._decision.mode(self._type, field)
        return mode

    def __call__(self, field: str, value: Any) -> Any:
        if value is None:
            return None
        mode = self._mode(field)
        if mode is FieldMode.CLEAR:
            return value
        if mode is FieldMode.HIDDEN:
            return None
        return self._decision.shown(self._type, field, value) if isinstance(value, str) else value

    def visible(self, field: str) -> bool:
        return self._mode(field) is not FieldMode.HIDDEN


@dataclass
class Built:
    """One resource, and the platform record it shows (for Provenance: which resources an amendment touched)."""

    resource: dict[str, Any]
    source: tuple[str, int] | None = None


@dataclass
class Shared:
    """What a batch of patients' mappers share: the decision, the systems, names of staff and departments, the
    latest amendment of each record."""

    decision: FieldDecision
    systems: Systems
    staff_names: dict[int, str] = field(default_factory=dict)
    department_names: dict[int, str] = field(default_factory=dict)
    amended_at: dict[tuple[str, int], datetime] = field(default_factory=dict)
    want_staff: set[int] = field(default_factory=set)  # loads add the staff whose names their resources show
    want_departments: set[int] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)  # per-domain reference data (follow-up protocols)
    _shown: dict[str, Shown] = field(default_factory=dict)

    def shown(self, type_name: str) -> Shown:
        found = self._shown.get(type_name)
        if found is None:
            found = self._shown[type_name] = Shown(self.decision, type_name)
        return found

    def visible(self, type_name: str, field_name: str) -> bool:
        return self.decision.visible(type_name, field_name)


@dataclass
class View:
    """One patient while their resources are built: the shared batch state, and the records shown so far."""

    shared: Shared
    patient_id: int
    sources: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    @property
    def systems(self) -> Systems:
        return self.shared.systems

    def shown(self, type_name: str) -> Shown:
        return self.shared.shown(type_name)

    def staff(self, user_id: int | None, *, shown: bool) -> dict[str, Any] | None:
        """A logical reference to a staff member (no Practitioner resource is exported): their platform id,
        and their name where the caller's schema shows it."""
        if user_id is None:
            return None
        reference: dict[str, Any] = {
            "type": "Practitioner",
            "identifier": {"system": self.systems.staff, "value": str(user_id)},
        }
        name = self.shared.staff_names.get(user_id) if shown else None
        if name:
            reference["display"] = name
        return reference

    def last_updated(self, entity_type: str, row: Any, *instants: datetime | None) -> dict[str, str]:
        """meta.lastUpdated: the latest of the record's own instants and its amendments."""
        candidates = [moment for moment in instants if moment is not None]
        amended = self.shared.amended_at.get((entity_type, int(row.id)))
        if amended is not None:
            candidates.append(amended)
        return {"lastUpdated": max(candidates).isoformat()} if candidates else {}


def ref(kind: str, pk: Any) -> dict[str, str]:
    return {"reference": f"{kind}/{pk}"}


def day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def reference_of(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def references(value: Any) -> Iterable[str]:
    """Every literal reference (`Type/id`) inside a resource."""
    if isinstance(value, dict):
        target = value.get("reference")
        if isinstance(target, str):
            yield target
        for inner in value.values():
            if isinstance(inner, dict | list):
                yield from references(inner)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def _dangles(value: Any, known: set[str]) -> bool:
    return isinstance(value, dict) and isinstance(value.get("reference"), str) and value["reference"] not in known


def prune(value: Any, known: set[str]) -> None:
    """Drop references to resources not in `known` (a record the caller's schema does not show, or one left out):
    the element holding one goes, and a list left empty by that goes too."""
    if isinstance(value, dict):
        for key in list(value):
            inner = value[key]
            if _dangles(inner, known):
                del value[key]
            elif isinstance(inner, list):
                inner[:] = [item for item in inner if not _dangles(item, known)]
                for item in inner:
                    prune(item, known)
                if not inner:
                    del value[key]
            elif isinstance(inner, dict):
                prune(inner, known)
                if not inner:
                    del value[key]
