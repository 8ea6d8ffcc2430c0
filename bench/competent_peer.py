"""The competent peer: strawberry + SQLAlchemy 2 async written the way a competent team would, no platform tricks.

    python bench/competent_peer.py --patients 10000 --port 8715

Same stack as ours, none of its specialisations: SQLAlchemy 2 declarative models (`Mapped`), one AsyncSession per
request, the caller's session, user and roles in two statements (`joinedload` + `selectinload`), column selection
(`load_only` for patients, plain column rows for visits, diagnoses and follow-ups), strawberry DataLoaders per
request for every list below a patient (one statement per level, whatever the page size), strawberry's parser
and validation caches, its stock ASGI app. The work is the API's for Q0-Q4: verify the token, check the session,
user and roles in the database (touching `last_seen_at` once a minute), apply the caller's data scope (the SQL
condition of policies/scope.py, its LIMIT-1 probes included), decrypt the phone number when it is asked for, write
one audit event per patient read (one bulk INSERT) and answer the same documents with the same JSON.
"""

from __future__ import annotations

import argparse
import base64
import os
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

import jwt
import orjson
import strawberry
import uvicorn
from common import database_url  # type: ignore[import-not-found]
from sqlalchemy import ForeignKey, String, false, insert, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, load_only, mapped_column, relationship
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.dataloader import DataLoader
from strawberry.extensions import ParserCache, ValidationCache

from core.crypto import DEMO_DATA_KEY, DEMO_HASH_KEY, FieldCipher
from core.settings import DEMO_JWT_SECRET

JWT_SECRET = os.environ.get("JWT_SECRET", DEMO_JWT_SECRET)
CIPHER = FieldCipher(
    [k.strip() for k in os.environ.get("DATA_ENCRYPTION_KEYS", DEMO_DATA_KEY).split(",") if k.strip()],
    os.environ.get("SEARCH_HASH_KEY", DEMO_HASH_KEY),
)
IDLE = timedelta(minutes=int(os.environ.get("SESSION_IDLE_MINUTES", "30")))
RANK = {"ALL": 3, "DEPARTMENT_AND_BELOW": 2, "DEPARTMENT": 1, "SELF": 0}
MAX_PAGE = 100


# ---- models: the columns these queries use ------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Department(Base):
    __tablename__ = "department"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None]


class UserRole(Base):
    __tablename__ = "user_role"
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id"), primary_key=True)


class Role(Base):
    __tablename__ = "role"
    id: Mapped[int] = mapped_column(primary_key=True)
    data_scope: Mapped[str] = mapped_column(String(32))


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int | None]
    status: Mapped[str]
    must_change_password: Mapped[bool]
    roles: Mapped[list[Role]] = relationship(secondary="user_role", lazy="raise")


class AuthSession(Base):
    __tablename__ = "auth_session"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    user: Mapped[User] = relationship(lazy="raise")


class Patient(Base):
    __tablename__ = "patient"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    gender: Mapped[str]
    birth_date: Mapped[date | None]
    phone: Mapped[str | None]  # Fernet token: decrypted by the field resolver, only when asked for
    version: Mapped[int]
    department_id: Mapped[int | None]
    attending_physician_id: Mapped[int | None]
    wechat_user_id: Mapped[int | None]
    voided_at: Mapped[datetime | None]


class Visit(Base):
    __tablename__ = "visit"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int]
    physician_id: Mapped[int | None]
    visit_date: Mapped[date]
    visit_type: Mapped[str]
    voided_at: Mapped[datetime | None]
    under_grant_id: Mapped[int | None]


class Diagnosis(Base):
    __tablename__ = "diagnosis"
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int]
    icd10_code: Mapped[str]
    icd10_name: Mapped[str]
    is_primary: Mapped[bool]


class FollowUp(Base):
    __tablename__ = "follow_up"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int]
    due_date: Mapped[date]
    status: Mapped[str]
    pain_score: Mapped[int | None]


class AccessGrant(Base):
    __tablename__ = "access_grant"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int]
    patient_id: Mapped[int]
    kind: Mapped[str]
    expires_at: Mapped[datetime]


class Event(Base):
    __tablename__ = "event"
    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime]
    actor_id: Mapped[int | None]
    action: Mapped[str]
    operation: Mapped[str]
    entity_type: Mapped[str]
    entity_id: Mapped[str]
    patient_id: Mapped[int | None]
    request_id: Mapped[str]
    ip: Mapped[str]
    outcome: Mapped[str]


# ---- GraphQL types --------------------------------------------------------------------------------------------


