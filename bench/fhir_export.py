# ruff: noqa: S603, S607, S608  (benchmark tooling: SQL from constants, local commands)
"""FHIR bulk export throughput and memory: ours (`server.py export-fhir`) beside a floor.

    python bench/fhir_export.py --scale small|full

The data set is the benchmark's (bench/generate.py: 10k or 100k patients), copied into a database of its own
(`followup_bench_fhir_<n>k`, migrated to head; the shared data sets stay untouched). Exported: the largest
department as a group (Colorectal Surgery and the department below it, 70% of the patients), and the smallest
department (30%), so the peak memory of two sizes can be compared.

* **ours**: `python server.py export-fhir --department ID --out DIR --user admin` in a process of its own on asyncmy:
  the real export (scope, field decision, masking, audit events, progress saved per step, every record kind).
* **floor** (`--floor`, run in a process of its own too): raw SQL over asyncmy in the same keyset steps, the same rows
  (patients with their encrypted numbers decrypted, visits, diagnoses, follow-ups), the same resource counts and
  NDJSON files written with orjson; no scope, decision, audit or progress.

Measured: resources per second (wall clock, the process's whole life: start-up included) and the peak resident
memory of each process (`ru_maxrss` of the child). Results: `bench/results/fhir-<scale>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from common import PYTHON, RESULTS, ROOT, SCALES, database_name, mysql_kwargs  # type: ignore[import-not-found]

BATCH = 200  # FHIR_EXPORT_BATCH's default: both sides read this many patients a step


def copy_name(patients: int) -> str:
    return f"followup_bench_fhir_{patients // 1000}k"


def copy_url(patients: int) -> str:
    kwargs = mysql_kwargs(None)
    auth = f"{kwargs['user']}:{kwargs['password']}" if kwargs["password"] else str(kwargs["user"])
    return f"mysql+asyncmy://{auth}@{kwargs['host']}:{kwargs['port']}/{copy_name(patients)}"


def _mysql_args() -> list[str]:
    kwargs = mysql_kwargs(None)
    args = [f"-h{kwargs['host']}", f"-P{kwargs['port']}", f"-u{kwargs['user']}"]
    return args + ([f"-p{kwargs['password']}"] if kwargs["password"] else [])


def prepare(patients: int) -> None:
    """The benchmark data set (generated when missing), copied once into a database of its own and migrated."""
    source, target = database_name(patients), copy_name(patients)
    exists = subprocess.run(
        ["mariadb", *_mysql_args(), "-N", "-e", f"SHOW DATABASES LIKE '{target}'"], capture_output=True, text=True
    )
    if exists.stdout.strip():
        return
    probe = subprocess.run(
        ["mariadb", *_mysql_args(), "-N", "-e", f"SHOW DATABASES LIKE '{source}'"], capture_output=True, text=True
    )
    if not probe.stdout.strip():
        subprocess.run([PYTHON, str(ROOT / "bench" / "generate.py"), "--patients", str(patients)], check=True)
    print(f"copying {source} into {target}", flush=True)
    subprocess.run(
        ["mariadb", *_mysql_args(), "-e", f"CREATE DATABASE {target} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"],
        check=True,
    )
    dump = subprocess.Popen(["mariadb-dump", *_mysql_args(), "--single-transaction", source], stdout=subprocess.PIPE)
    subprocess.run(["mariadb", *_mysql_args(), target], stdin=dump.stdout, check=True)
    dump.wait()
    env = dict(os.environ, DATABASE_URL=copy_url(patients).replace("asyncmy", "aiomysql"))
    subprocess.run([PYTHON, "server.py", "migrate"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def departments(patients: int) -> tuple[int, int, int, int]:
    """(largest group's department, its patients, smallest department, its patients)."""
    sql = (
        "SELECT d.code, d.id, (SELECT COUNT(*) FROM patient p WHERE p.department_id = d.id "
        "OR p.department_id IN (SELECT c.id FROM department c WHERE c.parent_id = d.id)) "
        f"FROM {copy_name(patients)}.department d WHERE d.code IN ('CRS', 'GI')"
    )
    command = ["mariadb", *_mysql_args(), "-D", copy_name(patients), "-N", "-e", sql]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    found = {code: (int(pk), int(count)) for code, pk, count in (line.split("\t") for line in out.stdout.splitlines())}
    return found["CRS"][0], found["CRS"][1], found["GI"][0], found["GI"][1]


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run a process to its end: wall seconds, CPU seconds (user + system), peak resident memory in KiB, output."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    output = child.stdout.read() if child.stdout else ""
    if status != 0:
        raise SystemExit(f"{command[2]} failed:\n{output[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, output


def count_lines(folder: Path) -> dict[str, int]:
    """Resources per type (a type split over several files: `Patient.ndjson`, `Patient.2.ndjson`, ... summed)."""
    counts: dict[str, int] = {}
    for path in sorted(folder.glob("*.ndjson")):
        kind = path.name.split(".", 1)[0]
        counts[kind] = counts.get(kind, 0) + sum(1 for _ in path.open("rb"))
    return counts


def run_ours(patients: int, department: int, out: Path) -> dict[str, Any]:
    env = dict(os.environ, DATABASE_URL=copy_url(patients), APP_MODE="demo", LOG_LEVEL="WARNING", TERM="dumb")
    seconds, cpu, peak, _ = measured(
        [PYTHON, "server.py", "export-fhir", "--department", str(department), "--out", str(out), "--user", "admin"], env
    )
    counts = count_lines(out)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mib": peak / 1024,
        "resources": sum(counts.values()),
        "by_type": counts,
    }


def run_floor(patients: int, department: int, out: Path) -> dict[str, Any]:
    seconds, cpu, peak, _ = measured(
        [PYTHON, str(Path(__file__)), "--floor", str(patients), "--department", str(department), "--out", str(out)],
        dict(os.environ),
    )
    counts = count_lines(out)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mib": peak / 1024,
        "resources": sum(counts.values()),
        "by_type": counts,
    }


