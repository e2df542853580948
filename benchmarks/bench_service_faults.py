"""Reliability of ``cracksam serve`` under hostile or careless clients (issue 13), on loopback.

Starts ``cracksam serve`` (the bundled model unless ``--model``) in a subprocess, samples its
resident memory (RSS) every 50 ms, and runs five phases one after the other:

1. **load**: ``--clients`` clients x ``--photos`` photo uploads each (synthetic phone-style JPEGs
   of ``--photo-size``), keep-alive connections; errors, p50/p99 latency, peak RSS.
2. **vanishing clients**: ``--vanishing`` clients send a whole request and close their socket at
   once; then one real client uploads a photo.  Reports its status and latency and, from
   ``/health``, how many of the dropped requests were computed vs skipped.
3. **slow headers**: ``--slow`` connections (from 127.0.0.2 where the system allows, so the
   per-client cap applies to them and not to the real client on 127.0.0.1) each send a partial
   request line and then one header byte per second; reports how many the server accepted or
   refused, its open descriptors, a real request's latency meanwhile, and when they were closed.
4. **abandoned uploads**: ``--abandoned`` uploads of 45 MiB each stop one byte short and hang;
   reports how many were accepted vs refused 503 (upload budget), RSS growth, a real request.
5. **big images**: ``--big`` PNGs of ``--big-side``² pixels (small files, uniform surface with a
   line) sent at once; statuses (200, or 503 from the decoded-pixel budget) and peak RSS.

    python benchmarks/bench_service_faults.py [--clients 8] [--photos 50] [--vanishing 50] [--slow 300]
        [--abandoned 12] [--big 6] [--big-side 7000] [--photo-size 4032x3024] [--no-write]

Results go to ``benchmarks/results/service_faults.json`` and the ``bench_service_faults`` section of
``RESULTS.md`` (with the command line, so a reduced run says it was reduced).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import command_line, machine, today, write_section  # noqa: E402

RESULTS_JSON = Path(__file__).parent / "results" / "service_faults.json"
MIB = 1 << 20


# -- the server and its memory ------------------------------------------------------------------------


class Server:
    def __init__(self, args: argparse.Namespace) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="serve-", suffix=".log")[1])
        cmd = [sys.executable, "-m", "cracksam.cli.main", "serve", "--host", "127.0.0.1", "--port", "0",
               "--workers", str(args.workers), "--log-level", "warning", "--timeout-s", str(args.timeout_s)]
        if args.model:
            cmd += ["--model", str(args.model)]
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "COLUMNS": "300"})
        self.ps = psutil.Process(self.proc.pid)
        self.url = self._wait(args.start_timeout)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.peak = 0.0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _wait(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        url = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            if url is None:
                found = re.search(r"http://127\.0\.0\.1:(\d+)/", self.log_path.read_text())
                url = f"http://127.0.0.1:{found.group(1)}" if found else None
            if url is not None:
                try:
                    if httpx.get(url + "/health", timeout=5).status_code == 200:
                        return url
                except httpx.TransportError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"the server was not healthy within {timeout} s:\n{self.log_path.read_text()}")

    def rss(self) -> float:
        return self.ps.memory_info().rss / MIB

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.rss())
            except psutil.Error:
                return
            time.sleep(0.05)

    def reset_peak(self) -> float:
        self.peak = self.rss()
        return self.peak

    def fds(self) -> int:
        return self.ps.num_fds()

    def jobs(self) -> dict[str, int]:
        return httpx.get(self.url + "/health", timeout=30).json().get("jobs", {})

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# -- inputs -------------------------------------------------------------------------------------------


def photo(width: int, height: int, seed: int) -> bytes:
    """A phone-style JPEG: a noisy concrete-like surface with one dark crack."""
    rng = np.random.default_rng(seed)
    img = (rng.normal(150, 18, (height // 8, width // 8, 3))).clip(0, 255).astype(np.uint8)
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_CUBIC)
    pts = np.cumsum(rng.normal(0, 6, (40, 2)), axis=0) + [width * 0.1, height * 0.5]
    pts[:, 0] = np.linspace(width * 0.05, width * 0.95, 40)
    cv2.polylines(img, [pts.astype(np.int32)], False, (30, 30, 30), max(2, width // 600))
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def big_png(side: int) -> bytes:
    img = np.full((side, side, 3), 190, np.uint8)
    cv2.line(img, (0, side // 3), (side - 1, 2 * side // 3), (20, 20, 20), 9)
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="PNG", optimize=False, compress_level=9)
    return out.getvalue()


def post(client: httpx.Client, url: str, data: bytes, media: str = "image/jpeg") -> tuple[int, float, str]:
    t0 = time.perf_counter()
    try:
        r = client.post(url + "/v1/segment?mask=none", content=data, headers={"content-type": media})
        return r.status_code, time.perf_counter() - t0, r.text[:200] if r.status_code != 200 else ""
    except httpx.HTTPError as exc:
        return -1, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


# -- phases -------------------------------------------------------------------------------------------


def phase_load(server: Server, args: argparse.Namespace, photos: list[bytes]) -> dict[str, Any]:
    server.reset_peak()
    rss0 = server.rss()

    def client(i: int) -> list[tuple[int, float, str]]:
        with httpx.Client(timeout=300) as c:
            return [post(c, server.url, photos[(i + k) % len(photos)]) for k in range(args.photos)]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        results = [r for rows in pool.map(client, range(args.clients)) for r in rows]
    wall = time.perf_counter() - t0
    ok = [s for code, s, _ in results if code == 200]
    errors = [(code, text) for code, _s, text in results if code != 200]
    return {"requests": len(results), "errors": len(errors), "error_examples": errors[:3],
            "p50_s": pct(ok, 50), "p99_s": pct(ok, 99), "wall_s": round(wall, 1),
            "throughput_per_s": round(len(ok) / wall, 2), "rss_before_mb": round(rss0),
            "rss_peak_mb": round(server.peak)}


def _send_and_vanish(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        s.shutdown(socket.SHUT_RDWR)


def phase_vanishing(server: Server, args: argparse.Namespace, photos: list[bytes]) -> dict[str, Any]:
    before = server.jobs()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: _send_and_vanish(server.port, photos[i % len(photos)]), range(args.vanishing)))
    with httpx.Client(timeout=300) as c:
        code, seconds, text = post(c, server.url, photos[0])
        second = post(c, server.url, photos[1 % len(photos)])
    time.sleep(1.0)
    deadline = time.monotonic() + 120
    while server.jobs().get("active", 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    after = server.jobs()
    done = after.get("done", 0) - before.get("done", 0) - 2  # the two real requests
    skipped = after.get("skipped_client_gone", 0) - before.get("skipped_client_gone", 0)
    return {"dropped": args.vanishing, "computed_for_dropped": done, "skipped": skipped,
            "next_real_client": {"status": code, "seconds": round(seconds, 3), "detail": text},
            "second_real_client": {"status": second[0], "seconds": round(second[1], 3)}}


def _slow_client(port: int, source: str | None, hold_s: float, result: dict[str, int], lock: threading.Lock) -> None:
    try:
        s = socket.socket()
        if source:
            s.bind((source, 0))
        s.settimeout(hold_s + 15)
        s.connect(("127.0.0.1", port))
        s.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        got = b""
        s.setblocking(False)
        while time.monotonic() - t0 < hold_s:
            try:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            except BlockingIOError:
                pass
            try:
                s.send(b"X")  # one more header byte per second: never a whole header line
            except OSError:
                break
            time.sleep(1.0)
        key = "refused_503" if got.startswith(b"HTTP/1.1 503") else "timed_out_408" if got.startswith(
            b"HTTP/1.1 408") else "closed_silently" if got == b"" and time.monotonic() - t0 < hold_s else "held_open"
        with lock:
            result[key] = result.get(key, 0) + 1
            result.setdefault("closed_after_s", 0)
            if key == "timed_out_408":
                result["closed_after_s"] = max(result["closed_after_s"], round(time.monotonic() - t0))
        s.close()
    except OSError as exc:
        with lock:
            result[f"error {type(exc).__name__}"] = result.get(f"error {type(exc).__name__}", 0) + 1


def phase_slow_headers(server: Server, args: argparse.Namespace, photos: list[bytes]) -> dict[str, Any]:
    source: str | None = "127.0.0.2"
    try:
        probe = socket.socket()
        probe.bind((source, 0))
        probe.close()
    except OSError:
        source = None
    result: dict[str, int] = {}
    lock = threading.Lock()
    fds0 = server.fds()
    threads = [threading.Thread(target=_slow_client, args=(server.port, source, args.slow_hold, result, lock),
                                daemon=True) for _ in range(args.slow)]
    for t in threads:
        t.start()
    time.sleep(3.0)
    fds_during = server.fds()
    with httpx.Client(timeout=300) as c:
        real = [post(c, server.url, photos[k % len(photos)]) for k in range(3)]
    for t in threads:
        t.join(args.slow_hold + 30)
    return {"connections": args.slow, "from": source or "127.0.0.1 (127.0.0.2 not bindable)",
            "outcomes": result, "server_fds_before": fds0, "server_fds_during": fds_during,
            "server_fds_after": server.fds(),
            "real_requests_meanwhile": [{"status": code, "seconds": round(s, 3)} for code, s, _ in real]}


def _abandon(port: int, size: int, hold_s: float) -> str:
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  f"Content-Length: {size}\r\n\r\n".encode())
        s.settimeout(0.5)
        sent, block = 0, b"\0" * MIB
        while sent < size - 1:
            n = min(len(block), size - 1 - sent)
            s.sendall(block[:n])
            sent += n
        time.sleep(hold_s)  # one byte short, then silence
        s.settimeout(2)
        try:
            answer = s.recv(200)
        except (TimeoutError, OSError):
            answer = b""
        s.close()
        return "refused_503" if answer.startswith(b"HTTP/1.1 503") else "held"
    except OSError as exc:  # the server answered 503 and closed while we were still sending
        return "refused_503" if isinstance(exc, (BrokenPipeError, ConnectionResetError)) else type(exc).__name__


def phase_abandoned(server: Server, args: argparse.Namespace, photos: list[bytes]) -> dict[str, Any]:
    rss0 = server.reset_peak()
    with ThreadPoolExecutor(args.abandoned + 1) as pool:
        futures = [pool.submit(_abandon, server.port, 45 * MIB, args.abandon_hold) for _ in range(args.abandoned)]
        time.sleep(min(args.abandon_hold, 5.0))
        rss_held = server.rss()
        with httpx.Client(timeout=300) as c:
            real = post(c, server.url, photos[0])
        outcomes = [f.result() for f in futures]
    return {"uploads": args.abandoned, "size_mib": 45, "held_s": args.abandon_hold,
            "outcomes": {k: outcomes.count(k) for k in sorted(set(outcomes))},
            "rss_before_mb": round(rss0), "rss_while_held_mb": round(rss_held), "rss_peak_mb": round(server.peak),
            "real_request_meanwhile": {"status": real[0], "seconds": round(real[1], 3), "detail": real[2]}}


def phase_big(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    data = big_png(args.big_side)
    rss0 = server.reset_peak()

    def one(_i: int) -> tuple[int, float, str]:
        with httpx.Client(timeout=900) as c:
            return post(c, server.url, data, "image/png")

    with ThreadPoolExecutor(args.big) as pool:
        results = list(pool.map(one, range(args.big)))
    statuses = [code for code, _s, _t in results]
    return {"images": args.big, "side": args.big_side, "file_kb": round(len(data) / 1024),
            "statuses": {str(k): statuses.count(k) for k in sorted(set(statuses))},
            "seconds_ok": [round(s, 1) for code, s, _ in results if code == 200],
            "rss_before_mb": round(rss0), "rss_peak_mb": round(server.peak)}


# -- report -------------------------------------------------------------------------------------------


def markdown(doc: dict[str, Any]) -> str:
    load, van, slow, ab, big = (doc[k] for k in ("load", "vanishing", "slow_headers", "abandoned", "big"))
    nxt, second = van["next_real_client"], van["second_real_client"]
    meanwhile = ", ".join(f"{r['status']} in {r['seconds']} s" for r in slow["real_requests_meanwhile"])
    real = ab["real_request_meanwhile"]
    rows = [
        (f"load: {load['requests']} photos ({doc['photo_size']}) from {doc['clients']} clients",
         f"{load['errors']} errors; p50 {load['p50_s']} s, p99 {load['p99_s']} s; {load['throughput_per_s']} req/s; "
         f"RSS {load['rss_before_mb']} → peak {load['rss_peak_mb']} MiB"),
        (f"{van['dropped']} vanishing clients",
         f"{van['computed_for_dropped']} computed, {van['skipped']} skipped; next real client: {nxt['status']} in "
         f"{nxt['seconds']} s, then {second['status']} in {second['seconds']} s"),
        (f"{slow['connections']} slow-header connections (from {slow['from']})",
         f"{json.dumps(slow['outcomes'])}; server descriptors {slow['server_fds_before']} → "
         f"{slow['server_fds_during']} → {slow['server_fds_after']}; real requests meanwhile: {meanwhile}"),
        (f"{ab['uploads']} abandoned {ab['size_mib']} MiB uploads",
         f"{json.dumps(ab['outcomes'])}; RSS {ab['rss_before_mb']} → {ab['rss_while_held_mb']} MiB while held "
         f"(peak {ab['rss_peak_mb']}); real request meanwhile: {real['status']} in {real['seconds']} s"),
        (f"{big['images']} PNGs of {big['side']}² ({big['file_kb']} KB each) at once",
         f"statuses {json.dumps(big['statuses'])}; RSS {big['rss_before_mb']} → peak {big['rss_peak_mb']} MiB"),
    ]
    table = "\n".join(f"| {a} | {b} |" for a, b in rows)
    commands: dict[str, list[str]] = {}
    for name, run in doc["runs"].items():
        commands.setdefault(f"`{run['command']}` ({run['date']}){': ' + run['note'] if run['note'] else ''}",
                            []).append(name)
    ran = "\n".join(f"- {', '.join(names)}: {cmd}" for cmd, names in commands.items())
    return (f"## Service reliability under faults (`benchmarks/bench_service_faults.py`, issue 13)\n\n"
            f"{doc['machine']}; `cracksam serve` with {doc['workers']} workers and the default limits (64 Mpx "
            "decoded and 256 MiB of uploads in flight, 256 connections, 32 per client, 10 s header deadline).\n\n"
            f"{ran}\n\n| phase | result |\n|---|---|\n{table}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--photos", type=int, default=50, help="uploads per client")
    parser.add_argument("--photo-size", default="4032x3024")
    parser.add_argument("--vanishing", type=int, default=50)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--slow-hold", type=float, default=15.0, help="seconds each slow client keeps trying")
    parser.add_argument("--abandoned", type=int, default=12)
    parser.add_argument("--abandon-hold", type=float, default=10.0)
    parser.add_argument("--big", type=int, default=6)
    parser.add_argument("--big-side", type=int, default=7000)
    parser.add_argument("--start-timeout", type=float, default=300.0)
    parser.add_argument("--timeout-s", type=float, default=300.0, help="the server's per-request time limit")
    parser.add_argument("--note", default="", help="said in RESULTS.md (e.g. why the run was reduced)")
    parser.add_argument("--phases", default="load,vanishing,slow_headers,abandoned,big",
                        help="comma list; with fewer than all, the others are kept from results/service_faults.json")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    width, height = (int(v) for v in args.photo_size.lower().split("x"))
    photos = [photo(width, height, seed) for seed in range(4)]
    wanted = {p.strip() for p in args.phases.split(",") if p.strip()}
    doc: dict[str, Any] = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() and len(wanted) < 5 else {}
    runs = doc.setdefault("runs", {})
    server = Server(args)
    try:
        doc.update({"date": today(), "machine": machine(), "workers": args.workers})
        if "load" in wanted:
            doc.update(clients=args.clients, photo_size=args.photo_size)
        for name, run in (("load", lambda: phase_load(server, args, photos)),
                          ("vanishing", lambda: phase_vanishing(server, args, photos)),
                          ("slow_headers", lambda: phase_slow_headers(server, args, photos)),
                          ("abandoned", lambda: phase_abandoned(server, args, photos)),
                          ("big", lambda: phase_big(server, args))):
            if name not in wanted:
                continue
            t0 = time.perf_counter()
            doc[name] = run()
            runs[name] = {"command": command_line(), "date": today(), "note": args.note}
            print(f"{name} ({time.perf_counter() - t0:.0f} s): {json.dumps(doc[name])}", flush=True)
    finally:
        server.stop()
    if not args.no_write:
        RESULTS_JSON.write_text(json.dumps(doc, indent=2) + "\n")
        write_section("bench_service_faults", markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
