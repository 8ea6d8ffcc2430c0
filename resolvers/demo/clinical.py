"""A deterministic demo population: about 300 colorectal and anorectal patients with their histories."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.validation import initials
from models.clinical import Diagnosis, ExamReport, FollowUp, FollowUpProtocol, TreatmentPlan, Visit
from models.organisation import Department
from models.patient import Patient
from models.user import User
from resolvers.clinical import icd10

PROTOCOLS = [
    ("痔术后随访 Post-haemorrhoidectomy", "7,30,90", "Wound healing, pain, bleeding, continence after surgery"),
    ("肛瘘术后随访 Post-fistula surgery", "14,60,180", "Healing and recurrence after fistulotomy or seton"),
    ("肛周脓肿引流随访 Abscess drainage", "7,30", "Drainage healing; watch for a fistula"),
    ("结直肠癌术后监测 Colorectal cancer surveillance", "90,180,365", "CEA, imaging and colonoscopy schedule"),
    ("肛裂保守治疗随访 Fissure conservative care", "14,42", "Pain and healing under medication"),
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌辉鹏宇浩然欣怡子涵梓轩雨桐思远"
REGIONS = ["110105", "310101", "440106", "610113", "330106", "510104"]

# condition: (weight, codes, protocol index, exam kinds, plan types with weights)
_ANORECTAL_PLANS = [("surgery", 5), ("medication", 3), ("tcm", 2), ("lifestyle", 1)]
_FISSURE_PLANS = [("medication", 5), ("tcm", 3), ("lifestyle", 2), ("surgery", 1)]
CONDITIONS = [
    (35, ["K64.1", "K64.2", "K64.3", "K64.5"], 0, ["anoscopy"], _ANORECTAL_PLANS),
    (20, ["K60.3", "K60.5"], 1, ["anoscopy", "imaging"], [("surgery", 8), ("tcm", 1)]),
    (15, ["K61.0", "K61.2", "K61.3"], 2, ["imaging"], [("surgery", 6), ("medication", 2)]),
    (15, ["K60.0", "K60.1"], 4, ["anoscopy"], _FISSURE_PLANS),
    (
        15,
        ["C18.7", "C19", "C20", "C18.2"],
        3,
        ["colonoscopy", "pathology", "imaging"],
        [("surgery", 6), ("medication", 3)],
    ),
]
COMPLAINTS = {
    "K64": ["便血伴肛门肿物脱出两月", "排便后滴血一周", "肛门坠胀疼痛三天"],
    "K60": ["肛旁反复流脓半年", "排便时肛门剧痛伴少量出血", "肛周硬结伴溢液"],
    "K61": ["肛周红肿疼痛伴发热三天", "肛旁肿痛加重两天"],
    "C1": ["大便习惯改变伴消瘦三月", "黏液血便一月", "体检发现大便潜血阳性"],
    "C2": ["便血伴里急后重两月"],
}
TCM = ["湿热下注证", "气滞血瘀证", "脾虚气陷证", "风伤肠络证", None, None]


def _resident_id(rng: random.Random, birth: date, male: bool) -> str:
    seq = rng.randrange(0, 100) * 10 + (rng.choice([1, 3, 5, 7, 9]) if male else rng.choice([0, 2, 4, 6, 8]))
    body = f"{rng.choice(REGIONS)}{birth:%Y%m%d}{seq:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


def _weighted(rng: random.Random, options: list[tuple[str, int]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _at(day: date) -> datetime:
    return datetime.combine(day, time(10, 0), tzinfo=UTC)


async def seed_clinical(session: AsyncSession, *, today: date, patients: int = 300, seed: int = 2026) -> None:
    rng = random.Random(seed)  # noqa: S311 (deterministic demo data, not security)
    protocols = []
    for name, offsets, description in PROTOCOLS:
        protocol = FollowUpProtocol(name=name, offsets=offsets, description=description)
        session.add(protocol)
        protocols.append(protocol)
    await session.flush()
    users = {u.username: u for u in (await session.execute(select(User))).scalars().all()}
    departments = {d.code: d for d in (await session.execute(select(Department))).scalars().all()}
    crs_doctors = [users["physician"], users["chief"]]
    for index in range(patients):
        in_gi = index % 6 == 5
        doctor = users["physician2"] if in_gi else crs_doctors[index % 5 == 4]
        department = departments["GI" if in_gi else ("CRS-ANO" if index % 3 == 0 else "CRS")]
        _weight, codes, protocol_index, exams, plans = rng.choices(CONDITIONS, weights=[c[0] for c in CONDITIONS])[0]
        male = rng.random() < 0.55
        age = rng.randint(22, 82) if codes[0][0] == "K" else rng.randint(45, 85)
        birth = date(today.year - age, rng.randint(1, 12), rng.randint(1, 28))
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
        patient = Patient(
            name=name,
            name_initials=initials(name),
            gender="male" if male else "female",
            birth_date=birth,
            id_type="resident_id",
            id_number=_resident_id(rng, birth, male),
            phone=f"1{rng.choice('3578')}{rng.randrange(10**9):09d}",
            address=rng.choice(["北京市朝阳区", "上海市黄浦区", "广州市越秀区", "西安市长安区"])
            + f"{rng.randint(1, 300)}号",
            allergies=rng.choice(["无", "无", "青霉素过敏", "磺胺类过敏"]),
            past_history=rng.choice(["高血压", "2型糖尿病", "无特殊", "无特殊", "便秘多年"]),
            department_id=department.id,
            attending_physician_id=doctor.id,
            consent_scope="treatment,follow-up",
            consent_version="2026.1",
            consent_at=_at(today - timedelta(days=400)),
            created_by_id=doctor.id,
        )
        if index == 0:
            patient.wechat_user_id = users["patient"].id
        session.add(patient)
        await session.flush()
        visit_day = today - timedelta(days=rng.randint(3, 400) if index else 40)
        code = icd10.lookup(rng.choice(codes))
        prefix = code.code[:3] if code.code[0] == "K" else code.code[:2]
        visit = Visit(
            patient_id=patient.id,
            physician_id=doctor.id,
            department_id=department.id,
            visit_date=visit_day,
            visit_type=rng.choice(["outpatient", "outpatient", "inpatient", "surgery"]),
            chief_complaint=rng.choice(COMPLAINTS.get(prefix, ["肛门不适"])),
            examination_findings="截石位视诊及指诊检查，详见专科记录",
            notes="建议规律排便，清淡饮食",
        )
        session.add(visit)
        await session.flush()
        diagnosis = Diagnosis(
            visit_id=visit.id,
            patient_id=patient.id,
            icd10_code=code.code,
            icd10_name=code.name_zh,
            is_primary=True,
            tcm_syndrome=rng.choice(TCM),
        )
        session.add(diagnosis)
        await session.flush()
        for kind in exams:
            session.add(
                ExamReport(
                    patient_id=patient.id,
                    visit_id=visit.id,
                    kind=kind,
                    exam_date=visit_day,
                    findings=f"{kind} 检查所见与{code.name_zh}相符",
                    conclusion=code.name_zh,
                    created_by_id=doctor.id,
                )
            )
        plan_type = _weighted(rng, plans)
        session.add(
            TreatmentPlan(
                patient_id=patient.id,
                diagnosis_id=diagnosis.id,
                plan_type=plan_type,
                description=f"{code.name_zh}: {plan_type} plan",
                start_date=visit_day,
                status="active" if (today - visit_day).days < 90 else "completed",
                author_id=doctor.id,
            )
        )
        protocol = protocols[protocol_index]
        for offset in (int(v) for v in protocol.offsets.split(",")):
            due = visit_day + timedelta(days=offset)
            follow_up = FollowUp(
                patient_id=patient.id,
                visit_id=visit.id,
                protocol_id=protocol.id,
                offset_days=offset,
                due_date=due,
                method=rng.choice(["phone", "wechat", "clinic"]),
            )
            if due < today and (rng.random() < 0.8 and index):
                better = {"surgery": 0, "medication": 1, "tcm": 1, "lifestyle": 2, "other": 1}[plan_type]
                follow_up.status = "completed" if rng.random() < 0.92 else "missed"
                if follow_up.status == "completed":
                    follow_up.pain_score = max(0, min(10, rng.randint(0, 4) + better))
                    follow_up.bleeding = rng.random() < 0.1 + 0.05 * better
                    follow_up.wexner_score = max(0, min(20, rng.randint(0, 5) + better))
                    follow_up.recurrence = rng.random() < 0.05 + 0.04 * better
                    follow_up.satisfaction = max(1, min(5, 5 - rng.randint(0, 1) - better // 2))
                    follow_up.outcome_text = "恢复良好" if follow_up.pain_score < 3 else "仍有不适，继续观察"
                    follow_up.recorded_by_id = doctor.id
                    follow_up.recorded_at = _at(due)
            elif due < today and rng.random() < 0.3:
                follow_up.response_text = "伤口已愈合，偶有不适"
                follow_up.response_pain_score = rng.randint(0, 3)
                follow_up.response_bleeding = False
                follow_up.response_wexner_score = rng.randint(0, 3)
                follow_up.response_satisfaction = rng.randint(4, 5)
                follow_up.response_at = _at(due)
            session.add(follow_up)
    await session.flush()
