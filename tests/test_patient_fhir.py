"""The FHIR R4 export: a valid Bundle, scoped, with sensitive values as the role sees them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select

from core.db import Database
from models.clinical import Diagnosis, Visit
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

BUNDLE = "query ($id: ID!) { patientFhirBundle(id: $id) }"


def _resident_id(patient: dict[str, Any]) -> Any:
    found = [i for i in patient.get("identifier", []) if i["system"] == "urn:oid:2.16.156.10011.1.1"]
    return found[0] if found else None


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


async def test_bundle_validates_as_fhir_r4_and_holds_the_history(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "chief"))[0]
    bundle = (await client.data(BUNDLE, {"id": gid("Patient", patient.id)}, as_="chief"))["patientFhirBundle"]
    # R4 is validated against the R4B models, which match it for these resources.
    Bundle.model_validate(bundle)
    kinds = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    async with db.session() as session:
        visits = (
            await session.execute(select(func.count()).select_from(Visit).where(Visit.patient_id == patient.id))
        ).scalar_one()
        codes = (
            (await session.execute(select(Diagnosis.icd10_code).where(Diagnosis.patient_id == patient.id)))
            .scalars()
            .all()
        )
    assert kinds["Patient"] == 1 and kinds["Encounter"] == visits and kinds["Condition"] == len(codes)
    conditions = _resources(bundle, "Condition")
    assert {c["code"]["coding"][0]["code"] for c in conditions} == set(codes)
    assert all(c["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10" for c in conditions)
    (fhir_patient,) = _resources(bundle, "Patient")
    # The chief sees the identity number masked, the phone whole.
    assert _resident_id(fhir_patient)["value"] == patient.id_number[:3] + "*" * 11 + patient.id_number[-4:]
    assert fhir_patient["telecom"][0]["value"] == patient.phone


async def test_physician_bundle_masks_phone_and_omits_identity_number(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    bundle = (await client.data(BUNDLE, {"id": gid("Patient", own.id)}, as_="physician"))["patientFhirBundle"]
    Bundle.model_validate(bundle)
    (fhir_patient,) = _resources(bundle, "Patient")
    assert _resident_id(fhir_patient) is None
    assert fhir_patient["telecom"][0]["value"] == own.phone[:3] + "****" + own.phone[-4:]


async def test_bundle_out_of_scope_or_for_a_patient_role_is_refused(client: GraphQLClient, db: Database) -> None:
    stranger = (await patients_of(db, "physician2"))[0]
    assert error_codes(await client.run(BUNDLE, {"id": gid("Patient", stranger.id)}, as_="physician")) == ["NOT_FOUND"]
    assert error_codes(await client.run(BUNDLE, {"id": gid("Patient", stranger.id)}, as_="patient")) == [
        "GRAPHQL_VALIDATION_FAILED"
    ]


GRANT = (
    "mutation ($r: String!, $o: String!, $a: String!) { grantPermission(roleKey: $r, object: $o, action: $a) { key } }"
)
REVOKE = (
    "mutation ($r: String!, $o: String!, $a: String!) { revokePermission(roleKey: $r, object: $o, action: $a) { key } }"
)
FIELDS = "query ($id: ID!) { patient(id: $id) { address phone idNumber examReports { conclusion } } }"
WITHOUT_ID_NUMBER = "query ($id: ID!) { patient(id: $id) { address phone examReports { conclusion } } }"


async def _bundle(client: GraphQLClient, patient_id: str, as_: str) -> dict[str, Any]:
    bundle: dict[str, Any] = (await client.data(BUNDLE, {"id": patient_id}, as_=as_))["patientFhirBundle"]
    Bundle.model_validate(bundle)
    return bundle


async def test_bundle_values_are_the_fields_values(client: GraphQLClient, db: Database) -> None:
    """The bundle asks the same field decision as the fields: what `patient(id)` shows, the bundle carries."""
    own = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", own.id)
    fields = (await client.data(WITHOUT_ID_NUMBER, {"id": pid}, as_="physician"))["patient"]
    (fhir_patient,) = _resources(await _bundle(client, pid, "physician"), "Patient")
    assert fields["address"] and fhir_patient["address"] == [{"text": fields["address"]}]
    assert "*" in fields["phone"] and fhir_patient["telecom"][0]["value"] == fields["phone"]
    assert _resident_id(fhir_patient) is None

    # A policy change reaches both alike: the physician is granted the identity number masked, then the phone whole.
    await client.data(GRANT, {"r": "physician", "o": "Patient.idNumber", "a": "read_masked"}, as_="admin")
    await client.data(GRANT, {"r": "physician", "o": "Patient.phone", "a": "read"}, as_="admin")
    fields = (await client.data(FIELDS, {"id": pid}, as_="physician"))["patient"]
    (fhir_patient,) = _resources(await _bundle(client, pid, "physician"), "Patient")
    assert "*" in fields["idNumber"] and _resident_id(fhir_patient)["value"] == fields["idNumber"]
    assert fields["phone"] == own.phone and fhir_patient["telecom"][0]["value"] == own.phone


async def test_fields_revoked_from_a_role_leave_its_bundle(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", own.id)
    before = await _bundle(client, pid, "physician")
    (fhir_patient,) = _resources(before, "Patient")
    reports = _resources(before, "DiagnosticReport")
    assert fhir_patient["address"] == [{"text": own.address}]
    assert reports and all(report["conclusion"] for report in reports)

    await client.data(REVOKE, {"r": "physician", "o": "Patient.address", "a": "read"}, as_="admin")
    await client.data(REVOKE, {"r": "physician", "o": "ExamReport.*", "a": "read"}, as_="admin")
    # The fields are gone from the physician's schema ...
    refused = await client.run(WITHOUT_ID_NUMBER, {"id": pid}, as_="physician")
    assert set(error_codes(refused)) == {"GRAPHQL_VALIDATION_FAILED"}
    # ... and their values from the bundle; the rest stays.
    after = await _bundle(client, pid, "physician")
    (fhir_patient,) = _resources(after, "Patient")
    assert "address" not in fhir_patient and own.address not in str(after)
    assert _resources(after, "DiagnosticReport") == []
    assert all("conclusion" not in entry["resource"] for entry in after["entry"])
    assert fhir_patient["telecom"] and len(_resources(after, "Encounter")) == len(_resources(before, "Encounter"))

    await client.data(GRANT, {"r": "physician", "o": "Patient.address", "a": "read"}, as_="admin")
    (fhir_patient,) = _resources(await _bundle(client, pid, "physician"), "Patient")
    assert fhir_patient["address"] == [{"text": own.address}]
