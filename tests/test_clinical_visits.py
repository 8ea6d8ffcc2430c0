"""Visits with ICD-10 diagnoses and exam reports, over HTTP as each role, checked in the tables.

Also holds the small helpers the other clinical test files share.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from core.db import Database
from core.ids import encode_id
from models.audit import Event
from models.clinical import Diagnosis, ExamReport, Visit
from models.patient import Patient
from models.user import User
from resolvers.clinical import icd10
from tests.conftest import GraphQLClient, error_codes

# Demo population (conftest): index 5 and 11 in GI with physician2, 4 and 9 with chief, the rest with physician.
GI = (5, 11)
CHIEF = (4, 9)
PHYSICIAN = (0, 1, 2, 3, 6, 7, 8, 10)

# ---- shared helpers ----------------------------------------------------------------------------


async def patient_pks(db: Database) -> list[int]:
    """The demo patients' keys, in demo order (index 0 is bound to the `patient` user)."""
    async with db.session() as session:
        return [int(pk) for pk in (await session.execute(select(Patient.id).order_by(Patient.id))).scalars().all()]


async def user_pk(db: Database, username: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(User.id).where(User.username == username))).scalar_one())


async def fetch(db: Database, statement: Any) -> list[Any]:
    async with db.session() as session:
        return list((await session.execute(statement)).scalars().all())


async def one(db: Database, statement: Any) -> Any:
    async with db.session() as session:
        return (await session.execute(statement)).scalar_one_or_none()


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def events(db: Database, operation: str, outcome: str | None = None) -> list[Event]:
    statement = select(Event).where(Event.operation == operation).order_by(Event.id)
    if outcome is not None:
        statement = statement.where(Event.outcome == outcome)
    return await fetch(db, statement)


def gid(kind: str, pk: int) -> str:
    return encode_id(kind, pk)


def pk_of(kind: str, value: str) -> int:
    from core.ids import decode_id

    return decode_id(kind, value)


RECORD_VISIT = """
mutation ($input: RecordVisitInput!) {
  recordVisit(input: $input) {
    id visitDate visitType chiefComplaint presentIllness notes physicianName
    diagnoses { id icd10Code icd10Name isPrimary tcmSyndrome visitId }
  }
}
"""


async def record_visit(
    client: GraphQLClient, as_: str, patient_pk: int, *, day: date | None = None, diagnoses: Any = None
) -> dict[str, Any]:
    """Record a visit through the API and return the recorded visit."""
    data = await client.data(
        RECORD_VISIT,
        {
            "input": {
                "patientId": gid("Patient", patient_pk),
                "visitDate": (day or date.today()).isoformat(),
                "visitType": "OUTPATIENT",
                "chiefComplaint": "便血一周",
                "diagnoses": diagnoses if diagnoses is not None else [{"icd10Code": "K64.1", "isPrimary": True}],
            }
        },
        as_=as_,
    )
    visit: dict[str, Any] = data["recordVisit"]
    return visit


# ---- visits and diagnoses ------------------------------------------------------------------------

PATIENT_HISTORY = """
query ($id: ID!) {
  patient(id: $id) { id visits { id chiefComplaint presentIllness diagnoses { icd10Code icd10Name tcmSyndrome } } }
}
"""