def gid(kind: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{kind}:{pk}".encode()).decode().rstrip("="))


def pk_of(kind: str, value: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except ValueError:
        return None
    found, _, pk = raw.partition(":")
    return int(pk) if found == kind and pk.isdigit() else None


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
    id: strawberry.ID
    icd10_code: str
    icd10_name: str
    is_primary: bool


@strawberry.type(name="Visit")
class VisitType:
    pk: strawberry.Private[int]
    id: strawberry.ID
    visit_date: date
    visit_type: VisitKind

    @strawberry.field
    async def diagnoses(self, info: strawberry.Info) -> list[DiagnosisType]:
        return await info.context["loaders"]["diagnoses"].load(self.pk)  # type: ignore[no-any-return]


@strawberry.type(name="FollowUp")
class FollowUpType:
    id: strawberry.ID
    due_date: date
    status: FollowUpStatus
    pain_score: int | None


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
        return None if self.row.phone is None else CIPHER.decrypt(self.row.phone)

    @strawberry.field
    def version(self) -> int:
        return self.row.version

    @strawberry.field
    def attending_physician_id(self) -> strawberry.ID | None:
        pk = self.row.attending_physician_id
        return None if pk is None else gid("User", pk)

    @strawberry.field
    async def visits(self, info: strawberry.Info) -> list[VisitType]:
        return await info.context["loaders"]["visits"].load(self.row.id)  # type: ignore[no-any-return]

    @strawberry.field
    async def follow_ups(self, info: strawberry.Info) -> list[FollowUpType]:
        return await info.context["loaders"]["follow_ups"].load(self.row.id)  # type: ignore[no-any-return]


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


# ---- per request: caller, scope, loaders, audit ---------------------------------------------------------------


class Unauthenticated(Exception):
    pass


async def authenticate(session: AsyncSession, request: Request) -> User:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated
    try:
        claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], options={"require": ["exp", "sub", "sid"]})
    except jwt.PyJWTError as error:
        raise Unauthenticated from error
    auth = (
        await session.execute(
            select(AuthSession)
            .where(AuthSession.id == claims["sid"])
            .options(joinedload(AuthSession.user).selectinload(User.roles))
        )
    ).scalar_one_or_none()
    now = datetime.now(UTC).replace(tzinfo=None)
    if (
        claims.get("typ") != "access"
        or auth is None
        or auth.user_id != int(claims["sub"])
        or auth.revoked_at is not None
        or auth.expires_at <= now
        or auth.last_seen_at + IDLE <= now
        or auth.user.status == "disabled"
        or auth.user.must_change_password
    ):
        raise Unauthenticated
    user = auth.user
    if now - auth.last_seen_at >= timedelta(seconds=60):
        auth.last_seen_at = now
        await session.commit()
    return user


def _probe(*conditions: Any) -> Any:
    """policies/scope.py's correlated `(SELECT 1 ... LIMIT 1) IS NOT NULL` (MariaDB flattens EXISTS into a scan)."""
    return select(literal(1)).where(*conditions).limit(1).scalar_subquery().is_not(None)


async def scope_clause(session: AsyncSession, user: User | None) -> Any:
    if user is None:
        raise PermissionError("not signed in")
    scope = max((role.data_scope for role in user.roles), key=RANK.__getitem__, default="SELF")
    if scope == "ALL":
        return true()
    if user.id is None:
        return false()
    now = datetime.now(UTC).replace(tzinfo=None)
    own = [
        Patient.attending_physician_id == user.id,
        Patient.wechat_user_id == user.id,
        _probe(
            Visit.patient_id == Patient.id,
            Visit.physician_id == user.id,
            Visit.voided_at.is_(None),
            Visit.under_grant_id.is_(None),
        ),
        _probe(
            AccessGrant.patient_id == Patient.id,
            AccessGrant.user_id == user.id,
            AccessGrant.kind == "emergency",
            AccessGrant.expires_at > now,
        ),
    ]
    if scope in ("DEPARTMENT", "DEPARTMENT_AND_BELOW") and user.department_id is not None:
        allowed = {user.department_id}
        if scope == "DEPARTMENT_AND_BELOW":
            children: dict[int | None, list[int]] = defaultdict(list)
            for dep, parent in (await session.execute(select(Department.id, Department.parent_id))).all():
                children[parent].append(dep)
            stack = [user.department_id]
            while stack:
                for child in children.get(stack.pop(), []):
                    if child not in allowed:
                        allowed.add(child)
                        stack.append(child)
        own.insert(0, Patient.department_id.in_(sorted(allowed)))  # first, as policies/scope.py
    return or_(*own)


