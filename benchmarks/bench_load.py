"""The app under a crowd and under attack: concurrent clients on loopback, then hostile requests, with memory.

Starts `python app.py` as its own process (the server a Space runs), then:
1. load: --clients gradio_client clients call /generate for --seconds each, all with the default
   arguments ("identical": every answer is the same files) or each with its own seeds ("mixed");
   every returned image is downloaded and decoded, so a truncated or half-written file counts as an
   error. Prints calls, errors by kind, p50/p95 latency and throughput.
2. hostile: one round of bad requests (unbounded lists, NaN and huge numbers, 3,000 duplicated
   models, ...); each must be refused with a message, none may crash the server.
3. memory: the server's resident memory after a warm-up, after each load and after each hostile round
   (issue 21: within 100 MB of where it started).

    .venv/bin/python benchmarks/bench_load.py                          # 16 clients × 60 s, both modes
    .venv/bin/python benchmarks/bench_load.py --clients 4 --seconds 10 --mode identical --model assets/vae32_original
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def start_app(models: list[str], port: int, log: Path) -> subprocess.Popen:
    """`python app.py` on loopback; returns once it answers (or raises with its log's tail)."""
    from gradio_client import Client

    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port)]
    for m in models:
        cmd += ["--model", m]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            Client(f"http://127.0.0.1:{port}/", verbose=False)
            return proc
        except Exception:  # not listening yet
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("app.py did not answer within 180 s")


def check_images(result: Any) -> int:
    """Decode every image file in a /generate answer (a gallery); returns how many."""
    n = 0
    for item in result:
        path = item["image"] if isinstance(item, dict) and "image" in item else item[0] if isinstance(item, (list, tuple)) else item
        path = path.get("path") if isinstance(path, dict) else path
        with Image.open(path) as im:
            im.load()  # a truncated PNG fails here
        n += 1
    return n


