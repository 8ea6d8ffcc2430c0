"""Visits and the diagnoses recorded with them (ICD-10 codes checked against the shipped table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from core.errors import bad_input
from core.validation import choice, text
from models.clinical import Diagnosis, Visit, VisitType
from models.patient import Patient
from resolvers.audit import history
from resolvers.clinical import icd10
from resolvers.clinical.common import check_date
from resolvers.data.context import Context


@dataclass
class DiagnosisInput:
    code: str
    is_primary: bool = False
    tcm_syndrome: str | None = None


@dataclass
class VisitInput:
    patient_id: int
    visit_date: date
    visit_type: str
    chief_complaint: str | None = None
    present_illness: str | None = None
    examination_findings: str | None = None
    notes: str | None = None
    diagnoses: Sequence[DiagnosisInput] = ()


async def record_visit(ctx: Context, data: VisitInput) -> Visit:
    visit_type = choice(VisitType, data.visit_type, "visitType")
    check_date(data.visit_date, "visitDate")
    codes = [icd10.lookup(d.code) for d in data.diagnoses]
    if sum(1 for d in data.diagnoses if d.is_primary) > 1:
        raise bad_input("At most one primary diagnosis per visit", "diagnoses")
    async with ctx.data.write(operation="recordVisit", action="create", entity_type="Visit") as unit:
        await unit.get(Patient, data.patient_id)
        visit = Visit(
            patient_id=data.patient_id,
            physician_id=ctx.principal.user_id,
            under_grant_id=await unit.reaching_grant(data.patient_id),
            department_id=ctx.principal.department_id,
            visit_date=data.visit_date,
            visit_type=visit_type.value,
            chief_complaint=text(data.chief_complaint, "chiefComplaint", limit=2000),
            present_illness=text(data.present_illness, "presentIllness"),
            examination_findings=text(data.examination_findings, "examinationFindings"),
            notes=text(data.notes, "notes"),
        )
        unit.add(visit)
        await unit.flush()
        diagnoses = [
            Diagnosis(
                visit_id=visit.id,
                patient_id=data.patient_id,
                icd10_code=code.code,
                icd10_name=code.name_zh,
                is_primary=given.is_primary,
                tcm_syndrome=text(given.tcm_syndrome, "tcmSyndrome", limit=100),
            )
            for given, code in zip(data.diagnoses, codes, strict=True)
        ]
        unit.add_all(diagnoses)
        await unit.flush()
        history.record_created(ctx, unit, visit, "Visit")
        for diagnosis in diagnoses:
            history.record_created(ctx, unit, diagnosis, "Diagnosis")
        unit.entity_id = str(visit.id)
        unit.patient_id = data.patient_id
        unit.detail = {"diagnoses": [code.code for code in codes]}
    return visit
