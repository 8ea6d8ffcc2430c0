"""Large outputs are split: at most FHIR_EXPORT_FILE_MAX_RESOURCES resources a file, several files of one type in the
manifest, each downloadable and counted; a resumed export cuts every file back (and drops files started after its
last save); a session shared by patients of different steps is written once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from core.db import Database
from resolvers.fhir.runner import Step, _append, _cut_back, file_name, parse_file_name
from tests.conftest import GraphQLClient
from tests.fhir_helpers import check_files, download
from tests.test_fhir_export import _department_of, _export, _group, _patients_in

CAP = 3


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"fhir_export_dir": str(tmp_path / "exports"), "fhir_export_batch": 4, "fhir_export_file_max_resources": CAP}


async def test_a_type_past_the_cap_comes_in_several_files(client: GraphQLClient, db: Database) -> None:
    department = await _department_of(db, "chief")
    expected = await _patients_in(db, department)
    assert len(expected) > 2 * CAP
    manifest, _ = await _export(client, _group(department), "chief")
    patients = [entry for entry in manifest["output"] if entry["type"] == "Patient"]
    assert len(patients) == -(-len(expected) // CAP)  # ceil
    assert [entry["count"] for entry in patients[:-1]] == [CAP] * (len(patients) - 1) and patients[-1]["count"] <= CAP
    assert sum(entry["count"] for entry in patients) == len(expected)
    assert patients[0]["url"].endswith("/Patient.ndjson") and patients[1]["url"].endswith("/Patient.2.ndjson")
    assert len({entry["url"] for entry in manifest["output"]}) == len(manifest["output"])
    assert all(entry["count"] <= CAP for entry in manifest["output"])
    files = await download(client, manifest, "chief")  # every file, counts as the manifest says
    check_files(files)  # ids unique across a type's files, references resolve across all of them
    assert {int(p["id"]) for p in files["Patient"]} == set(expected)
    # each session once, however many patients (of however many steps) were booked in it
    slots = {slot["schedule"]["reference"] for slot in files["Slot"]}
    assert {f"Schedule/{s['id']}" for s in files["Schedule"]} == slots
    # a file name outside the manifest is not found
    last = patients[-1]["url"].rsplit("/", 1)[0]
    auth = {"Authorization": f"Bearer {await client.token('chief')}", "Accept": "application/fhir+ndjson"}
    for name in (file_name("Patient", len(patients) + 1), "Patient.1.ndjson", "Patient.02.ndjson", "x.ndjson"):
        assert (await client.http.get(f"{last}/{name}", headers=auth)).status_code == 404, name


def _lines(count: int, start: int = 0) -> Step:
    step = Step()
    for n in range(start, start + count):
        step.add("Patient", {"resourceType": "Patient", "id": str(n)})
    return step


def test_cut_back_restores_every_part_and_drops_later_ones(tmp_path: Path) -> None:
    saved = _append(tmp_path, _lines(5), {}, CAP)
    assert [part["count"] for part in saved["Patient"]["parts"]] == [3, 2] and saved["Patient"]["count"] == 5
    later = _append(tmp_path, _lines(5, start=5), saved, CAP)  # written, then the run died before saving
    assert [part["count"] for part in later["Patient"]["parts"]] == [3, 3, 3, 1]
    _cut_back(tmp_path, saved)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["Patient.2.ndjson", "Patient.ndjson"]
    ids = [orjson.loads(line)["id"] for name in ("Patient.ndjson", "Patient.2.ndjson") for line in
           (tmp_path / name).read_bytes().splitlines()]  # fmt: skip
    assert ids == ["0", "1", "2", "3", "4"]
    # an export saved before files were split (no "parts") cuts back its one file
    _cut_back(tmp_path, {"Patient": {"count": 2, "bytes": len(b"".join(_lines(2).lines["Patient"]))}})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["Patient.ndjson"]
    assert len((tmp_path / "Patient.ndjson").read_bytes().splitlines()) == 2


def test_file_names() -> None:
    assert [file_name("Slot", n) for n in (1, 2, 12)] == ["Slot.ndjson", "Slot.2.ndjson", "Slot.12.ndjson"]
    assert [parse_file_name(n) for n in ("Slot.ndjson", "Slot.2.ndjson", "Slot.12.ndjson")] == [
        ("Slot", 1), ("Slot", 2), ("Slot", 12)
    ]  # fmt: skip
    for bad in ("Slot.1.ndjson", "Slot.02.ndjson", "Slot.x.ndjson", "Slot.json", ".ndjson", "Slot.-2.ndjson"):
        assert parse_file_name(bad) is None, bad
