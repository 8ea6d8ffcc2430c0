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
    assert fhir_patient["identifier"][0]["value"] == patient.id_number[:3] + "*" * 11 + patient.id_number[-4:]
    assert fhir_patient["telecom"][0]["value"] == patient.phone


async def test_physician_bundle_masks_phone_and_omits_identity_number(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    bundle = (await client.data(BUNDLE, {"id": gid("Patient", own.id)}, as_="physician"))["patientFhirBundle"]
    Bundle.model_validate(bundle)
    (fhir_patient,) = _resources(bundle, "Patient")
    assert "identifier" not in fhir_patient
    assert fhir_patient["telecom"][0]["value"] == own.phone[:3] + "****" + own.phone[-4:]


async def test_bundle_out_of_scope_or_for_a_patient_role_is_refused(client: GraphQLClient, db: Database) -> None:
    stranger = (await patients_of(db, "physician2"))[0]
    assert error_codes(await client.run(BUNDLE, {"id": gid("Patient", stranger.id)}, as_="physician")) == ["NOT_FOUND"]
    assert error_codes(await client.run(BUNDLE, {"id": gid("Patient", stranger.id)}, as_="patient")) == [
        "GRAPHQL_VALIDATION_FAILED"
    ]
