"""The operator's command line, run as `python server.py <command>` (server.py hands its arguments here).

python server.py migrate              apply migrations, built-in roles, new default-policy lines and menu entries
python server.py seed-demo            demo departments and accounts (demo mode only)
python server.py create-admin NAME    an administrator account (password asked, or --password-env)
python server.py load-documents --client mini-program clients/mini-program/manifest.json
                                      store a client's trusted (persisted) documents
python server.py rotate-keys          re-encrypt patient identity and phone numbers under the newest key
python server.py verify-audit [--no-seal]
                                      walk the audit hash chain; exit 1 at the first broken link
python server.py archive-audit --before YYYY-MM-DD --out FILE
                                      move old audit events (with their hashes) to a JSON Lines file
python server.py export-fhir --department ID --out DIR [--user NAME] [--type T,...] [--since INSTANT]
                                      a FHIR bulk export of a department, as that account, with a progress bar
python server.py serve [--workers N]  run uvicorn (serving server.py's app)
python server.py backup --out DIR     a consistent backup (with checksums) while the server serves
python server.py restore --from DIR   load a backup into an empty database, checksums checked first
"""

# A top-level module beside server.py: nothing under schema/, resolvers/, policies/, models/ or core/ imports it
# (tests/test_layers.py). server.py's `__main__` hands its arguments to `main`.
from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path

from core import logredact, speedups
from core.crypto import configure as configure_cipher
from core.db import Database
from core.settings import Settings, get_settings
from policies.bootstrap import ensure_builtin
from policies.store import PolicyStore
from resolvers.data.context import Services
from resolvers.data.notify import Notifier
from resolvers.demo.seed import seed_demo

ROOT = Path(__file__).resolve().parent


