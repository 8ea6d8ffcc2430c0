"""Break-the-glass: reveal a masked field or reach a patient out of scope, for a reason, reviewed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from core.db import Database
from core.timeutil import utcnow
from models.integrity import AccessGrant
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

REVEAL = "mutation ($p: ID!, $f: RevealableField!, $r: String!) { revealField(patientId: $p, field: $f, reason: $r) }"
EMERGENCY = "mutation ($p: ID!, $r: String!) { emergencyAccess(patientId: $p, reason: $r) { id expiresAt } }"
READ = "query ($id: ID!) { patient(id: $id) { name phone } }"
GRANTS = "{ breakGlassAccesses(first: 50, unreviewedOnly: true) { edges { node { id kind reason by patientId } } } }"
REVIEW = 'mutation ($id: ID!) { reviewBreakGlass(id: $id, note: "已核实") { reviewedAt } }'


async def test_physician_reveals_a_masked_phone_for_a_reason(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", own.id)
    masked = await client.data(READ, {"id": pid}, as_="physician")
    assert masked["patient"]["phone"] != own.phone
    too_short = await client.run(REVEAL, {"p": pid, "f": "PHONE", "r": "急"}, as_="physician")
    assert error_codes(too_short) == ["BAD_USER_INPUT"]
    revealed = await client.data(REVEAL, {"p": pid, "f": "PHONE", "r": "术后出血需紧急电话联系患者"}, as_="physician")
    assert revealed["revealField"] == own.phone
    stranger = (await patients_of(db, "physician2"))[0]
    refused = await client.run(
        REVEAL, {"p": gid("Patient", stranger.id), "f": "PHONE", "r": "不在我的范围内的患者"}, as_="physician"
    )
    assert error_codes(refused) == ["NOT_FOUND"]
    async with db.session() as session:
        grants = (await session.execute(select(AccessGrant))).scalars().all()
    assert [(g.kind, g.patient_id) for g in grants] == [("reveal_phone", own.id)]


async def test_emergency_access_is_short_and_reviewed(client: GraphQLClient, db: Database) -> None:
    crs_patient = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", crs_patient.id)
    assert error_codes(await client.run(READ, {"id": pid}, as_="physician2")) == ["NOT_FOUND"]
    grant = await client.data(EMERGENCY, {"p": pid, "r": "急诊夜班，患者大出血需查看病史"}, as_="physician2")
    assert grant["emergencyAccess"]["expiresAt"]
    assert (await client.data(READ, {"id": pid}, as_="physician2"))["patient"]["name"] == crs_patient.name
    # The department admin of the patient's department sees it for review; physicians cannot list grants.
    listed = await client.data(GRANTS, as_="deptadmin")
    nodes = [edge["node"] for edge in listed["breakGlassAccesses"]["edges"]]
    assert [(n["kind"], n["patientId"]) for n in nodes] == [("emergency", pid)]
    assert nodes[0]["by"].startswith("刘医生")
    assert error_codes(await client.run(GRANTS, as_="physician")) == ["GRAPHQL_VALIDATION_FAILED"]
    await client.data(REVIEW, {"id": nodes[0]["id"]}, as_="deptadmin")
    assert (await client.data(GRANTS, as_="deptadmin"))["breakGlassAccesses"]["edges"] == []
    # When the grant expires, the patient is out of scope again.
    async with db.transaction() as session:
        await session.execute(update(AccessGrant).values(expires_at=utcnow() - timedelta(minutes=1)))
    assert error_codes(await client.run(READ, {"id": pid}, as_="physician2")) == ["NOT_FOUND"]


async def test_emergency_access_to_an_unknown_patient_is_not_found(client: GraphQLClient) -> None:
    result = await client.run(EMERGENCY, {"p": gid("Patient", 99999), "r": "急诊需要查看这位患者"}, as_="physician")
    assert error_codes(result) == ["NOT_FOUND"]
