"""The tutorial-style peer: plain strawberry + SQLModel, the way the tutorials show it.

    python bench/tutorial_peer.py --patients 10000 --port 8703

ORM objects everywhere (`select(Patient)`), relationships loaded lazily per object
(`await patient.awaitable_attrs.visits`, then each visit's diagnoses), one AsyncSession per request
from the context getter, no DataLoaders, no parser or validation cache, strawberry's stock ASGI app
(json). It does the same work as the API for Q0-Q4: verifies the token and its session, user and roles
(through ORM relationships), applies the caller's data scope (the same condition as
policies/scope.py), writes one audit event per patient read (`session.add` each) and answers the
same documents with the same JSON.
"""

import argparse
import base64
import os
import uuid
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

import jwt
import orjson
import strawberry
import uvicorn
from common import database_url  # type: ignore[import-not-found]
from sqlalchemy import String, false, or_, true
from sqlalchemy.ext.asyncio import AsyncAttrs, create_async_engine
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Relationship, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from strawberry.asgi import GraphQL

from core.crypto import DEMO_DATA_KEY, DEMO_HASH_KEY, FieldCipher
from core.settings import DEMO_JWT_SECRET

JWT_SECRET = os.environ.get("JWT_SECRET", DEMO_JWT_SECRET)
CIPHER = FieldCipher(
    [k.strip() for k in os.environ.get("DATA_ENCRYPTION_KEYS", DEMO_DATA_KEY).split(",") if k.strip()],
    os.environ.get("SEARCH_HASH_KEY", DEMO_HASH_KEY),
)


class Encrypted(TypeDecorator[str]):
    impl = String(255)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else CIPHER.encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else CIPHER.decrypt(value)


# ---- models (a tutorial mirrors its tables) ----------------------------------------------------


class Base(AsyncAttrs, SQLModel):
    pass


class Department(Base, table=True):
    __tablename__ = "department"
    id: int | None = Field(default=None, primary_key=True)
    name: str
    code: str
    parent_id: int | None = Field(default=None, foreign_key="department.id")


class UserRole(Base, table=True):
    __tablename__ = "user_role"
    user_id: int = Field(foreign_key="app_user.id", primary_key=True)
    role_id: int = Field(foreign_key="role.id", primary_key=True)


class Role(Base, table=True):
    __tablename__ = "role"
    id: int | None = Field(default=None, primary_key=True)
    key: str
    data_scope: str


class User(Base, table=True):
    __tablename__ = "app_user"
    id: int | None = Field(default=None, primary_key=True)
    username: str | None
    display_name: str
    department_id: int | None = Field(default=None, foreign_key="department.id")
    status: str
    must_change_password: bool
    roles: list[Role] = Relationship(link_model=UserRole)


class AuthSession(Base, table=True):
    __tablename__ = "auth_session"
    id: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="app_user.id")
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    user: User = Relationship()


class Patient(Base, table=True):
    __tablename__ = "patient"
    id: int | None = Field(default=None, primary_key=True)
    name: str
    name_initials: str
    gender: str
    birth_date: date | None
    id_type: str
    id_number: str | None = Field(default=None, sa_type=Encrypted)
    phone: str | None = Field(default=None, sa_type=Encrypted)
    emergency_contact_phone: str | None = Field(default=None, sa_type=Encrypted)
    address: str | None
    allergies: str | None
    past_history: str | None
    department_id: int | None
    attending_physician_id: int | None
    wechat_user_id: int | None
    voided_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    visits: list["Visit"] = Relationship(
        back_populates="patient", sa_relationship_kwargs={"order_by": "(Visit.visit_date, Visit.id)"}
    )
    follow_ups: list["FollowUp"] = Relationship(sa_relationship_kwargs={"order_by": "(FollowUp.due_date, FollowUp.id)"})


class Visit(Base, table=True):
    __tablename__ = "visit"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id")
    physician_id: int | None
    department_id: int | None
    visit_date: date
    visit_type: str
    chief_complaint: str | None
    examination_findings: str | None
    notes: str | None
    created_at: datetime
    patient: Patient = Relationship(back_populates="visits")
    diagnoses: list["Diagnosis"] = Relationship(sa_relationship_kwargs={"order_by": "Diagnosis.id"})


class Diagnosis(Base, table=True):
    __tablename__ = "diagnosis"
    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="visit.id")
    patient_id: int
    icd10_code: str
    icd10_name: str
    is_primary: bool
    tcm_syndrome: str | None
    created_at: datetime