# ---- the floor --------------------------------------------------------------------------------------


async def floor(patients: int, department: int, out: Path) -> None:
    import asyncmy

    sys.path.insert(0, str(ROOT))
    from core.crypto import cipher, configure
    from core.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    configure(settings.data_keys, settings.search_hash_key.get_secret_value())
    crypt = cipher()
    kwargs = mysql_kwargs(None)
    conn = await asyncmy.connect(
        host=kwargs["host"], port=kwargs["port"], user=kwargs["user"], password=kwargs["password"] or "",
        database=copy_name(patients), charset="utf8mb4", autocommit=True,
    )  # fmt: skip
    kinds = ("Patient", "Encounter", "Condition", "CarePlan", "Observation")
    files = {kind: open(out / f"{kind}.ndjson", "wb") for kind in kinds}  # noqa: ASYNC230
    async with conn.cursor() as cursor:
        await cursor.execute("SELECT id FROM department WHERE id = %s OR parent_id = %s", (department, department))
        in_group = [row[0] for row in await cursor.fetchall()]
        marks = ",".join(["%s"] * len(in_group))
        cursor_id = 0
        while True:
            await cursor.execute(
                "SELECT id, name, gender, birth_date, id_number, phone, address FROM patient "
                f"WHERE department_id IN ({marks}) AND voided_at IS NULL AND id > %s ORDER BY id LIMIT %s",
                (*in_group, cursor_id, BATCH),
            )
            rows = await cursor.fetchall()
            if not rows:
                break
            ids = [row[0] for row in rows]
            cursor_id = ids[-1]
            id_marks = ",".join(["%s"] * len(ids))
            lines: dict[str, list[bytes]] = defaultdict(list)
            for pk, name, gender, birth, id_number, phone, address in rows:
                resource_ = {
                    "resourceType": "Patient", "id": str(pk), "name": [{"text": name}], "gender": gender,
                    "birthDate": birth.isoformat() if birth else None,
                    "identifier": [{"value": crypt.decrypt(id_number) if id_number else None}],
                    "telecom": [{"value": crypt.decrypt(phone) if phone else None}], "address": [{"text": address}],
                }  # fmt: skip
                lines["Patient"].append(orjson.dumps(resource_) + b"\n")
            await cursor.execute(
                "SELECT id, patient_id, visit_date, visit_type, chief_complaint FROM visit "
                f"WHERE patient_id IN ({id_marks}) AND voided_at IS NULL ORDER BY visit_date, id",
                ids,
            )
            for pk, pid, day, kind, complaint in await cursor.fetchall():
                resource_ = {"resourceType": "Encounter", "id": str(pk), "subject": {"reference": f"Patient/{pid}"},
                             "period": {"start": day.isoformat()}, "class": {"code": kind},
                             "reasonCode": [{"text": complaint}]}  # fmt: skip
                lines["Encounter"].append(orjson.dumps(resource_) + b"\n")
            await cursor.execute(
                "SELECT id, patient_id, visit_id, icd10_code, icd10_name, tcm_syndrome FROM diagnosis "
                f"WHERE patient_id IN ({id_marks}) AND voided_at IS NULL ORDER BY visit_id, id",
                ids,
            )
            for pk, pid, visit, code, name, tcm in await cursor.fetchall():
                coding = [{"code": code, "display": name}] + ([{"code": tcm}] if tcm else [])
                resource_ = {"resourceType": "Condition", "id": str(pk), "code": {"coding": coding},
                             "subject": {"reference": f"Patient/{pid}"},
                             "encounter": {"reference": f"Encounter/{visit}"}}  # fmt: skip
                lines["Condition"].append(orjson.dumps(resource_) + b"\n")
            await cursor.execute(
                "SELECT id, patient_id, visit_id, protocol_id, due_date, status, pain_score, wexner_score, "
                "satisfaction, bleeding, recurrence FROM follow_up "
                f"WHERE patient_id IN ({id_marks}) AND voided_at IS NULL ORDER BY due_date, id",
                ids,
            )
            plans: dict[tuple[int, int, int], list[dict[str, Any]]] = defaultdict(list)
            for (
                pk,
                pid,
                visit,
                protocol,
                due,
                status,
                pain,
                wexner,
                satisfaction,
                bleeding,
                recurrence,
            ) in await cursor.fetchall():
                if protocol is not None:
                    plans[(pid, visit or 0, protocol)].append({"status": status, "due": due.isoformat(), "id": pk})
                if status == "completed":
                    resource_ = {"resourceType": "Observation", "id": str(pk),
                                 "subject": {"reference": f"Patient/{pid}"},
                                 "component": [{"code": {"text": n}, "value": v} for n, v in (
                                     ("pain", pain), ("wexner", wexner), ("satisfaction", satisfaction),
                                     ("bleeding", bleeding), ("recurrence", recurrence)) if v is not None]}  # fmt: skip
                    lines["Observation"].append(orjson.dumps(resource_) + b"\n")
            for (pid, visit, protocol), activities in plans.items():
                resource_ = {"resourceType": "CarePlan", "id": f"protocol-{pid}-{visit}-{protocol}",
                             "subject": {"reference": f"Patient/{pid}"}, "activity": activities}  # fmt: skip
                lines["CarePlan"].append(orjson.dumps(resource_) + b"\n")
            for kind, written in lines.items():
                files[kind].writelines(written)
    for handle in files.values():
        handle.close()
    await conn.ensure_closed()