def client_loop(url: str, model: str, seconds: float, mixed: int | None, out: dict, lock: threading.Lock) -> None:
    """One user: call /generate until the time is up, recording latencies and errors."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    seed, end = (mixed or 0) * 1000, time.monotonic() + seconds
    while time.monotonic() < end:
        kwargs = {"model": model}
        if mixed is not None:
            seed += 1
            kwargs["seed"] = seed
        t = time.perf_counter()
        try:
            n = check_images(client.predict(api_name="/generate", **kwargs))
            with lock:
                out["latency"].append(time.perf_counter() - t)
                out["images"] += n
        except Exception as err:  # every failure is counted by its kind, never hidden
            with lock:
                out["errors"][f"{type(err).__name__}: {str(err)[:80]}"] += 1


def load_round(url: str, model: str, clients: int, seconds: float, mode: str) -> dict:
    """clients threads × seconds of /generate; identical (defaults) or mixed (own seeds) requests."""
    out: dict = {"latency": [], "images": 0, "errors": collections.Counter()}
    lock = threading.Lock()
    threads = [threading.Thread(target=client_loop, args=(url, model, seconds, None if mode == "identical" else i,
                                                          out, lock)) for i in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out["wall"] = time.perf_counter() - t0
    return out


HOSTILE = [  # (endpoint, arguments): each one must be refused with a message
    ("/generate", {"n": 10 ** 9}),
    ("/generate", {"temperature": math.nan}),
    ("/generate", {"seed": 1e300}),
    ("/generate", {"psi": math.inf}),
    ("/generate", {"seed": math.nan}),
    ("/generate", {"n": -1}),
    ("/traversal", {"kind": "PCA component", "axes": ["PC1-PC20000000"]}),
    ("/traversal", {"source": "photo", "photo": {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}}),
    ("/traversal", {"axes": ["0-20000000"]}),
    ("/traversal", {"steps": 10 ** 7}),
    ("/traversal", {"span": math.nan}),
    ("/style_mix", {"row_seeds": "0-20000000"}),
    ("/morph", {"frames": 10 ** 7}),
    ("/conditional", {"n": 10 ** 9}),
    ("/background_compare", {"models": ["{model}"] * 3000}),
    ("/study", {"title": "../../../../etc/passwd"}),
]


def hostile_round(url: str, model: str) -> list[tuple[str, str, str]]:
    """Send every HOSTILE request the way a browser would (raw JSON, NaN allowed, photos left empty);
    (endpoint, arguments, outcome) rows — 'refused: …' is the pass."""
    from gradio_client import Client

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_app import QueueCaller

    api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
    caller = QueueCaller(url)
    rows = []
    for endpoint, args in HOSTILE:
        params = api[endpoint]["parameters"]
        given = {k: ([model if x == "{model}" else x for x in v] if isinstance(v, list) else v)
                 for k, v in args.items()}
        given.setdefault("model", model)
        data = [given.get(p["parameter_name"], p.get("parameter_default")) for p in params]
        shown = ", ".join(f"{k}={'[…×3000]' if isinstance(v, list) and len(v) > 10 else v}" for k, v in args.items())
        try:
            caller(endpoint.lstrip("/"), data)
            rows.append((endpoint, shown, "ANSWERED (not refused)"))
        except Exception as err:
            rows.append((endpoint, shown, f"refused: {str(err).splitlines()[0][:110]}"))
    return rows


def pct(values: list[float], q: float) -> float:
    """The q-quantile of values (nan when empty)."""
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) >= 2 else math.nan


def main(argv: list[str] | None = None) -> int:
    """Run the load rounds, the hostile round and the memory readings; print markdown tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="bundle(s) to serve (default: every bundle under assets/)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--mode", choices=("identical", "mixed", "both"), default="both")
    p.add_argument("--hostile-rounds", type=int, default=3, help="rounds of bad requests (0: none)")
    args = p.parse_args(argv)
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_load_app_{port}.log"
    proc = start_app(args.model or [], port, log)
    url = f"http://127.0.0.1:{port}/"
    try:
        from gradio_client import Client

        model = Client(url, verbose=False).predict(api_name="/models")[0]["data"][0][0]
        memory = [("started", rss_mb(proc.pid))]
        load_round(url, model, 2, 5.0, "mixed")  # warm-up: first-call allocations are not a leak
        memory.append(("after warm-up (2 clients × 5 s)", rss_mb(proc.pid)))
        print(f"server pid {proc.pid}, model {model}, {args.clients} clients × {args.seconds:.0f} s\n")
        print("| requests | calls | errors | p50 s | p95 s | calls/s | images/s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        modes = ("identical", "mixed") if args.mode == "both" else (args.mode,)
        for mode in modes:
            r = load_round(url, model, args.clients, args.seconds, mode)
            lat, errs = r["latency"], sum(r["errors"].values())
            print(f"| {mode} /generate | {len(lat) + errs} | {errs} | {pct(lat, .5):.2f} | {pct(lat, .95):.2f} "
                  f"| {len(lat) / r['wall']:.1f} | {r['images'] / r['wall']:.0f} |")
            for kind, count in r["errors"].most_common():
                print(f"|   {count} × {kind} | | | | | | |")
            memory.append((f"after {mode} load", rss_mb(proc.pid)))
        for i in range(args.hostile_rounds):  # repeated: a leak grows round after round
            rows = hostile_round(url, model)
            memory.append((f"after hostile round {i + 1}", rss_mb(proc.pid)))
        if args.hostile_rounds:
            print("\n| endpoint | arguments | outcome |\n|---|---|---|")
            for row in rows:
                print("| " + " | ".join(s.replace("|", "\\|") for s in row) + " |")
        alive = proc.poll() is None
        print("\n| server memory | RSS MB | Δ from warm-up | Δ from previous |\n|---|---:|---:|---:|")
        for i, (label, mb) in enumerate(memory):
            print(f"| {label} | {mb:.0f} | {mb - memory[min(1, len(memory) - 1)][1]:+.0f} "
                  f"| {mb - memory[max(0, i - 1)][1]:+.0f} |")
        print(f"\nserver still running: {alive}")
        return 0 if alive else 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
