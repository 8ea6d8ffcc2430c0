"""The benchmark harness's own rules (bench/): it never times another process, and PostGraphile's answers are
compared with ours only after a faithful translation. Pure functions: no server, no database."""

from __future__ import annotations

import base64
import socket
import sys
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from common import Q1, Q3, body, encode_cursor, encode_id, free_ports, port_free  # noqa: E402
from pg_peer import DOCUMENTS, normalise, translate  # noqa: E402


def test_a_pinned_port_that_is_taken_stops_the_run_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not port_free(port)
        monkeypatch.setenv("BENCH_PORTS", f"ours={port}")
        with pytest.raises(SystemExit, match=str(port)):
            free_ports(["ours", "floor"])


def test_chosen_ports_are_free_and_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_PORTS", raising=False)
    ports = free_ports(["ours", "floor", "peer", "competent", "postgraphile"])
    assert len(set(ports.values())) == 5
    assert all(port_free(port) for port in ports.values())


def test_postgraphile_gets_its_document_a_row_id_and_its_own_cursor() -> None:
    q1 = translate(body("Q1", {"id": encode_id("Patient", 42)}))
    assert q1 == {"query": DOCUMENTS[Q1], "variables": {"id": 42}}
    q3 = translate(body("Q3", {"first": 20, "after": encode_cursor([9003])}))
    assert q3["query"] == DOCUMENTS[Q3]
    assert orjson.loads(base64.b64decode(q3["variables"]["after"])) == ["primary_key_asc", [9003]]


def test_postgraphile_answers_are_normalised_to_our_ids_and_cursors() -> None:
    cursor = base64.b64encode(orjson.dumps(["primary_key_asc", [7]])).decode()
    theirs = {
        "patients": {
            "edges": [
                {
                    "node": {
                        "id": 7,
                        "name": "A",
                        "attendingPhysicianId": 3,
                        "visits": [{"id": 70, "diagnoses": [{"id": 700, "isPrimary": True}]}],
                        "followUps": [{"id": 71, "painScore": None}],
                    }
                }
            ],
            "pageInfo": {"endCursor": cursor, "hasNextPage": False},
        }
    }
    ours = {
        "patients": {
            "edges": [
                {
                    "node": {
                        "id": encode_id("Patient", 7),
                        "name": "A",
                        "attendingPhysicianId": encode_id("User", 3),
                        "visits": [
                            {
                                "id": encode_id("Visit", 70),
                                "diagnoses": [{"id": encode_id("Diagnosis", 700), "isPrimary": True}],
                            }
                        ],
                        "followUps": [{"id": encode_id("FollowUp", 71), "painScore": None}],
                    }
                }
            ],
            "pageInfo": {"endCursor": encode_cursor([7]), "hasNextPage": False},
        }
    }
    assert normalise(theirs) == ours
