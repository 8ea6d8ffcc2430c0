"""Objects the small demo lacks, made through the API before a role's reach is probed.

All demo content, its one conversation and its learning task belong to Colorectal Surgery: the chief and the
department admin reach all of it, so nothing of those types would lie outside their reach. These add, on the
Gastroenterology and hospital side (the admin's own department is the hospital, above Colorectal Surgery):
* an upload of the admin's (no upload in the demo; an upload is its owner's until a message shows it);
* a break-the-glass grant of the admin's on a Gastroenterology patient (no grant in the demo);
* a merge of two new Gastroenterology patients (no merge in the demo; the demo's patients stay as they are);
* a draft article and a draft video of the admin's, and a published article of the admin's;
* a learning task for Gastroenterology (assigned to its staff: physician2);
* a mini-program account bound to a Gastroenterology patient, with a conversation with physician2, a message
  in it, and a comment held for review (the demo keyword list holds 祖传秘方) on the admin's article.
The objects are returned as the answers show them; `owned` are those no list shows, placed by their owner.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from sqlmodel import col, select

from core.db import Database
from core.ids import encode_id
from models.organisation import Department
from models.patient import Patient
from tests.conftest import DEMO_PASSWORD, LOGIN, GraphQLClient

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()
REASON = "generic reach test: an object outside the demo roles' reach"
UPLOAD = 'mutation ($c: String!) { uploadImage(contentBase64: $c, contentType: "image/png") { id } }'
GRANT = "mutation ($p: ID!, $r: String!) { emergencyAccess(patientId: $p, reason: $r) { id patientId } }"
REGISTER = 'mutation ($d: ID) { registerPatient(input: {name: "重复 Duplicate", departmentId: $d}) { id } }'
MERGE = "mutation ($k: ID!, $m: ID!, $r: String!) { mergePatients(keepId: $k, mergeId: $m, reason: $r) { id keepId mergedId } }"
ARTICLE = 'mutation { createArticle(input: {title: "外院草稿 Draft", bodyMarkdown: "草稿"}) { id } }'
VIDEO = 'mutation { createVideo(input: {title: "外院视频 Draft", videoUrl: "https://media.example.org/d.mp4"}) { id } }'
PUBLISH = "mutation ($id: ID!) { setArticleStatus(id: $id, status: PUBLISHED) { id } }"
TASK = """mutation ($d: ID!, $due: Date!) {
  createLearningTask(input: {title: "消化内科培训 Training", departmentId: $d, dueDate: $due}) {
    id departmentId assignments { edges { node { id userId } } }
  }
}"""
CREATE_USER = """mutation ($u: String!, $p: String!) {
  createUser(input: {username: $u, displayName: "消化患者 GI patient", password: $p, roleKeys: ["patient"]}) { id }
}"""
CHANGE_PASSWORD = "mutation ($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) { id } }"
BINDING_CODE = "mutation ($p: ID!) { issuePatientBindingCode(patientId: $p) { code } }"
BIND = "mutation ($c: String!) { bindPatientRecord(code: $c) { id } }"
START = "mutation { startConsultation { id patientUserId physicianId } }"
SEND = 'mutation ($c: ID!) { sendMessage(conversationId: $c, text: "消化科复诊咨询") { id conversationId senderId } }'
COMMENT = 'mutation ($c: ID!) { addComment(contentId: $c, text: "有没有祖传秘方") { id contentId } }'
ACCOUNT = "reach-gi-patient"
NEW_PASSWORD = "Reach-Gi#2026-x"


async def gastroenterology(db: Database) -> tuple[str, list[str]]:
    """The Gastroenterology department and its patients (physician2's), in id order."""
    async with db.session() as session:
        department = (await session.execute(select(Department.id).where(Department.code == "GI"))).scalar_one()
        rows = await session.execute(
            select(Patient.id).where(Patient.department_id == department).order_by(col(Patient.id))
        )
        patients = [encode_id("Patient", pk) for pk in rows.scalars()]
    return encode_id("Department", department), patients


async def _as_admin(client: GraphQLClient, document: str, variables: dict[str, Any] | None = None) -> Any:
    data = await client.data(document, variables, as_="admin")
    return next(iter(data.values()))


async def _account(client: GraphQLClient) -> str:
    """A new mini-program account with the patient role, past its first-login password change."""
    await _as_admin(client, CREATE_USER, {"u": ACCOUNT, "p": DEMO_PASSWORD})
    first = await client.data(LOGIN, {"u": ACCOUNT, "p": DEMO_PASSWORD})
    client.hold_to_trusted(first["login"]["accessToken"])  # a patient: runs only the mini-program's documents
    await client.data(CHANGE_PASSWORD, {"o": DEMO_PASSWORD, "n": NEW_PASSWORD}, token=first["login"]["accessToken"])
    token: str = (await client.data(LOGIN, {"u": ACCOUNT, "p": NEW_PASSWORD}))["login"]["accessToken"]
    client.hold_to_trusted(token)
    return token


async def make_outside(client: GraphQLClient, db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(objects, owned): everything made, as the answers show it."""
    department, patients = await gastroenterology(db)
    owned = [await _as_admin(client, UPLOAD, {"c": PNG})]  # no list shows an upload: placed by its owner
    made = [await _as_admin(client, GRANT, {"p": patients[0], "r": REASON})]
    keep, merged = [(await _as_admin(client, REGISTER, {"d": department}))["id"] for _ in range(2)]
    made.append(await _as_admin(client, MERGE, {"k": keep, "m": merged, "r": REASON}))
    made += [await _as_admin(client, ARTICLE), await _as_admin(client, VIDEO)]
    article = await _as_admin(client, ARTICLE)
    await _as_admin(client, PUBLISH, {"id": article["id"]})
    due = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    made.append(await _as_admin(client, TASK, {"d": department, "due": due}))

    token = await _account(client)
    code = (await _as_admin(client, BINDING_CODE, {"p": patients[0]}))["code"]
    await client.data(BIND, {"c": code}, token=token)
    conversation = (await client.data(START, token=token))["startConsultation"]
    message = (await client.data(SEND, {"c": conversation["id"]}, token=token))["sendMessage"]
    comment = (await client.data(COMMENT, {"c": article["id"]}, token=token))["addComment"]
    made += [conversation, message, comment]
    return made, owned
