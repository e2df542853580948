"""Loopback load test of ``cracksam serve``: latency, throughput, memory and the cost of HTTP.

Starts the service in a subprocess on a free 127.0.0.1 port with ``--model`` (default: the
bundled model), then

1. times the raw predictor in this process at concurrency 1 (decode the image bytes, segment,
   threshold: the work the service does per request, without HTTP), ``--requests`` calls;
2. times the same number of HTTP requests from one client, alternating with the raw calls
   (the HTTP overhead, in %);
3. runs ``--clients`` concurrent clients x ``--requests`` requests each (keep-alive connections),
   checking every answer (status 200 and the same crack pixel count as the raw predictor);
4. reads the server's resident memory (RSS) when it is ready and after the load.

The load is bounded in count (clients x requests) and in time (``--max-seconds``); only loopback
is used.  Results go to ``benchmarks/results/service.json`` and the ``bench_service`` section of
``RESULTS.md`` (``--no-write``: print only).

    python benchmarks/bench_service.py ../shared/datasets/cracksc/images/<some image>.jpg \\
        [--model PATH] [--clients 4] [--requests 200] [--workers 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import command_line, machine, today, write_section  # noqa: E402

from cracksam.data.io import decode_image  # noqa: E402
from cracksam.inference.predictor import Predictor  # noqa: E402

RESULTS_JSON = Path(__file__).parent / "results" / "service.json"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def start_server(args: argparse.Namespace, log_path: Path) -> tuple[subprocess.Popen, str]:
    """``cracksam serve`` on a free loopback port; returns the process and its base URL once healthy."""
    cmd = [sys.executable, "-m", "cracksam.cli.main", "serve", "--host", "127.0.0.1", "--port", "0",
           "--workers", str(args.workers), "--log-level", "warning", "--mode", args.mode,
           "--max-pending", str(max(32, args.clients * 2))]
    if args.model:
        cmd += ["--model", str(args.model)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "300"})
    deadline = time.monotonic() + args.start_timeout
    url = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}:\n{log_path.read_text()}")
        if url is None:
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", log_path.read_text())
            url = f"http://127.0.0.1:{match.group(1)}" if match else None
        if url is not None:
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    stop_server(proc)
    raise SystemExit(f"the server was not healthy within {args.start_timeout} s:\n{log_path.read_text()}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (psutil when installed, else Linux's /proc)."""
    try:
        import psutil
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise
    return psutil.Process(pid).memory_info().rss / 2**20


def time_raw(predictor: Predictor, data: bytes, calls: int) -> tuple[list[float], int]:
    """Seconds per call of decode + segment + threshold, and the crack pixel count."""
    times, crack = [], -1
    for _ in range(calls):
        t0 = time.perf_counter()
        mask = predictor.predict_one(decode_image(data)).mask()
        times.append(time.perf_counter() - t0)
        crack = int(mask.sum())
    return times, crack