def run_migrations(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")  # one head: tests/test_migrations.py keeps it so


async def _bootstrap(settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        return await ensure_builtin(db)
    finally:
        await db.dispose()


def cmd_migrate(settings: Settings) -> None:
    run_migrations(settings.database_url)
    added = asyncio.run(_bootstrap(settings))
    print(f"migrated; {added} new default-policy lines")


def cmd_seed_demo(settings: Settings) -> None:
    if settings.app_mode != "demo":
        raise SystemExit("seed-demo runs in demo mode only (APP_MODE=demo)")

    async def seed() -> bool:
        db = Database(settings.database_url)
        try:
            return await seed_demo(db, password=settings.demo_password.get_secret_value())
        finally:
            await db.dispose()

    print("demo data seeded" if asyncio.run(seed()) else "demo data already present")


def cmd_create_admin(settings: Settings, username: str, password_env: str | None) -> None:
    from core.errors import AppError
    from core.security import check_password_policy
    from models.role import DataScope
    from policies.roles import OPERATOR_ROLE
    from policies.store import AUTHENTICATED
    from resolvers.data.context import Context, Principal
    from resolvers.user import NewUser, create_user

    class OperatorPrincipal(Principal):
        """The command line acts with the admin role itself, with no user behind it (the event records no actor)."""

        @property
        def schema_roles(self) -> frozenset[str]:
            return frozenset({AUTHENTICATED, *self.role_keys})

    if password_env and not os.environ.get(password_env):
        raise SystemExit(f"create-admin: the environment variable {password_env} is not set or empty")
    password = os.environ.get(password_env, "") if password_env else getpass.getpass("Password: ")

    async def create() -> str:
        db = Database(settings.database_url)
        policy = PolicyStore(db)
        try:
            await policy.load()
            services = Services(settings=settings, db=db, policy=policy, notifier=Notifier())
            principal = OperatorPrincipal(role_keys=(OPERATOR_ROLE,), data_scope=DataScope.ALL)
            ctx = Context(services=services, principal=principal, ip="cli")
            user = await create_user(
                ctx,
                NewUser(
                    username=username,
                    display_name=username,
                    password=password,
                    role_keys=[OPERATOR_ROLE],
                    must_change_password=False,
                ),
            )
            return user.username or username
        finally:
            await db.dispose()

    try:
        check_password_policy(password, username=username, min_length=settings.password_min_length)
        created = asyncio.run(create())
    except AppError as error:
        raise SystemExit(f"create-admin refused: {error.message}") from None
    print(f"administrator {created} created")


def cmd_load_documents(settings: Settings, client: str, manifest_path: str, replace: bool) -> None:
    """Store a client's trusted documents (a manifest from clients/build_manifest.py) in the database."""
    import json

    from schema.engine.persisted import store_documents

    try:
        manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SystemExit(f"cannot read {manifest_path}: {error}") from None
    if not isinstance(manifest, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in manifest.items()
    ):
        raise SystemExit(f"{manifest_path} is not a manifest (an object of sha256 -> document)")

    where = _database_named(settings.database_url)

    async def load() -> tuple[int, int, int]:
        db = Database(settings.database_url)
        try:
            return await store_documents(db, client, manifest, replace=replace)
        finally:
            await db.dispose()

    try:
        added, unchanged, removed = asyncio.run(load())
    except ValueError as error:
        raise SystemExit(f"manifest refused: {error}") from None
    except Exception as error:  # the database: unreachable, or not migrated (one line, never the statement)
        raise SystemExit(
            f"load-documents: cannot store documents in {where} ({type(error).__name__}); "
            "is DATABASE_URL right, and has `python server.py migrate` run?"
        ) from None
    print(f"{client}: {added} documents added, {unchanged} already present, {removed} removed ({where})")


def _database_named(database_url: str) -> str:
    """The database a command will use, as it can be printed (no password); an SQLite file that does not exist
    is refused first, so a mistyped URL leaves no empty database behind."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        if not path.exists():
            raise SystemExit(
                f"load-documents: no database at {path} (DATABASE_URL={url.render_as_string(hide_password=True)}); "
                "run `python server.py migrate` first"
            )
    return url.render_as_string(hide_password=True)


def cmd_rotate_keys(settings: Settings) -> None:
    from resolvers.data.keys import rotate_patient_keys

    async def rotate() -> int:
        db = Database(settings.database_url)
        try:
            return await rotate_patient_keys(db)
        finally:
            await db.dispose()

    configure_cipher(settings.data_keys, settings.search_hash_key.get_secret_value())
    speedups.configure(
        projection=settings.projection, prefetch=settings.prefetch, statement_reuse=settings.statement_reuse
    )
    print(f"re-encrypted {asyncio.run(rotate())} patient rows under the newest key")


def cmd_verify_audit(settings: Settings, seal: bool) -> None:
    """Walk the audit hash chain (after sealing pending events unless --no-seal); exit 1 at a broken link."""
    from resolvers.audit.chain import seal_pending, verify_chain

    async def verify() -> tuple[int, str, bool]:
        db = Database(settings.database_url)
        try:
            sealed = await seal_pending(db, full=True) if seal else 0
            result = await verify_chain(db)
            return sealed, result.report(), result.ok
        finally:
            await db.dispose()

    sealed, report, ok = asyncio.run(verify())
    if sealed:
        print(f"sealed {sealed} pending events")
    print(report)
    if not ok:
        raise SystemExit(1)


def cmd_archive_audit(settings: Settings, before: str, out: str) -> None:
    """Move sealed events older than a date (midnight in the clinic's zone) to a JSON Lines file."""
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from resolvers.audit.chain import AuditChainError, archive_events

    try:
        cut = datetime.combine(date.fromisoformat(before), datetime.min.time(), tzinfo=ZoneInfo(settings.clinic_tz))
    except ValueError:
        raise SystemExit(f"archive-audit: --before {before!r} is not a date (YYYY-MM-DD)") from None

    async def archive() -> int:
        db = Database(settings.database_url)
        try:
            return (await archive_events(db, before=cut, out=Path(out))).count
        finally:
            await db.dispose()

    try:
        count = asyncio.run(archive())
    except AuditChainError as error:
        raise SystemExit(f"archive-audit refused: {error}") from None
    print(f"archived {count} events to {out}" if count else f"no sealed events before {before}: nothing archived")


def cmd_export_fhir(settings: Settings, args: argparse.Namespace) -> None:
    """The bulk export of resolvers/fhir/ in the foreground: the same steps, scope, masking and audit as the job,
    as the named account, its files in --out with a manifest.json."""
    import orjson
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from sqlalchemy import select

    from core.errors import AppError
    from models.fhir import ExportLevel
    from models.user import User
    from resolvers.data.context import Context
    from resolvers.data.principal import principal_of_account
    from resolvers.fhir.export import ExportRequest, kick_off, manifest
    from resolvers.fhir.jobs import fail, save_progress
    from resolvers.fhir.runner import run_export

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"export-fhir: {out} is not empty")
    department = args.department
    where = str(out.resolve())

    async def export() -> dict[str, object]:
        db = Database(settings.database_url)
        policy = PolicyStore(db)
        try:
            await policy.load()
            services = Services(settings=settings, db=db, policy=policy, notifier=Notifier())
            async with db.session() as session:
                found = (
                    await session.execute(select(User.id).where(User.username == args.user))  # type: ignore[call-overload]
                ).scalar_one_or_none()
            if found is None:
                raise SystemExit(f"export-fhir: no account {args.user}")
            principal = await principal_of_account(services, user_id=found)
            ctx = Context(services=services, principal=principal, ip="cli", user_agent="server.py export-fhir")
            request = ExportRequest(
                level=ExportLevel.GROUP,
                department_id=int(department),
                types=args.type,
                since=args.since,
                output_format=None,
                request_url=f"server.py export-fhir --department {department}",
            )
            row = await kick_off(ctx, request, command_line=True)
            with Progress(
                TextColumn("[bold]FHIR export"), BarColumn(), MofNCompleteColumn(), TextColumn("patients"),
                TimeRemainingColumn(),
            ) as bar:  # fmt: skip
                task = bar.add_task("export", total=None)
                try:
                    await run_export(
                        services,
                        row,
                        save=save_progress,
                        folder=out,
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                    )
                except BaseException as error:
                    await fail(ctx, row.id, f"the command line stopped ({type(error).__name__})")
                    raise
            return manifest(row, where)
        finally:
            await db.dispose()

    try:
        result = asyncio.run(export())
    except AppError as error:
        raise SystemExit(f"export-fhir refused: {error.message}") from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    files = ", ".join(f"{item['type']} {item['count']}" for item in result["output"])  # type: ignore[attr-defined]
    print(f"exported to {out}: {files or 'nothing'}")


def cmd_serve(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    from schema.engine.door import AdmissionProtocol
    from schema.engine.shutdown import uvicorn_wait

    if workers > 1 and not settings.redis_url:
        raise SystemExit(
            "refusing --workers > 1 without REDIS_URL: sessions, lockouts and policy changes must be shared"
        )
    uvicorn.run(
        "server:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,  # the app reads X-Forwarded-For itself, from trusted proxies only
        access_log=False,  # query strings (GET queries, variables) stay out of logs
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=uvicorn_wait(settings),  # SIGTERM: schema/engine/shutdown.py
        timeout_keep_alive=settings.http_keep_alive_seconds,
        http=AdmissionProtocol,  # httptools, refusing under overload before a request goes in: schema/engine/door.py
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="server.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply migrations and seed built-in roles and policy")
    commands.add_parser("seed-demo", help="seed demo data (demo mode only)")
    admin = commands.add_parser("create-admin", help="create an administrator account")
    admin.add_argument("username")
    admin.add_argument("--password-env", help="read the password from this environment variable")
    documents = commands.add_parser("load-documents", help="store a client's trusted documents (manifest.json)")
    documents.add_argument("--client", required=True, help="e.g. mini-program")
    documents.add_argument("manifest", help="a manifest built by clients/build_manifest.py")
    documents.add_argument("--replace", action="store_true", help="remove this client's documents not in the file")
    commands.add_parser("rotate-keys", help="re-encrypt patient identity/phone numbers under the newest key")
    verify = commands.add_parser("verify-audit", help="walk the audit hash chain and report the first broken link")
    verify.add_argument("--no-seal", action="store_true", help="do not seal pending events first")
    archive = commands.add_parser("archive-audit", help="move old audit events to a JSON Lines file")
    archive.add_argument("--before", required=True, help="YYYY-MM-DD: events before this day (clinic time zone)")
    archive.add_argument("--out", required=True, help="the archive file to write (never overwritten)")
    commands.add_parser("export-schema", help="each role's schema as SDL (clients/schema/): --all --out DIR [--check]")
    fhir = commands.add_parser("export-fhir", help="a FHIR bulk export of a department into a directory")
    fhir.add_argument("--department", required=True, help="the department's number")
    fhir.add_argument("--out", required=True, help="an empty or new directory for the NDJSON files")
    fhir.add_argument("--user", default="admin", help="the account whose scope and masking apply (default admin)")
    fhir.add_argument("--type", help="_type: resource types, comma-separated")
    fhir.add_argument("--since", help="_since: an instant with its zone")
    backup = commands.add_parser("backup", help="a consistent backup of the database, with checksums")
    backup.add_argument("--out", required=True, help="a new or empty directory")
    restore = commands.add_parser("restore", help="load a backup into an empty database (DATABASE_URL)")
    restore.add_argument("--from", dest="source", required=True, help="the backup's directory")
    serve = commands.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1)
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["export-schema"]:  # needs no settings or database: the default policy and the types
        from schema.export import main as export_main

        raise SystemExit(export_main(given[1:]))
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except ValueError as error:
        raise SystemExit(f"configuration refused: {error}") from None
    logredact.install(logredact.settings_secrets(settings))
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "migrate":
        cmd_migrate(settings)
    elif args.command == "seed-demo":
        cmd_seed_demo(settings)
    elif args.command == "create-admin":
        cmd_create_admin(settings, args.username, args.password_env)
    elif args.command == "load-documents":
        cmd_load_documents(settings, args.client, args.manifest, args.replace)
    elif args.command == "rotate-keys":
        cmd_rotate_keys(settings)
    elif args.command == "verify-audit":
        cmd_verify_audit(settings, seal=not args.no_seal)
    elif args.command == "archive-audit":
        cmd_archive_audit(settings, args.before, args.out)
    elif args.command == "export-fhir":
        cmd_export_fhir(settings, args)
    elif args.command in ("backup", "restore"):
        from cli_backup import cmd_backup, cmd_restore

        if args.command == "backup":
            cmd_backup(settings, args.out)
        else:
            cmd_restore(settings, args.source)
    elif args.command == "serve":
        cmd_serve(settings, args.host, args.port, args.workers)
