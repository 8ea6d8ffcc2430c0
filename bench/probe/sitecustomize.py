# ruff: noqa
"""SQLite probe for bench/seal_probe.py (issue 23): loaded by every Python process started with this directory on
PYTHONPATH and SQLITE_PROBE_DIR set (the server and its sealer child alike). Not part of the app.

Per SQLite connection (found at pool checkout, through aiosqlite to the sqlite3* handle):
* a busy handler that does exactly what SQLite's default does for busy_timeout=10000 (sleeps 1, 2, 5, 10, 15,
  20, 25, 25, 25, 50, 50, 100... ms) and records each call (time, connection, count, sleep);
* a WAL hook that does exactly what the default autocheckpoint does (a PASSIVE checkpoint once the WAL has
  1000 frames or more, or the connection's wal_autocheckpoint setting) and times it;
* a profile callback timing every statement (wall ns inside sqlite3_step, busy waits and commit fsync included).
In the server process, a 1 ms call_later ticker records the event loop's lateness.
Everything is dumped as JSON to SQLITE_PROBE_DIR/<role>-<pid>.json every second and at exit.
"""

import os

if os.environ.get("SQLITE_PROBE_DIR"):
    import asyncio
    import ctypes
    import json
    import multiprocessing
    import threading
    import time

    _DIR = os.environ["SQLITE_PROBE_DIR"]
    import sys as _sys

    def _role():
        argv = getattr(_sys, "argv", []) or []
        if multiprocessing.parent_process() is not None or not (argv and argv[0].endswith("server.py")):
            return "child"
        return "server"

    _lib = ctypes.CDLL("libsqlite3.so.0")
    _BUSY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
    _WAL = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int)
    _TRACE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
    _lib.sqlite3_busy_handler.argtypes = [ctypes.c_void_p, _BUSY, ctypes.c_void_p]
    _lib.sqlite3_wal_hook.argtypes = [ctypes.c_void_p, _WAL, ctypes.c_void_p]
    _lib.sqlite3_wal_hook.restype = ctypes.c_void_p
    _lib.sqlite3_trace_v2.argtypes = [ctypes.c_void_p, ctypes.c_uint, _TRACE, ctypes.c_void_p]
    _lib.sqlite3_wal_checkpoint_v2.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_int),
    ]
    _lib.sqlite3_sql.argtypes = [ctypes.c_void_p]
    _lib.sqlite3_sql.restype = ctypes.c_char_p
    _EXEC_CB = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p)
    )
    _lib.sqlite3_exec.argtypes = [ctypes.c_void_p, ctypes.c_char_p, _EXEC_CB, ctypes.c_void_p, ctypes.c_void_p]

    def _pragma(db, sql):
        found = []

        def row(_arg, argc, argv, _cols):
            found.append(argv[0])
            return 0

        _lib.sqlite3_exec(db, sql, _EXEC_CB(row), None, None)
        return found[0].decode() if found and found[0] is not None else None

    _DELAYS = (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100)
    _TOTALS = (0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228)
    _TIMEOUT = 10000
    AUTOCHECKPOINT = int(os.environ.get("SQLITE_PROBE_AUTOCHECKPOINT", "1000"))

    data = {"role": "?", "pid": os.getpid(), "conns": {}, "busy": [], "ckpt": [], "stmt": {}, "slow": [], "lag": []}
    _keep = []
    _limits = {}
    _handles = {}

    def _busy(arg, count):
        if count < 12:
            delay, prior = _DELAYS[count], _TOTALS[count]
        else:
            delay, prior = _DELAYS[11], _TOTALS[11] + _DELAYS[11] * (count - 11)
        if prior + delay > _TIMEOUT:
            delay = _TIMEOUT - prior
            if delay <= 0:
                return 0
        data["busy"].append((time.time(), arg or 0, count, delay))
        time.sleep(delay / 1000)
        return 1

    def _wal(arg, db, name, frames):
        limit = _limits.get(arg or 0, AUTOCHECKPOINT)
        if limit > 0 and frames >= limit:
            log, done = ctypes.c_int(), ctypes.c_int()
            started = time.time()
            t0 = time.perf_counter()
            rc = _lib.sqlite3_wal_checkpoint_v2(db, name, 0, ctypes.byref(log), ctypes.byref(done))
            data["ckpt"].append((started, arg or 0, frames, time.perf_counter() - t0, log.value, done.value, rc))
        return 0

    def _trace(kind, ctx, stmt, x):
        ns = ctypes.c_int64.from_address(x).value
        sql = (_lib.sqlite3_sql(stmt) or b"").decode(errors="replace")
        key = " ".join(sql.split()[:3])[:40]
        entry = data["stmt"].setdefault(key, [0, 0, 0])  # count, total ns, max ns
        entry[0] += 1
        entry[1] += ns
        entry[2] = max(entry[2], ns)
        if ns >= 2_000_000:
            data["slow"].append((time.time(), ctx or 0, ns / 1e6, key))
        return 0

    _busy_cb, _wal_cb, _trace_cb = _BUSY(_busy), _WAL(_wal), _TRACE(_trace)

    def _handle(dbapi_connection):
        raw = getattr(getattr(dbapi_connection, "_connection", None), "_connection", None)
        if raw is None:
            return None
        return ctypes.c_void_p.from_address(id(raw) + 16).value  # pysqlite_Connection.db

    def _checkout(dbapi_connection, record, _proxy):
        if not data.get("ticking") and _role() == "server":
            data["ticking"] = True
            try:
                _start_ticker(asyncio.get_running_loop())
            except RuntimeError:
                data["ticking"] = False
        if record.info.get("probe"):
            return
        record.info["probe"] = True
        db = _handle(dbapi_connection)
        if not db:
            return
        autocommit = getattr(dbapi_connection, "isolation_level", "?") is None
        limit = _pragma(db, b"PRAGMA wal_autocheckpoint")  # the connection's own setting, kept by our hook
        _limits[db] = int(limit) if limit is not None else AUTOCHECKPOINT
        sync = _pragma(db, b"PRAGMA synchronous")
        data["conns"][str(db)] = {
            "autocommit": autocommit,
            "autocheckpoint": _limits[db],
            "synchronous": sync,
            "pool": id(record._pool) if hasattr(record, "_pool") else 0,
        }
        _lib.sqlite3_busy_handler(db, _busy_cb, db)
        _lib.sqlite3_wal_hook(db, _wal_cb, db)
        _lib.sqlite3_trace_v2(db, 0x02, _trace_cb, db)

    def _dump():
        data["role"] = _role()
        if data["role"] == "child" and not data["conns"]:
            return  # not the sealer (resource tracker)
        path = os.path.join(_DIR, f"{data['role']}-{os.getpid()}.json")
        snapshot = dict(data)
        with open(path + ".tmp", "w") as f:
            json.dump({k: (list(v) if isinstance(v, list) else v) for k, v in snapshot.items()}, f)
        os.replace(path + ".tmp", path)

    def _dumper():
        while True:
            time.sleep(1.0)
            try:
                _dump()
            except Exception:
                pass

    threading.Thread(target=_dumper, daemon=True, name="probe-dump").start()
    import atexit

    atexit.register(_dump)

    def _install_pool_event():
        from sqlalchemy import event
        from sqlalchemy.pool import Pool

        event.listen(Pool, "checkout", _checkout)

    # sqlalchemy may not be imported yet: hook its import lazily through a meta path finder
    import importlib.abc
    import sys

    class _Hook(importlib.abc.MetaPathFinder):
        done = False

        def find_spec(self, name, path, target=None):
            if name == "sqlalchemy.pool" and not self.done:
                self.done = True

                def later():
                    _install_pool_event()

                _pending.append(later)
            return None

    _pending = []
    sys.meta_path.insert(0, _Hook())

    _orig_connect_engine = None

    # install once sqlalchemy.pool is fully imported: patch create_async_engine's module import via a post-import check
    def _poll():
        while True:
            if "sqlalchemy.pool" in sys.modules and "sqlalchemy.event" in sys.modules and _pending:
                try:
                    mod = sys.modules["sqlalchemy.pool"]
                    if hasattr(mod, "Pool"):
                        _pending.pop()()
                        return
                except Exception:
                    pass
            time.sleep(0.005)

    threading.Thread(target=_poll, daemon=True, name="probe-install").start()

    def _start_ticker(loop):
        def tick(due):
            late = loop.time() - due
            if late >= 0.002:
                data["lag"].append((time.time(), late))
            data["ticks"] = data.get("ticks", 0) + 1
            loop.call_later(0.001, tick, loop.time() + 0.001)

        loop.call_soon(tick, loop.time())

    if os.environ.get("SQLITE_PROBE_NO_TURNS") == "1":
        # A/B: the code before the write turns (core.db.WriteTurns disabled), in the same run
        import importlib.machinery

        class _TurnsOff(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name != "core.db":
                    return None
                sys.meta_path.remove(self)
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                original = spec.loader.exec_module

                def exec_module(module):
                    original(module)
                    init = module.WriteTurns.__init__

                    def off(self, enabled, *rest):
                        init(self, False, *rest)

                    module.WriteTurns.__init__ = off
                    module._sqlite_no_autocheckpoint = lambda *args: None  # autocheckpoint as before

                spec.loader.exec_module = exec_module
                return spec

        sys.meta_path.insert(0, _TurnsOff())
