"""No secret, token or code in the log at any level: the log of a run at DEBUG (every logger: ours, httpx's,
the drivers') holds none of the secrets, tokens, codes, passwords or identity numbers the run used."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from core import logredact
from tests.conftest import DEMO_PASSWORD, GraphQLClient, error_codes
from tests.fake_wechat import APP_SECRET, FakeWeChat, running
from tests.test_clinical_patient_side import BIND, ISSUE, new_user
from tests.test_clinical_visits import gid, patient_pks

WECHAT_LOGIN = "mutation ($c: String!) { wechatLogin(code: $c) { accessToken refreshToken } }"
REFRESH = "mutation ($t: String!) { refreshToken(token: $t) { accessToken refreshToken } }"
CHANGE = "mutation ($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) { id } }"
REGISTER = "mutation ($in: RegisterPatientInput!) { registerPatient(input: $in) { id } }"
SEARCH = "query ($s: String!) { patients(first: 5, filter: {search: $s}) { edges { node { id } } } }"
LOGIN = "mutation ($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken refreshToken } }"

WECHAT_CODE = "good-0a1b2c3d4e5f60718293"
WRONG_PASSWORD = "Wrong-password#9731"
NEW_PASSWORD = "Brand-New#Pass20261"
ID_NUMBER = "11010519491231002X"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWeChat]:
    with running() as server:
        yield server


@pytest.fixture
def settings_overrides(fake: FakeWeChat) -> dict[str, Any]:
    return {"wechat_api_base": fake.base_url, "log_level": "DEBUG"}


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)  # the root logger and every logger below it
    for name in ("httpx", "httpcore", "sqlalchemy.engine", "aiosqlite", "followup", "uvicorn"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield caplog
    finally:
        for name in ("httpx", "httpcore", "sqlalchemy.engine", "aiosqlite", "followup", "uvicorn"):
            logging.getLogger(name).setLevel(logging.NOTSET)


async def test_a_debug_run_logs_no_secret_token_or_code(
    client: GraphQLClient, debug_log: pytest.LogCaptureFixture
) -> None:
    used: list[str] = [APP_SECRET, WECHAT_CODE, DEMO_PASSWORD, WRONG_PASSWORD, NEW_PASSWORD, ID_NUMBER]
    settings = client.services.settings
    used += [settings.jwt_secret.get_secret_value(), settings.search_hash_key.get_secret_value(), *settings.data_keys]

    wechat = (await client.data(WECHAT_LOGIN, {"c": WECHAT_CODE}))["wechatLogin"]
    used += [wechat["accessToken"], wechat["refreshToken"]]
    assert error_codes(await client.run(LOGIN, {"u": "physician", "p": WRONG_PASSWORD})) == ["UNAUTHENTICATED"]
    tokens = (await client.data(LOGIN, {"u": "physician", "p": DEMO_PASSWORD}))["login"]
    used += [tokens["accessToken"], tokens["refreshToken"]]
    rotated = (await client.data(REFRESH, {"t": tokens["refreshToken"]}))["refreshToken"]
    used += [rotated["accessToken"], rotated["refreshToken"]]

    code = (
        await client.data(ISSUE, {"id": gid("Patient", (await patient_pks(client.services.db))[1])}, as_="physician")
    )["issuePatientBindingCode"]["code"]
    used.append(code)
    await new_user(client.services.db, "log-patient")
    bound = await client.run(BIND, {"code": code}, token=(await client.login("log-patient"))["accessToken"])
    assert "errors" not in bound, bound

    await client.data(
        REGISTER, {"in": {"name": "日志测试", "idType": "RESIDENT_ID", "idNumber": ID_NUMBER}}, as_="chief"
    )
    await client.data(SEARCH, {"s": ID_NUMBER}, as_="admin")
    changed = await client.run(
        CHANGE, {"o": DEMO_PASSWORD, "n": NEW_PASSWORD}, token=(await client.login("physician2"))["accessToken"]
    )
    assert "errors" not in changed, changed

    # something that fails with a secret in its message, logged with its traceback
    try:
        raise RuntimeError(f"GET /sns/jscode2session?appid=x&secret={APP_SECRET}&js_code={WECHAT_CODE}")
    except RuntimeError:
        logging.getLogger("followup.test").exception("Authorization: Bearer %s", tokens["accessToken"])

    text = debug_log.text
    assert "jscode2session" in text and "secret=[redacted]" in text  # httpx's request line was there, redacted
    assert "HTTP Request" in text
    assert "日志测试" not in text  # the new patient's name came back in rows, which are not logged
    leaked = [value[:12] for value in used if value and value in text]
    assert leaked == [], f"in the log: {leaked}"


def test_redaction_keeps_the_shape_of_a_message() -> None:
    logredact.install(["s3cr3t-value-123"])
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4", "GET", "/x?token=abc&a=1", "1.1", 200),
        None,
    )
    logredact.redact_record(record)
    assert record.getMessage() == '1.2.3.4 - "GET /x?token=[redacted]&a=1 HTTP/1.1" 200'
    assert logredact.redact('{"password": "p4ss", "user": "u"} s3cr3t-value-123 mysql://root:pw@h/db') == (
        '{"password": "[redacted]", "user": "u"} [redacted] mysql://root:[redacted]@h/db'
    )
    assert logredact.redact("errcode=40029 status_code=200") == "errcode=40029 status_code=200"
    # an identity number anywhere (no name beside it), but not an ordinary long number
    assert logredact.redact("Row (13, '11010519491231002X')") == "Row (13, '[redacted]')"
    assert logredact.redact("took 123456789012345678 ns") == "took 123456789012345678 ns"


def test_sqlalchemy_result_rows_are_never_logged() -> None:
    """SQLAlchemy's DEBUG `Row (...)` lines carry whatever a query returned (a patient's name, notes):
    `hide_parameters` does not cover them, the redaction does."""
    row = ("李雷", "肛瘘术后复查", "13800138000")
    record = logging.LogRecord("sqlalchemy.engine.Engine", logging.DEBUG, __file__, 1, "Row %r", (row,), None)
    logredact.redact_record(record)
    assert record.getMessage() == "Row '[row hidden]'"