def loaders(session: AsyncSession) -> dict[str, DataLoader[int, Any]]:
    async def visits(keys: list[int]) -> list[list[VisitType]]:
        rows = await session.execute(
            select(Visit.id, Visit.patient_id, Visit.visit_date, Visit.visit_type)
            .where(Visit.patient_id.in_(keys))
            .order_by(Visit.visit_date, Visit.id)
        )
        found: dict[int, list[VisitType]] = defaultdict(list)
        for pk, patient_id, visit_date, kind in rows:
            found[patient_id].append(
                VisitType(pk=pk, id=gid("Visit", pk), visit_date=visit_date, visit_type=VisitKind(kind))
            )
        return [found.get(key, []) for key in keys]

    async def diagnoses(keys: list[int]) -> list[list[DiagnosisType]]:
        rows = await session.execute(
            select(Diagnosis.id, Diagnosis.visit_id, Diagnosis.icd10_code, Diagnosis.icd10_name, Diagnosis.is_primary)
            .where(Diagnosis.visit_id.in_(keys))
            .order_by(Diagnosis.id)
        )
        found: dict[int, list[DiagnosisType]] = defaultdict(list)
        for pk, visit_id, code, name, primary in rows:
            found[visit_id].append(
                DiagnosisType(id=gid("Diagnosis", pk), icd10_code=code, icd10_name=name, is_primary=bool(primary))
            )
        return [found.get(key, []) for key in keys]

    async def follow_ups(keys: list[int]) -> list[list[FollowUpType]]:
        rows = await session.execute(
            select(FollowUp.id, FollowUp.patient_id, FollowUp.due_date, FollowUp.status, FollowUp.pain_score)
            .where(FollowUp.patient_id.in_(keys))
            .order_by(FollowUp.due_date, FollowUp.id)
        )
        found: dict[int, list[FollowUpType]] = defaultdict(list)
        for pk, patient_id, due, status, pain in rows:
            found[patient_id].append(
                FollowUpType(id=gid("FollowUp", pk), due_date=due, status=FollowUpStatus(status), pain_score=pain)
            )
        return [found.get(key, []) for key in keys]

    return {"visits": DataLoader(visits), "diagnoses": DataLoader(diagnoses), "follow_ups": DataLoader(follow_ups)}


async def record_reads(info: strawberry.Info, ids: list[int], operation: str) -> None:
    """One audit event per patient read, in one bulk INSERT, committed with the request's work."""
    session: AsyncSession = info.context["session"]
    request: Request = info.context["request"]
    if ids:
        now, request_id, actor = datetime.now(UTC).replace(tzinfo=None), uuid.uuid4().hex, info.context["user"].id
        ip = request.client.host if request.client else ""
        await session.execute(
            insert(Event),
            [
                {"occurred_at": now, "actor_id": actor, "action": "read", "operation": operation,
                 "entity_type": "Patient", "entity_id": str(pk), "patient_id": pk, "request_id": request_id,
                 "ip": ip, "outcome": "success"}
                for pk in ids
            ],
        )  # fmt: skip
    await session.commit()


PATIENT_COLUMNS = load_only(
    Patient.id,
    Patient.name,
    Patient.gender,
    Patient.birth_date,
    Patient.phone,
    Patient.version,
    Patient.attending_physician_id,
)


@strawberry.type
class Query:
    @strawberry.field
    async def patient(self, info: strawberry.Info, id: strawberry.ID) -> PatientType:
        session: AsyncSession = info.context["session"]
        pk = pk_of("Patient", id)
        clause = await scope_clause(session, info.context["user"])
        row = (
            await session.execute(select(Patient).options(PATIENT_COLUMNS).where(Patient.id == pk, clause))
        ).scalar_one_or_none()
        if row is None:
            raise ValueError("Patient not found")
        await record_reads(info, [row.id], "patient")
        return PatientType(row=row)

    @strawberry.field
    async def patients(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = None
    ) -> PatientConnection:
        session: AsyncSession = info.context["session"]
        size = 20 if first is None else first
        if not 0 <= size <= MAX_PAGE:
            raise ValueError(f"first must be between 0 and {MAX_PAGE}")
        statement = (
            select(Patient)
            .options(PATIENT_COLUMNS)
            .where(await scope_clause(session, info.context["user"]), Patient.voided_at.is_(None))
        )
        if after:
            statement = statement.where(Patient.id > orjson.loads(base64.urlsafe_b64decode(after + "=="))[0])
        rows = list((await session.execute(statement.order_by(Patient.id).limit(size + 1))).scalars())
        page = rows[:size]
        await record_reads(info, [row.id for row in page], "patients")
        end = base64.urlsafe_b64encode(orjson.dumps([page[-1].id])).decode().rstrip("=") if page else None
        return PatientConnection(
            edges=[PatientEdge(node=PatientType(row=row)) for row in page],
            page_info=PageInfo(end_cursor=end, has_next_page=len(rows) > size),
        )


class App(GraphQL):  # type: ignore[type-arg]
    def __init__(self, schema: strawberry.Schema, url: str) -> None:
        super().__init__(schema, graphql_ide=None)
        self.engine = create_async_engine(url, pool_size=10, max_overflow=10)
        # expire_on_commit=False: the audit commit must not expire the rows the resolvers still read
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def get_context(self, request: Request, response: Any = None) -> dict[str, Any]:
        session = self.sessions()
        request.state.session = session
        try:
            user = await authenticate(session, request)
        except Unauthenticated:
            user = None
        return {"request": request, "response": response, "session": session, "user": user, "loaders": loaders(session)}

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
    parser.add_argument("--port", type=int, default=8715)
    args = parser.parse_args()
    # strawberry's documented form: factories; both caches live at module level, shared by every request
    schema = strawberry.Schema(
        query=Query, extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)]
    )
    app = App(schema, database_url(args.patients, "competent") + "?charset=utf8mb4")
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
