"""outcomeSummary: means by treatment plan type over completed follow-ups in scope; small groups suppressed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from core.db import Database
from models.appointment import Appointment
from models.clinical import Diagnosis, FollowUp, TreatmentPlan, Visit
from models.patient import Patient
from models.user import User
from tests.conftest import GraphQLClient, error_codes
from tests.test_clinical_visits import GI, patient_pks

SUMMARY = """
query ($code: String, $type: PlanType, $from: Date, $to: Date) {
  outcomeSummary(diagnosisCode: $code, planType: $type, from: $from, to: $to) {
    planType suppressed patients followUps meanPainScore bleedingRate meanWexnerScore recurrenceRate meanSatisfaction
  }
}
"""
BASE = date.today() - timedelta(days=200)

# (pain, bleeding, wexner, recurrence, satisfaction) of the completed follow-ups per demo patient index.
Outcome = tuple[int | None, bool | None, int | None, bool | None, int | None]


def _outcomes(index: int) -> list[Outcome]:
    return [
        (index % 7, index % 2 == 0, (index * 3) % 21, index % 3 == 0, 1 + index % 5),
        ((index + 4) % 11, index % 4 == 1, index % 9, False, 5 - index % 3),
        (None if index % 2 else 3, None, 2, None, None),
    ]


# Plan types by demo patient index; "gi+N" are extra GI patients of physician2 added by the test.
SURGERY = [0, 1, 2, 3, 6, 7]  # physician's: 6 patients
MEDICATION = [8, 10, 4]  # 3 patients: always suppressed
LIFESTYLE = [5, 11, 9, "gi+0", "gi+1", "gi+2", "gi+3"]  # 6 GI (physician2) + 1 CRS (chief)
FISTULA = [0, 1, 2, 3, 6, 8]  # plans linked to a K60.3 diagnosis (5 surgery, 1 medication)


async def seed(db: Database) -> dict[Any, int]:
    """Replace the demo's plans and follow-ups by a known set; the patient key of each index."""
    pks = await patient_pks(db)
    keys: dict[Any, int] = dict(enumerate(pks))
    async with db.transaction() as session:
        # demo appointments serving a follow-up stay, unlinked from the follow-ups replaced
        await session.execute(update(Appointment).values(follow_up_id=None))
        await session.execute(delete(FollowUp))
        await session.execute(delete(TreatmentPlan))
        physician2 = (await session.execute(select(User).where(User.username == "physician2"))).scalar_one()
        for n in range(4):
            extra = Patient(
                name=f"胃肠{n}号",
                name_initials="WC",
                department_id=physician2.department_id,
                attending_physician_id=physician2.id,
            )
            session.add(extra)
            await session.flush()
            keys[f"gi+{n}"] = int(extra.id)  # type: ignore[arg-type]
        for kind, members in (("surgery", SURGERY), ("medication", MEDICATION), ("lifestyle", LIFESTYLE)):
            for member in members:
                plan = TreatmentPlan(patient_id=keys[member], plan_type=kind, description=kind, start_date=BASE)
                if member in FISTULA:
                    # The plan treats an anal fistula diagnosed at the patient's demo visit.
                    visit = (await session.execute(select(Visit.id).where(Visit.patient_id == keys[member]))).scalar()
                    diagnosis = Diagnosis(
                        visit_id=visit, patient_id=keys[member], icd10_code="K60.3", icd10_name="肛瘘"
                    )
                    session.add(diagnosis)
                    await session.flush()
                    plan.diagnosis_id = diagnosis.id
                session.add(plan)
        # A revised plan of the same type must not count that patient's follow-ups twice.
        session.add(TreatmentPlan(patient_id=keys[1], plan_type="surgery", description="revised", start_date=BASE))
        for member, pk in keys.items():
            index = member if isinstance(member, int) else 20 + int(member[3:])
            for n, (pain, bleeding, wexner, recurrence, satisfaction) in enumerate(_outcomes(index)):
                session.add(
                    FollowUp(
                        patient_id=pk,
                        due_date=BASE + timedelta(days=30 * n),
                        status="completed",
                        pain_score=pain,
                        bleeding=bleeding,
                        wexner_score=wexner,
                        recurrence=recurrence,
                        satisfaction=satisfaction,
                    )
                )
            # Not completed: never counted.
            session.add(FollowUp(patient_id=pk, due_date=BASE, status="missed", pain_score=10, satisfaction=1))
            session.add(FollowUp(patient_id=pk, due_date=BASE, status="scheduled", response_pain_score=10))
            session.add(FollowUp(patient_id=pk, due_date=BASE, status="cancelled", pain_score=10))
    return keys


def _index(member: Any) -> int:
    return member if isinstance(member, int) else 20 + int(member[3:])


def expected(members: Iterable[Any], *, since: date | None = None) -> dict[str, Any]:
    rows = [
        outcome
        for member in members
        for n, outcome in enumerate(_outcomes(_index(member)))
        if since is None or BASE + timedelta(days=30 * n) >= since
    ]

    def mean(values: list[Any]) -> float | None:
        present = [float(v) for v in values if v is not None]
        return round(sum(present) / len(present), 2) if present else None

    return {
        "suppressed": False,
        "patients": len(set(members)),
        "followUps": len(rows),
        "meanPainScore": mean([r[0] for r in rows]),
        "bleedingRate": mean([r[1] for r in rows]),
        "meanWexnerScore": mean([r[2] for r in rows]),
        "recurrenceRate": mean([r[3] for r in rows]),
        "meanSatisfaction": mean([r[4] for r in rows]),
    }