def plot(scale: str, results: dict[str, Any]) -> Path:
    """`results/fhir-<scale>.png`: resources per second (wall and per CPU second) and peak memory per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["runs"])
    runs = [results["runs"][name] for name in names]
    colours = ["tab:green" if name.startswith("floor") else "tab:blue" for name in names]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (
        ("resources/s (wall)", [r["resources"] / r["seconds"] for r in runs]),
        ("resources per CPU second", [r["resources"] / r["cpu_seconds"] for r in runs]),
        ("peak RSS (MiB)", [r["peak_rss_mib"] for r in runs]),
    )
    for ax, (title, values) in zip(axes, panels, strict=True):
        ax.bar(range(len(names)), values, color=colours)
        labels = [f"{name}\n({run['patients']:,} patients)" for name, run in zip(names, runs, strict=True)]
        ax.set_xticks(range(len(names)), labels, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle(f"FHIR bulk export, {results['patients']:,} patients (load average {results['load']})", fontsize=10)
    figure.tight_layout()
    path = RESULTS / f"fhir-{scale}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def report(scale: str, results: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"fhir-{scale}.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    lines = [
        f"# FHIR bulk export, {scale} data set ({results['patients']:,} patients)",
        "",
        f"Measured {results['at']}, load average {results['load']} on 2 cores shared with other work: wall-clock "
        "rates depend on that load, CPU seconds (the exporting process's user + system time, start-up included; the "
        "database's own work is not in it) much less. Compare ratios within one run.",
        "",
        "| run | department | patients | resources | wall s | resources/s (wall) | CPU s | resources per CPU s "
        "| peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, run in results["runs"].items():
        lines.append(
            f"| {name} | {run['department']} | {run['patients']:,} | {run['resources']:,} | {run['seconds']:.1f} | "
            f"{run['resources'] / run['seconds']:,.0f} | {run['cpu_seconds']:.1f} | "
            f"{run['resources'] / run['cpu_seconds']:,.0f} | {run['peak_rss_mib']:.0f} |"
        )
    ours, floor_run = results["runs"]["ours, largest"], results["runs"]["floor, largest"]
    wall = ours["resources"] / ours["seconds"] / (floor_run["resources"] / floor_run["seconds"])
    cpu = ours["resources"] / ours["cpu_seconds"] / (floor_run["resources"] / floor_run["cpu_seconds"])
    lines += [
        "",
        f"Ours reaches {wall:.0%} of the floor's wall-clock rate and {cpu:.0%} of its rate per CPU second on the "
        "largest department. Ours does what the floor does not: the caller's scope and field "
        "decision on every value, an audit event per patient, progress saved after every step (one write unit), "
        "every record kind the registry knows (plans, reports, answers, messages, amendments are empty or sparse in "
        "this data set, but each is queried), and the process's start-up (policy load, models) is in its time.",
        "",
        "Resources by type, largest department: "
        + "; ".join(
            f"{kind} {ours['by_type'].get(kind, 0):,} (floor {floor_run['by_type'].get(kind, 0):,})"
            for kind in sorted(set(ours["by_type"]) | set(floor_run["by_type"]))
        )
        + ". A type the floor lacks comes from records it does not read (amendments of the main benchmark's Q5 "
        "writes become Provenance).",
        "",
        f"Memory: ours peaks at {ours['peak_rss_mib']:.0f} MiB exporting {ours['patients']:,} patients and at "
        f"{results['runs']['ours, smallest']['peak_rss_mib']:.0f} MiB exporting "
        f"{results['runs']['ours, smallest']['patients']:,}: it streams (one step of {BATCH} patients in memory).",
    ]
    lines += ["", f"![resources per second and peak memory](fhir-{scale}.png)"]
    (RESULTS / f"fhir-{scale}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot(scale, results)
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--floor", type=int, help=argparse.SUPPRESS)  # the floor's own process
    parser.add_argument("--department", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--render", action="store_true", help="re-render results/fhir-<scale>.md and .png from .json")
    args = parser.parse_args()
    if args.render:
        report(args.scale, orjson.loads((RESULTS / f"fhir-{args.scale}.json").read_bytes()))
        return
    if args.floor:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        asyncio.run(floor(args.floor, args.department, Path(args.out)))
        return
    patients = SCALES[args.scale]
    prepare(patients)
    largest, largest_count, smallest, smallest_count = departments(patients)
    runs: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="fhir-bench-"))
    try:
        for name, runner, department, count in (
            ("floor, largest", run_floor, largest, largest_count),
            ("ours, largest", run_ours, largest, largest_count),
            ("ours, smallest", run_ours, smallest, smallest_count),
        ):
            print(f"{name}: department {department}, {count} patients", flush=True)
            runs[name] = {"department": department, "patients": count, **runner(patients, department, work / name)}
            shutil.rmtree(work / name, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    at = datetime.now(UTC).isoformat(timespec="seconds")
    report(args.scale, {"scale": args.scale, "patients": patients, "at": at, "load": load, "runs": runs})


if __name__ == "__main__":
    main()
