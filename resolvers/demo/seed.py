"""The demo data set: departments, positions, accounts and patient histories (demo mode only).

The built-in roles and the default policy are not demo data: policies/bootstrap.py lays them down at every
migrate, before this runs.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database
from core.security import hash_password
from core.timeutil import utcnow
from models.organisation import Department, Position
from models.role import Role, UserRole
from models.user import User
from policies.menus import seed_standard_menu
from resolvers.demo.appointment import seed_appointments
from resolvers.demo.clinical import seed_clinical
from resolvers.demo.consultation import seed_consultation
from resolvers.demo.education import seed_education
from resolvers.demo.learning import seed_learning
from resolvers.demo.moderation import seed_moderation

DEMO_DEPARTMENTS = [
    ("HOSP", "示范医院 Demo Hospital", None),
    ("CRS", "结直肠肛门外科 Colorectal Surgery", "HOSP"),
    ("CRS-ANO", "肛肠门诊 Anorectal Clinic", "CRS"),
    ("GI", "消化内科 Gastroenterology", "HOSP"),
]
DEMO_POSITIONS = [
    "主任医师 Chief Physician",
    "主治医师 Attending Physician",
    "住院医师 Resident",
    "护士 Nurse",
    "管理员 Administrator",
]
# username, display name, department code, position index, roles
DEMO_USERS = [
    ("admin", "王管理 Wang (admin)", "HOSP", 4, ["admin"]),
    ("deptadmin", "李科管 Li (department admin)", "CRS", 4, ["dept_admin"]),
    ("chief", "张主任 Zhang (chief physician)", "CRS", 0, ["chief_physician"]),
    ("physician", "陈医生 Chen (physician)", "CRS", 1, ["physician"]),
    ("physician2", "刘医生 Liu (physician, Gastroenterology)", "GI", 1, ["physician"]),
    ("patient", "赵患者 Zhao (patient)", None, None, ["patient"]),
]
DEMO_PATIENT_OPENID = "demo-patient-openid"


async def has_demo_accounts(db: Database) -> bool:
    async with db.session() as session:
        return (await session.execute(select(User.id).where(User.is_demo.is_(True)).limit(1))).first() is not None  # type: ignore[attr-defined]


async def seed_demo(db: Database, *, password: str, patients: int = 300, today: date | None = None) -> bool:
    """Demo departments, positions, accounts and patient histories; False when already there."""
    async with db.transaction() as session:
        if (await session.execute(select(User.id).where(User.username == "admin"))).first():
            return False
        departments = await _departments(session)
        positions = []
        for name in DEMO_POSITIONS:
            position = Position(name=name)
            session.add(position)
            positions.append(position)
        await session.flush()
        roles = {role.key: role for role in (await session.execute(select(Role))).scalars().all()}
        password_hash = hash_password(password)
        for username, display_name, dep_code, position_index, role_keys in DEMO_USERS:
            user = User(
                username=username,
                display_name=display_name,
                phone="13800138000" if username != "patient" else "13912345678",
                department_id=departments[dep_code].id if dep_code else None,
                position_id=positions[position_index].id if position_index is not None else None,
                password_hash=password_hash,
                is_demo=True,
                wechat_openid=DEMO_PATIENT_OPENID if username == "patient" else None,
            )
            session.add(user)
            await session.flush()
            for key in role_keys:
                session.add(UserRole(user_id=user.id, role_id=roles[key].id))  # type: ignore[arg-type]
        await session.flush()
        await seed_clinical(session, today=today or date.today(), patients=patients)
        await seed_demo_engagement(session, today=today or date.today())
        await seed_standard_menu(session)  # the bootstrap's tree (one source); a no-op once it ran
    return True


async def seed_demo_engagement(session: AsyncSession, *, today: date) -> None:
    """Keywords, education content with comments, a consultation and a learning task, days in the past."""
    users: dict[str, int] = dict((await session.execute(select(User.username, User.id))).all())  # type: ignore[arg-type]
    crs = (await session.execute(select(Department.id).where(Department.code == "CRS"))).scalar_one()
    earlier = utcnow() - timedelta(days=7)
    await seed_moderation(session)
    article = await seed_education(session, users=users, department_id=crs, earlier=earlier)
    await seed_consultation(session, users=users, department_id=crs, earlier=earlier)
    await seed_learning(session, users=users, department_id=crs, today=today, material=article)
    await seed_appointments(session, users=users, today=today)


async def _departments(session: AsyncSession) -> dict[str, Department]:
    by_code: dict[str, Department] = {}
    for code, name, parent in DEMO_DEPARTMENTS:
        department = Department(code=code, name=name, parent_id=by_code[parent].id if parent else None)
        session.add(department)
        await session.flush()
        by_code[code] = department
    return by_code