SUPPRESSED = {
    "suppressed": True,
    "patients": None,
    "followUps": None,
    "meanPainScore": None,
    "bleedingRate": None,
    "meanWexnerScore": None,
    "recurrenceRate": None,
    "meanSatisfaction": None,
}


async def summary(client: GraphQLClient, as_: str, **variables: Any) -> dict[str, dict[str, Any]]:
    rows = (await client.data(SUMMARY, variables, as_=as_))["outcomeSummary"]
    return {row.pop("planType"): row for row in rows}


def close(actual: dict[str, Any], wanted: dict[str, Any]) -> None:
    assert actual.keys() == wanted.keys()
    for key, value in wanted.items():
        if isinstance(value, float):
            assert actual[key] == pytest.approx(value, abs=0.011), key
        else:
            assert actual[key] == value, key


async def test_outcome_summary_by_plan_type_and_scope(client: GraphQLClient, db: Database) -> None:
    await seed(db)
    crs_lifestyle = [9]
    gi_lifestyle = [m for m in LIFESTYLE if m not in crs_lifestyle]
    assert {5, 11} <= set(gi_lifestyle) and set(GI) <= set(gi_lifestyle)

    # The physician: their 6 surgery patients in full; their 2 medication patients suppressed.
    mine = await summary(client, "physician")
    assert set(mine) == {"SURGERY", "MEDICATION"}
    close(mine["SURGERY"], expected(SURGERY))
    assert mine["MEDICATION"] == SUPPRESSED

    # physician2 (GI): only the GI patients' lifestyle outcomes, none of the CRS patients'.
    gi = await summary(client, "physician2")
    assert set(gi) == {"LIFESTYLE"}
    close(gi["LIFESTYLE"], expected(gi_lifestyle))

    # The admin sees every patient: lifestyle includes the CRS patient.
    everyone = await summary(client, "admin")
    assert set(everyone) == {"SURGERY", "MEDICATION", "LIFESTYLE"}
    close(everyone["LIFESTYLE"], expected(LIFESTYLE))
    close(everyone["SURGERY"], expected(SURGERY))
    assert everyone["MEDICATION"] == SUPPRESSED

    # The chief (CRS and below): one lifestyle patient is suppressed, no GI figures leak in.
    chief = await summary(client, "chief")
    assert chief["LIFESTYLE"] == SUPPRESSED
    close(chief["SURGERY"], expected(SURGERY))
    assert chief["MEDICATION"] == SUPPRESSED

    # Filters: plan type, and the follow-ups' due dates.
    assert set(await summary(client, "admin", type="SURGERY")) == {"SURGERY"}
    since = BASE + timedelta(days=30)
    late = await summary(client, "admin", **{"from": since.isoformat()})
    close(late["SURGERY"], expected(SURGERY, since=since))
    early = await summary(client, "admin", to=(BASE + timedelta(days=1)).isoformat())
    close(early["SURGERY"], {**expected(SURGERY, since=None), **_first_only(SURGERY)})
    assert await summary(client, "admin", code="Z99") == {}
    # By diagnosis: only plans linked to a K60 diagnosis count.
    for code in ("K60", "k60.3"):
        fistula = await summary(client, "admin", code=code)
        assert set(fistula) == {"SURGERY", "MEDICATION"}
        close(fistula["SURGERY"], expected([0, 1, 2, 3, 6]))
        assert fistula["MEDICATION"] == SUPPRESSED
    assert set(await summary(client, "admin", code="K60", type="MEDICATION")) == {"MEDICATION"}


def _first_only(members: list[Any]) -> dict[str, Any]:
    """Expected figures when only each patient's first follow-up is in the date range."""
    rows = [_outcomes(_index(m))[0] for m in members]
    return {
        "followUps": len(rows),
        "meanPainScore": round(sum(r[0] or 0 for r in rows) / len(rows), 2),
        "bleedingRate": round(sum(1 for r in rows if r[1]) / len(rows), 2),
        "meanWexnerScore": round(sum(r[2] or 0 for r in rows) / len(rows), 2),
        "recurrenceRate": round(sum(1 for r in rows if r[3]) / len(rows), 2),
        "meanSatisfaction": round(sum(r[4] or 0 for r in rows) / len(rows), 2),
    }


async def test_outcome_summary_roles_and_input(client: GraphQLClient, db: Database) -> None:
    # The demo data: every role's groups are either suppressed or carry figures.
    for as_ in ("admin", "chief", "physician"):
        for row in (await summary(client, as_)).values():
            assert row["suppressed"] == (row["patients"] is None)
            assert row["suppressed"] or row["patients"] >= 5
    result = await client.run(SUMMARY, {"type": "magic"}, as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert error_codes(await client.run(SUMMARY, as_="patient")) == ["GRAPHQL_VALIDATION_FAILED"]
