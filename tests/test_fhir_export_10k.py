"""A generated department of 10,000 patients exported in bulk: every resource validates against the R4B models and
every reference across the files resolves. Slow (a few minutes: the validation of some 60,000 resources dominates):
it runs only with RUN_SLOW=1 (`make test-slow`)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from core.db import Database
from core.ids import encode_id
from core.timeutil import utcnow
from models.clinical import Diagnosis, FollowUp, FollowUpProtocol, Visit
from models.organisation import Department
from models.patient import Patient
from models.user import User
from tests.conftest import GraphQLClient
from tests.fhir_helpers import check_files, download, kick_off, wait

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("RUN_SLOW"), reason="slow: RUN_SLOW=1 (make test-slow)"),
]
PATIENTS = 10_000


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"fhir_export_dir": str(tmp_path / "exports"), "fhir_export_batch": 500}


async def _generate(db: Database) -> int:
    """A department below the chief's with 10,000 patients: a visit, a diagnosis (half with a TCM syndrome) and a
    protocol of two follow-ups each (the first with a recorded outcome)."""
    now = utcnow()
    async with db.transaction() as session:
        chief = (await session.execute(select(User).where(User.username == "chief"))).scalar_one()
        protocol = (await session.execute(select(FollowUpProtocol.id).order_by(FollowUpProtocol.id))).scalars().first()
        department = Department(name="生成科室", code="GEN-10K", parent_id=chief.department_id)
        session.add(department)
        await session.flush()
        first = int((await session.execute(select(func.coalesce(func.max(Patient.id), 0)))).scalar_one()) + 1
        ids = range(first, first + PATIENTS)
        patients = [
            {
                "id": pid,
                "name": f"患者{pid}",
                "name_initials": "HZ",
                "gender": "female" if pid % 2 else "male",
                "birth_date": date(1960 + pid % 40, 1 + pid % 12, 1 + pid % 28),
                "id_type": "resident_id",
                "department_id": department.id,
                "attending_physician_id": chief.id,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for pid in ids
        ]
        visits = [
            {
                "id": pid,
                "patient_id": pid,
                "physician_id": chief.id,
                "department_id": department.id,
                "visit_date": date(2026, 1, 1) + timedelta(days=pid % 300),
                "visit_type": "outpatient",
                "chief_complaint": "便血",
                "created_at": now,
            }
            for pid in ids
        ]
        diagnoses = [
            {
                "id": pid,
                "visit_id": pid,
                "patient_id": pid,
                "icd10_code": "K64.1",
                "icd10_name": "二度痔",
                "is_primary": True,
                "tcm_syndrome": "湿热下注证" if pid % 2 else None,
                "created_at": now,
            }
            for pid in ids
        ]
        follow_ups = [
            {
                "patient_id": pid,
                "visit_id": pid,
                "protocol_id": protocol,
                "offset_days": offset,
                "due_date": date(2026, 1, 1) + timedelta(days=pid % 300 + offset),
                "status": "completed" if offset == 7 else "scheduled",
                "method": "phone",
                "pain_score": 2 if offset == 7 else None,
                "satisfaction": 5 if offset == 7 else None,
                "bleeding": False if offset == 7 else None,
                "recorded_by_id": chief.id if offset == 7 else None,
                "recorded_at": now if offset == 7 else None,
                "created_at": now,
                "version": 1,
            }
            for pid in ids
            for offset in (7, 30)
        ]
        for model, rows in ((Patient, patients), (Visit, visits), (Diagnosis, diagnoses), (FollowUp, follow_ups)):
            for start in range(0, len(rows), 2000):
                await session.execute(insert(model), rows[start : start + 2000])
        return int(department.id)  # type: ignore[arg-type]


async def test_a_department_of_ten_thousand_patients(client: GraphQLClient, db: Database) -> None:
    department = await _generate(db)
    response = await kick_off(client, f"/fhir/Group/{encode_id('Department', department)}/$export", "admin")
    assert response.status_code == 202
    done = await wait(client, response.headers["Content-Location"], "admin", seconds=900)
    assert done.status_code == 200, done.text
    files = await download(client, done.json(), "admin")
    assert {kind: len(rows) for kind, rows in files.items()} == {
        "Patient": PATIENTS,
        "Encounter": PATIENTS,
        "Condition": PATIENTS,
        "CarePlan": PATIENTS,
        "Observation": PATIENTS,
    }
    check_files(files)
    tcm = [c for c in files["Condition"] if len(c["code"]["coding"]) == 2]
    assert len(tcm) == PATIENTS // 2
