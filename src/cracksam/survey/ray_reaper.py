"""Ends the local Ray processes of a survey whose driver died without stopping them (SIGKILL, OOM).

Ray ties the processes ``ray.init`` starts (GCS, raylet, ...) to their driver with
``PR_SET_PDEATHSIG``, but not the agents the raylet starts (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``, ~100 MB each): they notice the raylet is gone, then wait for the dead GCS
for about a minute before they exit.  So when the engine starts Ray itself, it first starts this
watcher in a session of its own (Ctrl-C and a kill of the terminal's process group miss it) and
marks the Ray processes it starts with an environment variable, :data:`MARKER`, set to a
per-run token: every process Ray starts inherits it, the raylet's agents included.

The mark is read back from ``/proc/<pid>/environ``, the memory a process's environment was
exec'ed with.  Ray's processes rename themselves (``ray::DashboardAgent``) with the
``setproctitle`` bundled in Ray, which by default makes room for the title by writing zeros over
argv and the environment after it, up to the first variable the process has changed itself; the
raylet hands its environment on in an order that changes every run (a hash map), so the mark was
wiped in about half the runs (3 of 5 measured).  ``SPT_NOENV`` tells ``setproctitle`` to leave the
environment alone (titles then fit in argv, which for Ray's processes is long), so it is set for
Ray's processes along with the mark.  A second identification does not need a process's own
environment: while the driver lives, the watcher records the marked processes among the driver's
descendants and every process descended from one (a child may be started with an environment of its
own, as ``ldconfig`` is by ``ctypes.util``).  The raylet's children are orphaned once the raylet is
gone, so this has to be recorded beforehand: a scan of ``/proc/*/stat`` every :data:`POLL_S` seconds.

The watcher reads its stdin, a pipe from the driver.  ``stop`` (after ``ray.shutdown()``) ends it
quietly; end of file without it (the driver died) makes it SIGKILL every process carrying the token
and every recorded descendant of one (checked by start time, so a reused pid is spared) -- never
another run's, never anything else.  Linux only (elsewhere Ray runs a reaper of its own).  Run as a
script, it imports nothing but the standard library, so it starts in milliseconds.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

MARKER = "CRACKSAM_RAY_RUN"
NOENV = "SPT_NOENV"  # setproctitle leaves /proc/<pid>/environ (and so the mark) alone
STOP = b"stop\n"
POLL_S = 2.0  # how often the watcher records the run's processes: ~1 ms of CPU per 100 processes


def _carries(pid: int, entry: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return entry in b"\0" + fh.read() + b"\0"
    except OSError:  # gone, or another user's
        return False


def _entry(token: str) -> bytes:
    return f"\0{MARKER}={token}\0".encode()


def marked(token: str) -> list[int]:
    """The processes whose environment (as they were started) has ``MARKER=token``."""
    entry = _entry(token)
    return [int(name) for name in os.listdir("/proc")
            if name.isdigit() and int(name) != os.getpid() and _carries(int(name), entry)]


def _stat(pid: int) -> tuple[int, int] | None:
    """A live process's parent and start time (clock ticks after boot); None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()  # after the name, which may hold anything
        return None if fields[0] == b"Z" else (int(fields[1]), int(fields[19]))
    except (OSError, IndexError, ValueError):
        return None


def track(token: str, driver: int, ours: dict[int, int]) -> None:
    """Record in ``ours`` (pid: start time) the driver's descendants that carry the token or descend
    from one that does; the driver's other children (this watcher, say) and theirs are left out."""
    children: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := _stat(int(name))) is not None:
            children.setdefault(stat[0], []).append(int(name))
            started[int(name)] = stat[1]
    entry, me = _entry(token), os.getpid()
    todo = [(pid, False) for pid in children.get(driver, [])]
    while todo:
        pid, parent_ours = todo.pop()
        if pid == me:
            continue
        # Read afresh each time: a child forked but not yet exec'ed shows its parent's old environment.
        mine = parent_ours or ours.get(pid) == started[pid] or _carries(pid, entry)
        if mine:
            ours[pid] = started[pid]
        todo.extend((child, mine) for child in children.get(pid, []))


def reap(token: str, ours: dict[int, int] | None = None, rounds: int = 5) -> int:
    """SIGKILL every process marked with ``token``, and those of ``ours`` still running (again, for any
    started meanwhile); how many."""
    killed = 0
    for _ in range(rounds):
        pids = set(marked(token))
        pids.update(pid for pid, start in (ours or {}).items() if (stat := _stat(pid)) and stat[1] == start)
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

    def __init__(self, proc: subprocess.Popen[bytes], token: str, noenv: str | None = None) -> None:
        self.proc = proc
        self.token = token
        self.noenv = noenv  # SPT_NOENV as it was before start(), put back by unmark()

    @classmethod
    def start(cls, poll_s: float = POLL_S) -> Watcher | None:
        """A watcher, and ``MARKER`` (with ``SPT_NOENV``) set in this process's environment for the Ray
        processes about to start; None where it cannot work (not Linux) or cannot start (then Ray runs
        as before)."""
        if not sys.platform.startswith("linux") or not Path("/proc/self/environ").exists():
            return None
        token = uuid.uuid4().hex
        try:
            # The pipe's write end stays in this process only (Python's pipes are not inherited), so
            # its end of file means this process is gone.
            proc = subprocess.Popen([sys.executable, "-I", str(Path(__file__)), token, str(os.getpid()), str(poll_s)],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True, close_fds=True)
        except OSError:
            return None
        noenv = os.environ.get(NOENV)
        os.environ[MARKER] = token
        os.environ[NOENV] = noenv or "1"
        return cls(proc, token, noenv)

    def unmark(self) -> None:
        """Stop marking this process's later children (Ray's own inherit the mark from the raylet)."""
        if os.environ.get(MARKER) == self.token:
            del os.environ[MARKER]
            if self.noenv is None:
                os.environ.pop(NOENV, None)
            else:
                os.environ[NOENV] = self.noenv

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
    token, driver, poll_s = argv[1], int(argv[2]), float(argv[3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it stops Ray itself
    ours: dict[int, int] = {}
    said = b""
    stdin = sys.stdin.buffer.fileno()
    while True:  # until the driver closes the pipe, or dies
        if select.select([stdin], [], [], poll_s)[0]:
            chunk = os.read(stdin, 64)
            if not chunk:
                break
            said += chunk
        elif os.getppid() == driver:  # not yet orphaned (else the pid may be another process's now)
            track(token, driver, ours)
    if said != STOP:
        reap(token, ours)


if __name__ == "__main__":
    main(sys.argv)