class FollowUp(Base, table=True):
    __tablename__ = "follow_up"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id")
    visit_id: int | None
    due_date: date
    status: str
    method: str
    outcome_text: str | None
    pain_score: int | None
    bleeding: bool | None
    recorded_at: datetime | None
    created_at: datetime
    version: int


class Event(Base, table=True):
    __tablename__ = "event"
    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime
    actor_id: int | None
    action: str
    operation: str
    entity_type: str
    entity_id: str
    patient_id: int | None
    request_id: str
    ip: str
    outcome: str


# ---- GraphQL -----------------------------------------------------------------------------------


def gid(kind: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{kind}:{pk}".encode()).decode().rstrip("="))


def pk_of(kind: str, value: str) -> int:
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    k, _, pk = raw.partition(":")
    if k != kind:
        raise ValueError("Patient not found")
    return int(pk)


@strawberry.enum
class Gender(Enum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


@strawberry.enum(name="VisitType")
class VisitKind(Enum):
    OUTPATIENT = "outpatient"
    INPATIENT = "inpatient"
    SURGERY = "surgery"
    TELECONSULTATION = "teleconsultation"


@strawberry.enum
class FollowUpStatus(Enum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    MISSED = "missed"
    CANCELLED = "cancelled"


@strawberry.type(name="Diagnosis")
class DiagnosisType:
    row: strawberry.Private[Diagnosis]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return gid("Diagnosis", self.row.id)

    @strawberry.field
    def icd10_code(self) -> str:
        return self.row.icd10_code

    @strawberry.field
    def icd10_name(self) -> str:
        return self.row.icd10_name

    @strawberry.field
    def is_primary(self) -> bool:
        return self.row.is_primary


@strawberry.type(name="Visit")
class VisitType:
    row: strawberry.Private[Visit]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return gid("Visit", self.row.id)

    @strawberry.field
    def visit_date(self) -> date:
        return self.row.visit_date

    @strawberry.field
    def visit_type(self) -> VisitKind:
        return VisitKind(self.row.visit_type)

    @strawberry.field
    async def diagnoses(self) -> list[DiagnosisType]:
        return [DiagnosisType(row=d) for d in await self.row.awaitable_attrs.diagnoses]


@strawberry.type(name="FollowUp")
class FollowUpType:
    row: strawberry.Private[FollowUp]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return gid("FollowUp", self.row.id)

    @strawberry.field
    def due_date(self) -> date:
        return self.row.due_date

    @strawberry.field
    def status(self) -> FollowUpStatus:
        return FollowUpStatus(self.row.status)

    @strawberry.field
    def pain_score(self) -> int | None:
        return self.row.pain_score


@strawberry.type(name="Patient")
class PatientType:
    row: strawberry.Private[Patient]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return gid("Patient", self.row.id)

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def gender(self) -> Gender:
        return Gender(self.row.gender)

    @strawberry.field
    def birth_date(self) -> date | None:
        return self.row.birth_date

    @strawberry.field
    def phone(self) -> str | None:
        return self.row.phone

    @strawberry.field
    def version(self) -> int:
        return self.row.version

    @strawberry.field
    def attending_physician_id(self) -> strawberry.ID | None:
        pk = self.row.attending_physician_id
        return None if pk is None else gid("User", pk)

    @strawberry.field
    async def visits(self) -> list[VisitType]:
        return [VisitType(row=v) for v in await self.row.awaitable_attrs.visits]

    @strawberry.field
    async def follow_ups(self) -> list[FollowUpType]:
        return [FollowUpType(row=f) for f in await self.row.awaitable_attrs.follow_ups]


@strawberry.type
class PatientEdge:
    node: PatientType


@strawberry.type
class PageInfo:
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class PatientConnection:
    edges: list[PatientEdge]
    page_info: PageInfo


class Caller:
    def __init__(self, user: User, scope: str) -> None:
        self.user = user
        self.scope = scope


async def authenticate(session: AsyncSession, request: Request) -> Caller:
    _scheme, _, token = request.headers.get("authorization", "").partition(" ")
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], options={"require": ["exp", "sub", "sid"]})
    auth = await session.get(AuthSession, claims["sid"])
    now = datetime.now(UTC)
    if auth is None or auth.revoked_at is not None or auth.expires_at <= now or auth.user_id != int(claims["sub"]):
        raise PermissionError("Session has ended")
    if auth.last_seen_at + timedelta(minutes=30) <= now:
        raise PermissionError("Session has ended")
    user = await auth.awaitable_attrs.user
    if user.status == "disabled" or user.must_change_password:
        raise PermissionError("Account disabled")
    if now - auth.last_seen_at >= timedelta(seconds=60):
        auth.last_seen_at = now
        await session.commit()
    rank = {"ALL": 3, "DEPARTMENT_AND_BELOW": 2, "DEPARTMENT": 1, "SELF": 0}
    roles = await user.awaitable_attrs.roles
    scope = max((r.data_scope for r in roles), key=lambda s: rank[s], default="SELF")
    return Caller(user, scope)


async def scope_clause(session: AsyncSession, caller: Caller) -> Any:
    if caller.scope == "ALL":
        return true()
    uid = caller.user.id
    if uid is None:
        return false()
    own = [
        Patient.attending_physician_id == uid,
        Patient.wechat_user_id == uid,
        Patient.id.in_(select(Visit.patient_id).where(Visit.physician_id == uid)),
    ]
    if caller.scope in ("DEPARTMENT", "DEPARTMENT_AND_BELOW") and caller.user.department_id is not None:
        allowed = {caller.user.department_id}
        if caller.scope == "DEPARTMENT_AND_BELOW":
            departments = (await session.exec(select(Department))).all()
            changed = True
            while changed:
                changed = False
                for department in departments:
                    if department.parent_id in allowed and department.id not in allowed:
                        allowed.add(department.id)
                        changed = True
        own.insert(0, Patient.department_id.in_(sorted(allowed)))  # first, as policies/scope.py
    return or_(*own)


async def record_reads(info: strawberry.Info, patients: list[Patient], operation: str) -> None:
    session: AsyncSession = info.context["session"]
    caller: Caller = info.context["caller"]
    request: Request = info.context["request"]
    request_id = uuid.uuid4().hex
    for patient in patients:
        session.add(
            Event(
                occurred_at=datetime.now(UTC),
                actor_id=caller.user.id,
                action="read",
                operation=operation,
                entity_type="Patient",
                entity_id=str(patient.id),
                patient_id=patient.id,
                request_id=request_id,
                ip=request.client.host if request.client else "",
                outcome="success",
            )
        )
    await session.commit()


@strawberry.type
class Query:
    @strawberry.field
    async def patient(self, info: strawberry.Info, id: strawberry.ID) -> PatientType:
        session: AsyncSession = info.context["session"]
        clause = await scope_clause(session, info.context["caller"])
        row = (await session.exec(select(Patient).where(Patient.id == pk_of("Patient", id), clause))).first()
        if row is None:
            raise ValueError("Patient not found")
        await record_reads(info, [row], "patient")
        return PatientType(row=row)

    @strawberry.field
    async def patients(self, info: strawberry.Info, first: int = 20, after: str | None = None) -> PatientConnection:
        session: AsyncSession = info.context["session"]
        statement = select(Patient).where(await scope_clause(session, info.context["caller"]))
        statement = statement.where(Patient.voided_at.is_(None))
        if after:
            statement = statement.where(Patient.id > orjson.loads(base64.urlsafe_b64decode(after + "=="))[0])
        rows = list((await session.exec(statement.order_by(Patient.id).limit(first + 1))).all())
        page = rows[:first]
        await record_reads(info, page, "patients")
        end = base64.urlsafe_b64encode(orjson.dumps([page[-1].id])).decode().rstrip("=") if page else None
        return PatientConnection(
            edges=[PatientEdge(node=PatientType(row=row)) for row in page],
            page_info=PageInfo(end_cursor=end, has_next_page=len(rows) > first),
        )


class App(GraphQL):
    def __init__(self, schema: strawberry.Schema, url: str) -> None:
        super().__init__(schema, graphql_ide=None)
        self.engine = create_async_engine(url, pool_size=10, max_overflow=10)

    async def get_context(self, request: Request, response: Any = None) -> dict[str, Any]:
        # expire_on_commit=False: the audit commit must not expire the rows the resolvers still read
        session = AsyncSession(self.engine, expire_on_commit=False)
        request.state.session = session
        return {
            "request": request,
            "response": response,
            "session": session,
            "caller": await authenticate(session, request),
        }

    async def run(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().run(request, *args, **kwargs)
        finally:  # the request's session goes back to the pool
            session = getattr(request.state, "session", None)
            if session is not None:
                await session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=8703)
    args = parser.parse_args()
    schema = strawberry.Schema(query=Query)
    app = App(schema, database_url(args.patients, "peer") + "?charset=utf8mb4")
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