class Load:
    """``clients`` threads, each with its own keep-alive connection, ``requests`` requests each."""

    def __init__(self, url: str, data: bytes, query: str, expected_crack: int, max_seconds: float) -> None:
        self.url, self.data, self.query = url, data, query
        self.expected_crack = expected_crack
        self.deadline = time.monotonic() + max_seconds
        self.latencies: list[float] = []
        self.work: list[float] = []  # server-side decode + inference of each request (Server-Timing), s
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def client(self, requests: int) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as c:
            for _ in range(requests):
                if time.monotonic() > self.deadline:
                    with self.lock:
                        self.errors.append("time limit reached before all requests were sent")
                    return
                self.request(c)

    def request(self, c: httpx.Client) -> None:
        """One request on the keep-alive connection ``c``; its latency or its problem is recorded."""
        t0 = time.perf_counter()
        try:
            r = c.post(f"/v1/segment?{self.query}", content=self.data,
                       headers={"Content-Type": "application/octet-stream"})
            dt = time.perf_counter() - t0
            problem = None
            if r.status_code != 200:
                problem = f"HTTP {r.status_code}: {r.text[:200]}"
            elif int(r.headers.get("x-crack-pixels", -1)) != self.expected_crack:
                problem = f"crack pixels {r.headers.get('x-crack-pixels')} != {self.expected_crack}"
        except httpx.HTTPError as exc:
            dt, problem = time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
        with self.lock:
            if problem:
                self.errors.append(problem)
            else:
                self.latencies.append(dt)
                timing = dict(re.findall(r"(\w+);dur=([\d.]+)", r.headers.get("server-timing", "")))
                self.work.append((float(timing.get("decode", 0)) + float(timing.get("inference", 0))) / 1000)

    def run(self, clients: int, requests: int) -> float:
        threads = [threading.Thread(target=self.client, args=(requests,)) for _ in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path, help="An image to send (read from where it is; never copied).")
    parser.add_argument("--model", type=Path, default=None, help="Model to serve (default: the bundled one).")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200, help="Requests per client (and raw/sequential calls).")
    parser.add_argument("--workers", type=int, default=2, help="cracksam serve --workers.")
    parser.add_argument("--threads", type=int, default=None, help="Runtime CPU threads (server and raw predictor).")
    parser.add_argument("--mode", default="resize", choices=["resize", "tile", "native"])
    parser.add_argument("--query", default="format=json&mask=rle", help="Query string of each request.")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed requests (and raw calls) first.")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="Stop sending after this long.")
    parser.add_argument("--start-timeout", type=float, default=300.0)
    parser.add_argument("--json-out", type=Path, default=RESULTS_JSON)
    parser.add_argument("--no-write", action="store_true", help="Print only: leave results/ and RESULTS.md alone.")
    args = parser.parse_args()
    if args.clients < 1 or args.requests < 1:
        parser.error("--clients and --requests must be >= 1")
    data = args.image.read_bytes()

    from cracksam.models.default import default_model_path

    model = args.model or default_model_path()
    predictor = Predictor.from_path(model, threads=args.threads, mode=args.mode)
    image = decode_image(data)
    _, expected_crack = time_raw(predictor, data, args.warmup)

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(args, Path(tmp) / "server.log")
        try:
            card = httpx.get(url + "/v1/model").json()
            rss_ready = rss_mb(proc.pid)
            warm = Load(url, data, args.query, expected_crack, args.max_seconds)
            warm.run(1, args.warmup)
            # Concurrency 1: raw predictor calls and HTTP requests alternate one by one, so that
            # drift of the machine's speed (frequency, noisy neighbours) hits both equally.
            sequential = Load(url, data, args.query, expected_crack, args.max_seconds)
            raw_times: list[float] = []
            with httpx.Client(base_url=url, timeout=120) as client:  # one keep-alive connection
                sequential.request(client)  # connection set up outside the timed calls
                sequential.latencies.clear()
                for _ in range(args.requests):
                    raw_times += time_raw(predictor, data, 1)[0]
                    sequential.request(client)
            print(f"raw predictor: {1000 * statistics.fmean(raw_times):.1f} ms/call mean, HTTP: "
                  f"{1000 * statistics.fmean(sequential.latencies or [float('nan')]):.1f} ms", flush=True)
            del predictor
            load = Load(url, data, args.query, expected_crack, args.max_seconds)
            wall = load.run(args.clients, args.requests)
            rss_after = rss_mb(proc.pid)
            # A second, identical round: memory that grows again here would be a leak; memory that
            # stays is the allocator's and the runtime's working set after the first round.
            again = Load(url, data, args.query, expected_crack, args.max_seconds)
            again.run(args.clients, args.requests)
            rss_again = rss_mb(proc.pid)
        finally:
            stop_server(proc)

    errors = warm.errors + sequential.errors + load.errors + again.errors
    raw, seq, conc = summary(raw_times), summary(sequential.latencies), summary(load.latencies)
    overhead = 100.0 * (seq["mean_ms"] - raw["mean_ms"]) / raw["mean_ms"]
    # The same quantity measured inside each request: client latency minus the server's own decode +
    # inference time (Server-Timing), relative to the latter; immune to the two processes running at
    # slightly different speeds.
    work = statistics.fmean(sequential.work) if sequential.work else float("nan")
    overhead_inside = 100.0 * (statistics.fmean(sequential.latencies) - work) / work if sequential.work else None
    result: dict[str, Any] = {
        "date": today(),
        "machine": machine(),
        "command": command_line(),
        "model": card.get("id"),
        "runtime": card.get("runtime"),
        "mode": args.mode,
        "image": {"name": args.image.name, "width": int(image.shape[1]), "height": int(image.shape[0]),
                  "bytes": len(data)},
        "query": args.query,
        "workers": args.workers,
        "threads": args.threads,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "requests_ok": len(load.latencies),
        "errors": len(errors),
        "error_examples": errors[:5],
        "raw_concurrency1": raw,
        "http_concurrency1": seq,
        "http_overhead_pct": overhead,
        "http_overhead_pct_same_request": overhead_inside,
        "load": {**conc, "wall_s": wall, "requests_per_s": len(load.latencies) / wall if wall > 0 else 0.0},
        "server_rss_mb": {"ready": rss_ready, "after_load": rss_after, "after_second_load": rss_again},
    }
    print(json.dumps(result, indent=2))
    if errors:
        print(f"ERRORS: {len(errors)} (first: {errors[0]})", file=sys.stderr)
    if args.no_write:
        return
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "## HTTP service under load (`benchmarks/bench_service.py`)",
        "",
        f"- Command: `{result['command']}`",
        f"- Machine: {result['machine']}",
        f"- Date: {result['date']}",
        f"- Model `{result['model']}` ({result['runtime']}, mode {args.mode}); image {args.image.name} "
        f"({image.shape[1]}×{image.shape[0]}, {len(data)} bytes); `POST /v1/segment?{args.query}` with the raw "
        f"image as body; server `--workers {args.workers}`"
        + (f" `--threads {args.threads}`" if args.threads else "")
        + "; clients on the same machine (loopback), keep-alive connections.",
        "",
        "| measurement | value |",
        "|---|---:|",
        f"| requests checked (status 200, same crack pixels as the raw predictor) | "
        f"{len(load.latencies) + len(again.latencies)} of {2 * args.clients * args.requests}, "
        f"**{len(errors)} errors** |",
        f"| {args.clients} clients: latency p50 / p99 (ms) | {conc['p50_ms']:.0f} / {conc['p99_ms']:.0f} |",
        f"| {args.clients} clients: throughput (requests/s) | {result['load']['requests_per_s']:.2f} |",
        f"| 1 client: latency mean / p50 (ms) | {seq['mean_ms']:.0f} / {seq['p50_ms']:.0f} |",
        f"| raw predictor (decode + segment, no HTTP): mean / p50 (ms) | {raw['mean_ms']:.0f} / {raw['p50_ms']:.0f} |",
        f"| HTTP overhead at concurrency 1 vs the raw predictor (mean; raw and HTTP calls alternate) | "
        f"{overhead:+.1f} % |",
        f"| HTTP overhead at concurrency 1 within each request (latency − server decode+inference) | "
        f"{overhead_inside:+.1f} % |",
        f"| server RSS ready → after load → after a second identical load (MiB) | {rss_ready:.0f} → "
        f"{rss_after:.0f} → {rss_again:.0f} |",
    ]
    lines += [
        "",
        "The first overhead compares two processes (the benchmark's own predictor and the server's); when it is",
        "negative the server process simply ran the same model faster. The second isolates what HTTP adds to",
        "each request (transfer, routing, JSON/RLE) and is the figure for the ≤ 5 % target.",
    ]
    write_section("bench_service", "\n".join(lines))


if __name__ == "__main__":
    main()
