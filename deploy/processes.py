"""Processes of our own for the loopback deployment (deploy/cluster.py): started in a session of their own,
stopped with SIGTERM (then SIGKILL), or killed outright as a crash would end them; and free ports to give them."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Exited(RuntimeError):
    """A process of ours ended while we waited for it."""


def wait_until(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exited:
            raise
        except Exception:  # noqa: S110 - not answering yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready within {timeout:g} s")


# mariadbd drops to this account (it owns the data directories): the rsync state transfer's daemon then runs as
# it too and can write the joiner's directory (as root it would switch to `nobody`).
DB_OS_USER = "mysql"


def own(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    shutil.chown(path, DB_OS_USER, DB_OS_USER)


@dataclass
class Process:
    """One child process of ours: started, stopped (SIGTERM, then SIGKILL) or killed outright."""

    name: str
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    session: int | None = None  # the session id of the process last killed

    def spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - our own command lines
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
            )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None

    def kill(self) -> None:
        """SIGKILL, as a crash would end it (only this process: its pid, which we started; what it started is left
        to notice on its own, as after a real crash: `survivors` tells)."""
        if self.popen is not None and self.popen.poll() is None:
            self.session = self.popen.pid  # started in a session of its own: its children share the id
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()
        self.popen = None

    def survivors(self) -> list[int]:
        """Processes still running in the session of the one last killed (its children: an audit sealer)."""
        if self.session is None:
            return []
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            if fields[0] not in ("Z", "X") and int(fields[3]) == self.session:  # state, ..., session id
                found.append(int(stat.parent.name))
        return found
