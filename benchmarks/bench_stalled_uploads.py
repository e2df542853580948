"""One client's stalled uploads against another client's photo (issue 28, finding 7), on loopback.

The service runs in this process (:class:`~cracksam.service.server.ThreadedServer`) with its
default limits, serving a model-free backend that answers zeros: the figure is about how uploads
are admitted and freed, not about inference, and it keeps the run cheap on a shared machine.
``--stalled`` connections from 127.0.0.1 declare the issue's 5 x 50 MiB + (6 MiB - 1) and send no
body; then one photo (a 1920x1080 JPEG) is posted from 127.0.0.2.  Reported: what the stalled
connections were answered and when, the upload bytes held while they stall, the other client's
status and latency, and when the held bytes were back to 0.

It runs twice: ``after`` with the defaults (each address holds at most ``client_upload_share`` of
the budget, a body idle for ``upload_idle_timeout_s`` is answered 408), and ``before`` with
``client_upload_share=1`` and the idle timeout as long as the request's 60 s (how the service
behaved when the issue was filed; skip it with ``--no-before``: it waits a minute).

    python benchmarks/bench_stalled_uploads.py [--stalled 6] [--no-before] [--no-write]

Results go to ``benchmarks/results/stalled_uploads.json`` and the ``bench_stalled_uploads``
section of ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_service_faults import photo  # noqa: E402
from common import command_line, machine, today, write_section  # noqa: E402

from cracksam.inference.predictor import Predictor  # noqa: E402
from cracksam.service.app import create_app  # noqa: E402
from cracksam.service.server import ThreadedServer  # noqa: E402
from cracksam.service.settings import MIB, ServiceSettings  # noqa: E402

RESULTS_JSON = Path(__file__).parent / "results" / "stalled_uploads.json"
SIZES = [50 * MIB] * 5 + [6 * MIB - 1]  # the six connections


class ZeroBackend:
    """Answers "no crack" at once: the service's own work (upload, decode, encode) is what is timed."""

    name, precision, image_size = "zeros", "fp32", 448

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((x.shape[0], 2, *x.shape[2:]), np.float32)


def other_address() -> str:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return "127.0.0.2"
    except OSError:  # not a local address here (macOS): the other client shares the stalled one's address
        return "127.0.0.1"


def _stall(port: int, size: int, t0: float, out: list[dict[str, Any]]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(f"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                     f"Content-Length: {size}\r\n\r\n".encode())
        try:
            answer = sock.recv(4096)
        except OSError:
            answer = b""
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "closed"
    error = answer.partition(b'"error":"')[2].partition(b'"')[0].decode()
    out.append({"declared_mib": round(size / MIB, 2), "status": status, "error": error,
                "answered_after_s": round(time.monotonic() - t0, 3)})


def scenario(settings: ServiceSettings, stalled: int, jpeg: bytes, source: str) -> dict[str, Any]:
    app = create_app(settings, predictor=Predictor(ZeroBackend(), mode="resize"))
    state = app.state.service
    with ThreadedServer(app, settings=settings) as server:
        t0 = time.monotonic()
        answers: list[dict[str, Any]] = []
        threads = [threading.Thread(target=_stall, args=(server.port, SIZES[k % len(SIZES)], t0, answers))
                   for k in range(stalled)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the refused ones are answered at once; the admitted ones now hold their bytes
        held = state.uploads.used
        with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=120) as client:
            t1 = time.perf_counter()
            r = client.post(f"http://127.0.0.1:{server.port}/v1/segment?mask=none", content=jpeg,
                            headers={"content-type": "image/jpeg"})
            other = {"status": r.status_code, "seconds": round(time.perf_counter() - t1, 3),
                     "error": "" if r.status_code == 200 else r.json().get("error", "")}
        freed_s = None
        while time.monotonic() - t0 < settings.timeout_s + 30:
            if state.uploads.used == 0:
                freed_s = round(time.monotonic() - t0, 3)
                break
            time.sleep(0.01)
        for t in threads:
            t.join(30)
    answers.sort(key=lambda a: a["answered_after_s"])
    return {"client_upload_share": settings.client_upload_share,
            "upload_idle_timeout_s": settings.upload_idle_timeout_s,
            "held_mib_while_stalled": round(held / MIB, 2), "budget_mib": round(settings.inflight_upload_bytes / MIB),
            "other_client": other, "stalled_answers": answers, "held_bytes_freed_after_s": freed_s}


def _stalled_summary(run: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for a in run["stalled_answers"]:
        key = f"{a['status']} {a['error']}".strip()
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n}× {k}" for k, n in counts.items())


def markdown(doc: dict[str, Any]) -> str:
    rows = []
    for name in ("before", "after"):
        run = doc["runs"].get(name)
        if run is None:
            continue
        other = run["other_client"]
        rows.append(f"| {name}: share {run['client_upload_share']:g}, idle timeout {run['upload_idle_timeout_s']:g} s "
                    f"| {run['held_mib_while_stalled']} of {run['budget_mib']} MiB | {_stalled_summary(run)} "
                    f"| {' '.join(str(v) for v in (other['status'], other['error']) if v)} in {other['seconds']} s "
                    f"| {run['held_bytes_freed_after_s']} s |")
    return ("## Service reliability under faults: one client's stalled uploads (`benchmarks/bench_stalled_uploads.py`, "
            "issue 28)\n\n"
            f"{doc['machine']}; `{doc['command']}` ({doc['date']}).  The service in-process with its default limits "
            "(256 MiB of uploads in flight, 50 MiB per upload) and a model-free backend (zeros: upload handling is "
            f"timed, not inference).  {doc['stalled']} connections from 127.0.0.1 declare 5 × 50 MiB + (6 MiB − 1) "
            f"and send no body; 0.5 s later one 1920×1080 JPEG ({doc['photo_kb']} KB) is posted from "
            f"{doc['other_address']}.\n\n"
            "| service | held while stalled | stalled connections answered | other client's photo "
            "| held bytes back to 0 after |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stalled", type=int, default=6)
    parser.add_argument("--no-before", action="store_true", help="skip the pre-issue-28 run (it waits 60 s)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    jpeg = photo(1920, 1080, 0)
    source = other_address()
    defaults = ServiceSettings(log_level="warning")
    runs: dict[str, Any] = {}
    if not args.no_before:
        runs["before"] = scenario(replace(defaults, client_upload_share=1.0, upload_idle_timeout_s=defaults.timeout_s),
                                  args.stalled, jpeg, source)
        print("before:", json.dumps(runs["before"]), flush=True)
    runs["after"] = scenario(defaults, args.stalled, jpeg, source)
    print("after:", json.dumps(runs["after"]), flush=True)
    doc = {"date": today(), "machine": machine(), "command": command_line(), "stalled": args.stalled,
           "photo_kb": round(len(jpeg) / 1024), "other_address": source, "runs": runs}
    if not args.no_write:
        RESULTS_JSON.write_text(json.dumps(doc, indent=2) + "\n")
        write_section("bench_stalled_uploads", markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