async def test_physician_records_visit_with_diagnoses(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    patient = pks[1]
    physician = await user_pk(db, "physician")
    complaint = "便血伴肛门肿物脱出两月，排便后加重 🩸"
    result = await client.data(
        RECORD_VISIT,
        {
            "input": {
                "patientId": gid("Patient", patient),
                "visitDate": (date.today() - timedelta(days=1)).isoformat(),
                "visitType": "SURGERY",
                "chiefComplaint": complaint,
                "presentIllness": "  两月前无明显诱因出现便血  ",
                "notes": "术后清淡饮食",
                "diagnoses": [
                    {"icd10Code": " k64.2 ", "isPrimary": True, "tcmSyndrome": "湿热下注证"},
                    {"icd10Code": "K60.3"},
                ],
            }
        },
        as_="physician",
    )
    visit = result["recordVisit"]
    assert visit["visitType"] == "SURGERY"
    assert visit["chiefComplaint"] == complaint
    assert visit["presentIllness"] == "两月前无明显诱因出现便血"
    assert visit["physicianName"].startswith("陈医生")
    assert [(d["icd10Code"], d["icd10Name"], d["isPrimary"], d["tcmSyndrome"]) for d in visit["diagnoses"]] == [
        ("K64.2", "三度痔", True, "湿热下注证"),
        ("K60.3", "肛瘘", False, None),
    ]
    assert all(d["visitId"] == visit["id"] for d in visit["diagnoses"])

    visit_pk = pk_of("Visit", visit["id"])
    stored = await one(db, select(Visit).where(Visit.id == visit_pk))
    assert stored.patient_id == patient and stored.physician_id == physician
    assert stored.chief_complaint == complaint and stored.visit_type == "surgery"
    diagnoses = await fetch(db, select(Diagnosis).where(Diagnosis.visit_id == visit_pk).order_by(Diagnosis.id))
    assert [(d.icd10_code, d.icd10_name, d.is_primary, d.patient_id) for d in diagnoses] == [
        ("K64.2", icd10.codes()["K64.2"].name_zh, True, patient),
        ("K60.3", icd10.codes()["K60.3"].name_zh, False, patient),
    ]
    assert diagnoses[0].tcm_syndrome == "湿热下注证"
    (event,) = await events(db, "recordVisit")
    assert (event.actor_id, event.action, event.entity_type, event.entity_id, event.patient_id, event.outcome) == (
        physician,
        "create",
        "Visit",
        str(visit_pk),
        patient,
        "success",
    )
    assert event.detail == {"diagnoses": ["K64.2", "K60.3"]}

    # The record reads back whole, Chinese text included.
    read = await client.data(PATIENT_HISTORY, {"id": gid("Patient", patient)}, as_="physician")
    ours = [v for v in read["patient"]["visits"] if v["id"] == visit["id"]]
    assert ours == [
        {
            "id": visit["id"],
            "chiefComplaint": complaint,
            "presentIllness": "两月前无明显诱因出现便血",
            "diagnoses": [
                {"icd10Code": "K64.2", "icd10Name": "三度痔", "tcmSyndrome": "湿热下注证"},
                {"icd10Code": "K60.3", "icd10Name": "肛瘘", "tcmSyndrome": None},
            ],
        }
    ]


BAD_VISITS: list[tuple[dict[str, Any], str | None]] = [
    ({"diagnoses": [{"icd10Code": "K99.9", "isPrimary": True}]}, "icd10Code"),
    ({"diagnoses": [{"icd10Code": "K64.2"}, {"icd10Code": "not a code"}]}, "icd10Code"),
    ({"diagnoses": [{"icd10Code": "K64"}, {"icd10Code": "K64.2'; --"}]}, "icd10Code"),
    (
        {"diagnoses": [{"icd10Code": "K64.2", "isPrimary": True}, {"icd10Code": "K60.3", "isPrimary": True}]},
        "diagnoses",
    ),
    ({"visitType": "CHECKUP"}, None),
    ({"visitType": "outpatient"}, None),
    ({"visitDate": "1850-01-01"}, "visitDate"),
    ({"visitDate": "2026-02-30"}, None),
    ({"chiefComplaint": "痛" * 2001}, "chiefComplaint"),
    ({"diagnoses": [{"icd10Code": "K64.2", "tcmSyndrome": "证" * 101}]}, "tcmSyndrome"),
]


async def test_record_visit_bad_input_stores_nothing(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    visits, diagnoses = await count(db, Visit), await count(db, Diagnosis)
    for change, field in BAD_VISITS:
        variables = {
            "input": {
                "patientId": gid("Patient", pks[1]),
                "visitDate": date.today().isoformat(),
                "visitType": "OUTPATIENT",
                "diagnoses": [{"icd10Code": "K64.1", "isPrimary": True}],
                **change,
            }
        }
        result = await client.run(RECORD_VISIT, variables, as_="physician")
        assert error_codes(result) == ["BAD_USER_INPUT"], (change, result)
        assert not result.get("data") or result["data"].get("recordVisit") is None
        if field is not None:
            assert result["errors"][0]["extensions"].get("field") == field, (change, result)
        assert await count(db, Visit) == visits, change
        assert await count(db, Diagnosis) == diagnoses, change
    assert await events(db, "recordVisit", "success") == []


async def test_physician_cannot_record_visit_for_colleague_patient(client: GraphQLClient, db: Database) -> None:
    """A GI patient of physician2 is NOT_FOUND for physician, and writing cannot widen the scope."""
    pks = await patient_pks(db)
    stranger = pks[5]
    visits = await count(db, Visit, Visit.patient_id == stranger)
    result = await client.run(
        RECORD_VISIT,
        {
            "input": {
                "patientId": gid("Patient", stranger),
                "visitDate": date.today().isoformat(),
                "visitType": "OUTPATIENT",
                "diagnoses": [{"icd10Code": "K64.1", "isPrimary": True}],
            }
        },
        as_="physician",
    )
    assert error_codes(result) == ["NOT_FOUND"]
    assert await count(db, Visit, Visit.patient_id == stranger) == visits
    assert await count(db, Diagnosis, Diagnosis.patient_id == stranger) == 1  # the demo's own
    assert await events(db, "recordVisit", "success") == []
    refused = await events(db, "recordVisit")
    assert [(e.outcome, e.actor_id) for e in refused] == [("not_found", await user_pk(db, "physician"))]
    # Still invisible afterwards: by id, in the list, and as any other write's target.
    again = await client.run(
        "query ($id: ID!) { patient(id: $id) { id } }", {"id": gid("Patient", stranger)}, as_="physician"
    )
    assert error_codes(again) == ["NOT_FOUND"]
    listed = await client.data("{ patients(first: 100) { edges { node { id } } } }", as_="physician")
    ids = {edge["node"]["id"] for edge in listed["patients"]["edges"]}
    assert ids == {gid("Patient", pks[i]) for i in PHYSICIAN}
    # An id that is not a patient id at all is NOT_FOUND too.
    wrong_kind = await client.run(
        RECORD_VISIT,
        {
            "input": {
                "patientId": gid("Visit", pks[1]),
                "visitDate": date.today().isoformat(),
                "visitType": "OUTPATIENT",
            }
        },
        as_="physician",
    )
    assert error_codes(wrong_kind) == ["NOT_FOUND"]


async def test_chief_records_for_crs_patients_not_gi(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    chief = await user_pk(db, "chief")
    # Patient 1 is attended by physician in CRS: within the chief's department scope.
    visit = await record_visit(client, "chief", pks[1], diagnoses=[{"icd10Code": "C20", "isPrimary": True}])
    stored = await one(db, select(Visit).where(Visit.id == pk_of("Visit", visit["id"])))
    assert (stored.patient_id, stored.physician_id) == (pks[1], chief)
    assert visit["diagnoses"][0]["icd10Name"] == "直肠恶性肿瘤"
    # Patient 3 is in the CRS-ANO sub-department: also in scope.
    await record_visit(client, "chief", pks[3])
    for index in GI:
        before = await count(db, Visit)
        result = await client.run(
            RECORD_VISIT,
            {
                "input": {
                    "patientId": gid("Patient", pks[index]),
                    "visitDate": date.today().isoformat(),
                    "visitType": "OUTPATIENT",
                }
            },
            as_="chief",
        )
        assert error_codes(result) == ["NOT_FOUND"]
        assert await count(db, Visit) == before
    assert len(await events(db, "recordVisit", "success")) == 2
    # physician2 (GI) may record for their own GI patient, not for a CRS one.
    await record_visit(client, "physician2", pks[5])
    refused = await client.run(
        RECORD_VISIT,
        {
            "input": {
                "patientId": gid("Patient", pks[1]),
                "visitDate": date.today().isoformat(),
                "visitType": "OUTPATIENT",
            }
        },
        as_="physician2",
    )
    assert error_codes(refused) == ["NOT_FOUND"]


ICD10 = "query ($s: String!) { icd10Codes(search: $s) { code nameZh nameEn } }"


async def test_icd10_search_by_code_prefix_and_names(client: GraphQLClient) -> None:
    by_code = (await client.data(ICD10, {"s": "k64"}, as_="physician"))["icd10Codes"]
    assert [c["code"] for c in by_code] == [
        "K64",
        "K64.0",
        "K64.1",
        "K64.2",
        "K64.3",
        "K64.4",
        "K64.5",
        "K64.8",
        "K64.9",
    ]
    assert by_code[3] == {"code": "K64.2", "nameZh": "三度痔", "nameEn": "Third degree haemorrhoids"}
    exact = (await client.data(ICD10, {"s": "K60.3"}, as_="physician"))["icd10Codes"]
    assert exact[0]["code"] == "K60.3"
    chinese = (await client.data(ICD10, {"s": "肛瘘"}, as_="physician"))["icd10Codes"]
    assert "K60.3" in [c["code"] for c in chinese]
    assert all("肛瘘" in c["nameZh"] for c in chinese)
    english = (await client.data(ICD10, {"s": "RECTUM"}, as_="physician"))["icd10Codes"]
    assert "C20" in [c["code"] for c in english]
    assert all("rectum" in c["nameEn"].lower() for c in english)
    assert (await client.data(ICD10, {"s": "   "}, as_="physician"))["icd10Codes"] == []
    assert (await client.data(ICD10, {"s": "zzz-nothing"}, as_="physician"))["icd10Codes"] == []
    # The table covers K50-K64 and C18-C21.
    for code in ("K50", "K57", "K62", "C18", "C19", "C21"):
        assert any(
            c["code"].startswith(code) for c in (await client.data(ICD10, {"s": code}, as_="chief"))["icd10Codes"]
        )
    # The patient's schema has no look-up.
    patient = await client.run(ICD10, {"s": "K64"}, as_="patient")
    assert error_codes(patient) == ["GRAPHQL_VALIDATION_FAILED"]


# ---- exam reports --------------------------------------------------------------------------------

ADD_EXAM = """
mutation ($input: ExamReportInput!) {
  addExamReport(input: $input) { id visitId kind examDate findings conclusion attachmentRef }
}
"""


async def test_exam_reports_of_every_kind(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    physician = await user_pk(db, "physician")
    visit = await record_visit(client, "physician", pks[2])
    kinds = ["COLONOSCOPY", "ANOSCOPY", "PATHOLOGY", "IMAGING", "LABORATORY"]
    before = await count(db, ExamReport, ExamReport.patient_id == pks[2])
    for kind in kinds:
        report = (
            await client.data(
                ADD_EXAM,
                {
                    "input": {
                        "patientId": gid("Patient", pks[2]),
                        "visitId": visit["id"],
                        "kind": kind,
                        "examDate": date.today().isoformat(),
                        "findings": "齿状线上方可见曲张静脉团",
                        "conclusion": "混合痔",
                        "attachmentRef": "pacs://study/123",
                    }
                },
                as_="physician",
            )
        )["addExamReport"]
        assert (report["kind"], report["visitId"], report["findings"]) == (
            kind,
            visit["id"],
            "齿状线上方可见曲张静脉团",
        )
        stored = await one(db, select(ExamReport).where(ExamReport.id == pk_of("ExamReport", report["id"])))
        assert (stored.patient_id, stored.visit_id, stored.kind, stored.created_by_id) == (
            pks[2],
            pk_of("Visit", visit["id"]),
            kind.lower(),
            physician,
        )
        assert stored.conclusion == "混合痔" and stored.attachment_ref == "pacs://study/123"
    assert await count(db, ExamReport, ExamReport.patient_id == pks[2]) == before + 5
    # Without a visit.
    loose = await client.data(
        ADD_EXAM,
        {"input": {"patientId": gid("Patient", pks[2]), "kind": "LABORATORY", "examDate": date.today().isoformat()}},
        as_="physician",
    )
    assert loose["addExamReport"]["visitId"] is None
    written = await events(db, "addExamReport", "success")
    assert len(written) == 6
    assert all(e.patient_id == pks[2] and e.actor_id == physician and e.action == "create" for e in written)
    # They show up on the patient.
    read = await client.data(
        "query ($id: ID!) { patient(id: $id) { examReports { kind } } }",
        {"id": gid("Patient", pks[2])},
        as_="physician",
    )
    assert sorted(r["kind"] for r in read["patient"]["examReports"]).count("LABORATORY") >= 2


async def test_exam_report_refusals(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    own_visit = await record_visit(client, "physician", pks[2])
    other_visit = await record_visit(client, "physician", pks[3])
    gi_visit = await one(db, select(Visit.id).where(Visit.patient_id == pks[5]))
    before = await count(db, ExamReport)
    today = date.today().isoformat()

    async def attempt(as_: str, patient: int, visit: str | None, kind: str = "ANOSCOPY", day: str = today) -> list[str]:
        variables = {"input": {"patientId": gid("Patient", patient), "kind": kind, "examDate": day, "visitId": visit}}
        return error_codes(await client.run(ADD_EXAM, variables, as_=as_))

    # A visit of another (in-scope) patient.
    assert await attempt("physician", pks[2], other_visit["id"]) == ["BAD_USER_INPUT"]
    # The patient out of scope, or a visit out of scope.
    assert await attempt("physician", pks[5], None) == ["NOT_FOUND"]
    assert await attempt("physician", pks[2], gid("Visit", gi_visit)) == ["NOT_FOUND"]
    assert await attempt("physician2", pks[2], own_visit["id"]) == ["NOT_FOUND"]
    assert await attempt("chief", pks[11], None) == ["NOT_FOUND"]
    # Bad kind and date.
    assert await attempt("physician", pks[2], None, kind="XRAY") == ["BAD_USER_INPUT"]
    assert await attempt("physician", pks[2], None, day="1800-01-01") == ["BAD_USER_INPUT"]
    assert await count(db, ExamReport) == before
    assert await events(db, "addExamReport", "success") == []
    outcomes = sorted(e.outcome for e in await events(db, "addExamReport"))
    assert outcomes.count("not_found") == 4 and outcomes.count("bad_user_input") >= 1
    # The chief reaches a CRS patient's visit; physician2 their own GI patient's.
    assert await attempt("chief", pks[2], own_visit["id"]) == []
    assert await attempt("physician2", pks[5], gid("Visit", gi_visit)) == []
