"""The access layer's structural guarantees: registries derived and checked at start-up, capabilities in the
policy, ownership followed by merge, unmerge and export for every patient-owned table."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, select

from core.db import Database
from models.consultation import Conversation, Message
from models.integrity import PatientMerge
from models.patient import Patient
from models.policy import CasbinRule
from policies.ownership import owned_tables, unclassified
from policies.tables import check_tables
from server import StartupRefused, create_app
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, make_settings

START = "mutation { startConsultation { id } }"
SEND = "mutation ($c: ID!, $t: String) { sendMessage(conversationId: $c, text: $t) { id } }"
MERGE = "mutation ($k: ID!, $m: ID!, $r: String!) { mergePatients(keepId: $k, mergeId: $m, reason: $r) { id moved } }"
UNMERGE = "mutation ($id: ID!, $r: String!) { unmergePatients(mergeId: $id, reason: $r) { undoneAt } }"


# ---- derived registries, refused at start-up when incomplete ----------------------------------------


def test_the_real_schema_classifies_every_patient_column_and_declares_every_table() -> None:
    assert unclassified() == []
    assert check_tables() == []


def test_an_unclassified_patient_column_is_reported() -> None:
    metadata = MetaData()
    Table("patient", metadata, Column("id", Integer, primary_key=True))
    Table("wound_photo", metadata, Column("id", Integer, primary_key=True), Column("owner", ForeignKey("patient.id")))
    Table("note", metadata, Column("id", Integer, primary_key=True), Column("patient_id", Integer))
    problems = unclassified(metadata)
    assert any("wound_photo.owner" in problem for problem in problems)
    assert any("note.patient_id" in problem for problem in problems)  # named like a patient column, no key
    assert check_tables(metadata) == ["note", "wound_photo"]


def test_ownership_is_derived_from_foreign_keys() -> None:
    owned = {item.table.name: item for item in owned_tables()}
    assert owned["conversation"].direct and owned["conversation"].column == "patient_id"
    assert not owned["message"].direct and owned["message"].parent == "conversation"
    assert {"visit", "diagnosis", "exam_report", "treatment_plan", "follow_up"} <= set(owned)
    assert "event" not in owned and "amendment" not in owned and "access_grant" not in owned


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (("p", "physician", "capability:nothing.such", "execute"), "unknown capability"),
        (("p", "physician", "capability:consultation.manage", "read"), "a capability takes 'execute'"),
        (("p", "physician", "Patient.address", "read_masked"), "has no mask"),
        (("p", "physician", "Patient.nothingSuch", "read"), "no schema coordinate"),
    ],
)
async def test_start_up_refuses_a_policy_line_it_cannot_honour(
    database_url: str, db: Database, app: Any, line: tuple[str, ...], why: str
) -> None:
    ptype, v0, v1, v2 = line
    async with db.transaction() as session:
        session.add(CasbinRule(ptype=ptype, v0=v0, v1=v1, v2=v2))
    refused = create_app(make_settings(database_url))
    with pytest.raises(StartupRefused, match=r"capability|coordinate"):
        async with refused.router.lifespan_context(refused):
            pass
    from policies.store import PolicyLine, line_problem

    assert why in (line_problem(PolicyLine(ptype, (v0, v1, v2)), set(app.state.services.coordinates)) or "")


# ---- ownership followed by merge, unmerge and export -------------------------------------------------


async def _conversation_of_the_demo_patient(client: GraphQLClient) -> tuple[int, int]:
    conversation = (await client.data(START, as_="patient"))["startConsultation"]["id"]
    await client.data(SEND, {"c": conversation, "t": "术后第三天，伤口还有些渗血"}, as_="patient")
    await client.data(SEND, {"c": conversation, "t": "请保持清洁，明天复诊"}, as_="physician")
    from core.ids import decode_id

    return decode_id("Conversation", conversation), 2


async def test_merge_moves_conversations_and_unmerge_brings_them_back(client: GraphQLClient, db: Database) -> None:
    conversation_id, _ = await _conversation_of_the_demo_patient(client)
    async with db.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        duplicate = conversation.patient_id
    keep = next(p for p in await patients_of(db, "physician") if p.id != duplicate)
    merged = await client.data(
        MERGE, {"k": gid("Patient", keep.id), "m": gid("Patient", duplicate), "r": "同一患者重复建档"}, as_="chief"
    )
    assert conversation_id in merged["mergePatients"]["moved"]["conversation"]
    async with db.session() as session:
        moved = await session.get(Conversation, conversation_id)
        record = (await session.execute(select(PatientMerge))).scalar_one()
    assert moved is not None and moved.patient_id == keep.id
    await client.data(UNMERGE, {"id": gid("PatientMerge", record.id), "r": "误合并，撤销"}, as_="chief")
    async with db.session() as session:
        back = await session.get(Conversation, conversation_id)
        messages = (await session.execute(select(Message).where(Message.conversation_id == conversation_id))).all()
    assert back is not None and back.patient_id == duplicate
    assert len(messages) >= 2  # messages hang off their conversation and followed it both ways


async def test_a_patients_export_holds_their_consultation_messages(client: GraphQLClient, db: Database) -> None:
    conversation_id, _sent = await _conversation_of_the_demo_patient(client)
    export = (await client.data("{ myDataExport }", as_="patient"))["myDataExport"]
    assert conversation_id in [row["id"] for row in export["conversation"]]
    bodies = [row["body"] for row in export["message"] if row["conversation_id"] == conversation_id]
    assert bodies == ["术后第三天，伤口还有些渗血", "请保持清洁，明天复诊"]
    async with db.session() as session:
        conversations = [row["id"] for row in export["conversation"]]
        stored = (await session.execute(select(Message.id).where(Message.conversation_id.in_(conversations)))).all()
    assert len(export["message"]) == len(stored)  # every message of the patient's conversations, none other
    assert "patient_binding_code" not in export  # issued codes mean nothing to the patient
    async with db.session() as session:
        mine = await session.execute(select(Patient).where(Patient.id == export["conversation"][0]["patient_id"]))
    assert mine.scalar_one().name == export["patient"]["name"]


def test_every_capability_has_a_description_and_a_catalogue_domain() -> None:
    """A capability added by a module shows in the permission catalogue (it needs both to be listed there)."""
    from policies.capabilities import DESCRIPTIONS, DOMAINS, Capability

    assert set(DESCRIPTIONS) == set(Capability)
    assert set(DOMAINS) == set(Capability)
