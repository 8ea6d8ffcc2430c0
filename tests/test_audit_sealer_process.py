"""The audit sealer's process ends with its server's, even when the server is killed without a word.

The sealer seals in a child process (resolvers/audit/sealer.py). A server killed with SIGKILL (or by the kernel's
out-of-memory killer) cannot tell it to stop, and the pool's pipes never report the server gone: before, the child
lived on as an orphan with its database connections open (make cluster-test left one behind after each instance
it killed). Here a real server-side Sealer runs in a process of its own, which is then killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARENT = textwrap.dedent(
    """
    import asyncio, sys
    from core.db import Database
    from resolvers.audit.sealer import Sealer

    async def main() -> None:
        sealer = Sealer(Database(sys.argv[1]), interval=60.0)
        await sealer.start()  # spawns the child and opens its connections
        print(*sealer._pool._processes, flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie left for a reaper that never reaps)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_sealer_child_ends_when_its_server_is_killed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sealer.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, url], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    children: list[int] = []
    try:
        assert parent.stdout is not None
        children += [int(pid) for pid in parent.stdout.readline().split()]
        assert len(children) == 1 and _alive(children[0]), "the sealer's child was not started"
        time.sleep(0.5)
        assert _alive(children[0]), "the child must live as long as its server"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(children[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(children[0]), "the sealer's child outlived its killed server"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
