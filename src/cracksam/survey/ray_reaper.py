"""Ends the local Ray processes of a survey whose driver died without stopping them (SIGKILL, OOM).

Ray ties the processes ``ray.init`` starts (GCS, raylet, ...) to their driver with
``PR_SET_PDEATHSIG``, but not the agents the raylet starts (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``, ~100 MB each): they notice the raylet is gone, then wait for the dead GCS
for about a minute before they exit.  So when the engine starts Ray itself, it first starts this
watcher in a session of its own (Ctrl-C and a kill of the terminal's process group miss it) and
marks the Ray processes it starts with an environment variable, :data:`MARKER`, set to a
per-run token: every process Ray starts inherits it, the raylet's agents included.

The watcher reads its stdin, a pipe from the driver.  ``stop`` (after ``ray.shutdown()``) ends it
quietly; end of file without it (the driver died) makes it SIGKILL every process carrying the
token, found through ``/proc/<pid>/environ`` -- never another run's, never anything unmarked.
Linux only (elsewhere Ray runs a reaper of its own).  Run as a script, it imports nothing but the
standard library, so it starts in milliseconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

MARKER = "CRACKSAM_RAY_RUN"
STOP = b"stop\n"


def marked(token: str) -> list[int]:
    """The processes whose environment (as they were started) has ``MARKER=token``."""
    entry = f"\0{MARKER}={token}\0".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                environ = b"\0" + fh.read() + b"\0"
        except OSError:  # gone, or another user's
            continue
        if entry in environ:
            found.append(int(name))
    return found


def reap(token: str, rounds: int = 5) -> int:
    """SIGKILL every process marked with ``token`` (again, for any started meanwhile); how many."""
    killed = 0
    for _ in range(rounds):
        pids = marked(token)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        if not pids:
            break
        time.sleep(0.1)
    return killed


class Watcher:
    """The driver's side: :meth:`start` before ``ray.init``, :meth:`unmark` after it, :meth:`stop` at the end."""

    def __init__(self, proc: subprocess.Popen[bytes], token: str) -> None:
        self.proc = proc
        self.token = token

    @classmethod
    def start(cls) -> Watcher | None:
        """A watcher, and ``MARKER`` set in this process's environment for the Ray processes about to
        start; None where it cannot work (not Linux) or cannot start (then Ray runs as before)."""
        if not sys.platform.startswith("linux") or not Path("/proc/self/environ").exists():
            return None
        token = uuid.uuid4().hex
        try:
            # The pipe's write end stays in this process only (Python's pipes are not inherited), so
            # its end of file means this process is gone.
            proc = subprocess.Popen([sys.executable, "-I", str(Path(__file__)), token], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                    close_fds=True)
        except OSError:
            return None
        os.environ[MARKER] = token
        return cls(proc, token)

    def unmark(self) -> None:
        """Stop marking this process's later children (Ray's own inherit the mark from the raylet)."""
        if os.environ.get(MARKER) == self.token:
            del os.environ[MARKER]

    def stop(self, kill: bool = False) -> None:
        """End the watcher: quietly, or (``kill``) ending the marked processes first, as if we had died."""
        self.unmark()
        stdin = self.proc.stdin
        try:
            if stdin is not None:
                if not kill:
                    stdin.write(STOP)
                stdin.close()
        except OSError:  # the watcher is gone already
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main(argv: list[str]) -> None:
    token = argv[1]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it stops Ray itself
    said = sys.stdin.buffer.read()  # until the driver closes the pipe, or dies
    if said != STOP:
        reap(token)


if __name__ == "__main__":
    main(sys.argv)
