"""Speed of the Gradio space against issue 6's targets, on shipped bundles (assets/) or given ones.

Per bundle: generate 16 faces (p50), a latent traversal grid of 8 axes × 9 steps, a morph of 8
frames (strip + GIF), each timed in-process through FaceLab, end to end over the browser's own
protocol (POST queue/join, the server-sent event stream until process_completed, then a GET of every
file the answer names, as the page's <img> tags do), and end to end through gradio_client with its
default downloads (every output file fetched into its cache, what a script using the API waits
for), against the app on loopback; p50 and p95 of --repeats calls. Then the cold start: `python
app.py` spawned until its first answer, with that process's peak RSS (VmHWM). Prints a markdown table.

    .venv/bin/python benchmarks/bench_app.py                       # every bundle under assets/
    .venv/bin/python benchmarks/bench_app.py runs/x/bundle runs/y/bundle --repeats 20
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# issue 24's targets, p50 on an idle machine
TARGETS_MS = {"generate 16": 300.0, "generate 16, one grid": 300.0, "traversal 8×9": 500.0, "morph 8": 300.0,
              "cold start": 10_000.0}
LEVELS = 8  # app.MAX_LEVEL_SLIDERS


def p50_ms(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> tuple[float, float]:
    """(p50, p95) wall time of fn in milliseconds after warm-up calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_timings(lab: Any, name: str, repeats: int) -> dict[str, float]:
    """In-process p50 of the three operations for one bundle."""
    from facelab.lab import FaceSpec

    from facelab.imaging import grid

    return {
        "generate 16": p50_ms(lambda: lab.generate(name, 16, 0), repeats),
        "generate 16, one grid": p50_ms(lambda: grid(lab.generate(name, 16, 0)), repeats),
        "traversal 8×9": p50_ms(lambda: lab.traversal(name, None, "latent dimension", ["0-7"], 3.0, 9,
                                                      FaceSpec("seed", 0)), repeats),
        "morph 8": p50_ms(lambda: lab.morph(name, FaceSpec("seed", 1), FaceSpec("seed", 2), 8), repeats),
    }


def api_inputs(name: str, level: str) -> dict[str, tuple[str, list[Any]]]:
    """Per operation: (api_name, the endpoint's inputs) — the same calls the UI makes."""
    return {
        "generate 16": ("generate", [name, 0, 16, 1.0, 1.0, *[1.0] * LEVELS]),
        "generate 16, one grid": ("generate_grid", [name, 0, 16, 1.0, 1.0, *[1.0] * LEVELS]),
        "traversal 8×9": ("traversal", [name, level, "latent dimension", ["0-7"], 3.0, 9, "seed", 0, None, 1.0]),
        "morph 8": ("morph", [name, "seed", 1, None, "seed", 2, None, "spherical", 8, 8]),
    }


def api_timings(client: Any, name: str, level: str, repeats: int) -> dict[str, tuple[float, float]]:
    """End-to-end p50/p95 through gradio_client (HTTP, queue, image encoding and the client's downloads)."""
    return {op: p50_ms(lambda a=api, d=data: client.predict(*d, api_name=f"/{a}"), repeats)
            for op, (api, data) in api_inputs(name, level).items()}


class QueueCaller:
    """Calls an endpoint the way the browser does: POST queue/join, then read the SSE stream to completion."""

    def __init__(self, url: str):
        import httpx

        config = httpx.get(url + "config", timeout=30).json()
        self.fn_index = {d.get("api_name"): d["id"] for d in config["dependencies"]}
        # per endpoint, which inputs are gr.State: the browser sends null there, the API hides them
        kinds = {c["id"]: c.get("type") for c in config["components"]}
        self.is_state = {d.get("api_name"): [kinds.get(i) == "state" for i in d["inputs"]]
                         for d in config["dependencies"]}
        self.http = httpx.Client(base_url=url.rstrip("/") + config.get("api_prefix", "/gradio_api"), timeout=120)

    def __call__(self, api_name: str, data: list[Any]) -> dict[str, Any]:
        session = os.urandom(6).hex()
        values = iter(data)
        data = [None if state else next(values) for state in self.is_state[api_name]]
        # json.dumps, not httpx's json=: a hostile client sends NaN and Infinity too (bench_load.py)
        body = json.dumps({"data": data, "fn_index": self.fn_index[api_name], "session_hash": session,
                           "event_data": None, "trigger_id": None})
        joined = self.http.post("/queue/join", content=body, headers={"content-type": "application/json"})
        if joined.status_code != 200:
            raise RuntimeError(f"{api_name} refused at the door ({joined.status_code}): {joined.text[:200]}")
        with self.http.stream("GET", f"/queue/data?session_hash={session}") as stream:
            for line in stream.iter_lines():
                if '"process_completed"' in line:
                    message = json.loads(line.removeprefix("data:").strip())
                    if not message.get("success"):
                        error = (message.get("output") or {}).get("error") or line[:300]
                        raise RuntimeError(f"{api_name} failed: {error}")
                    self.fetch_files(message.get("output"))
                    return message
        raise RuntimeError(f"{api_name}: the event stream ended without a result")

    def fetch_files(self, value: Any) -> int:
        """GET every file URL in an answer, as the page's <img> and download links do; bytes read."""
        if isinstance(value, dict):
            if isinstance(value.get("url"), str):
                reply = self.http.get(value["url"])
                reply.raise_for_status()
                return len(reply.content)
            return sum(self.fetch_files(v) for v in value.values())
        if isinstance(value, list):
            return sum(self.fetch_files(v) for v in value)
        return 0


def queue_timings(caller: QueueCaller, name: str, level: str, repeats: int) -> dict[str, tuple[float, float]]:
    """End-to-end p50/p95 over the browser's protocol (queue join, server-sent events, file GETs)."""
    return {op: p50_ms(lambda a=api, d=data: caller(a, d), repeats) for op, (api, data) in api_inputs(name, level).items()}


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak resident memory (VmHWM) in MiB, from /proc (NaN where there is none)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cold_start_ms(sources: list[str], first: str) -> tuple[float, float]:
    """Spawn `python app.py`; ms until its first /generate answer (imports, models, UI) and its peak RSS (MiB)."""
    from gradio_client import Client

    port = free_port()
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port)]
    for s in sources:
        args += ["--model", s]
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode} before answering")
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
                break
            except Exception:  # not listening yet
                time.sleep(0.1)
        client.predict(first, 0, 16, 1.0, 1.0, *[1.0] * LEVELS, api_name="/generate")
        return (time.perf_counter() - start) * 1000, peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _fmt(ms: tuple[float, float], target: float) -> str:
    """'p50 / p95 ✓' with the mark on the p50 (the target is a median)."""
    return f"{ms[0]:.0f} / {ms[1]:.0f} {'✓' if ms[0] <= target else '✗'}"


def main(argv: list[str] | None = None) -> int:
    """Benchmark every given (or shipped) bundle and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", nargs="*", help="bundle folders (default: every bundle under assets/)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--no-cold-start", action="store_true")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import app
    from facelab.lab import FaceLab

    lab = FaceLab(model_sources=args.bundles or None)
    lab.load()
    names = lab.model_names()
    if not names:
        print(f"no bundle to benchmark: {lab.models_message()}")
        return 1
    from gradio_client import Client

    demo = app.build_demo(lab)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)  # default downloads, as API users get them
    caller = QueueCaller(f"http://127.0.0.1:{port}/")
    print(f"device {lab.device}, torch threads {torch.get_num_threads()}, p50 / p95 of {args.repeats} (ms)\n")
    print("| bundle | kind | px | operation | FaceLab | browser protocol (queue + SSE) | gradio_client | target |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    try:
        for name in names:
            info = lab.model_info(name)
            level = info["levels"][0]
            ours, sse = lab_timings(lab, name, args.repeats), queue_timings(caller, name, level, args.repeats)
            api = api_timings(client, name, level, args.repeats)
            for op, target in list(TARGETS_MS.items())[:-1]:
                print(f"| {name} | {info['kind']} | {info['image_size']} | {op} | {_fmt(ours[op], target)} "
                      f"| {_fmt(sse[op], target)} | {_fmt(api[op], target)} | ≤ {target:.0f} |")
    finally:
        demo.close()
    if not args.no_cold_start:
        cold, rss = cold_start_ms(list(lab.model_sources or []), names[0])
        target = TARGETS_MS["cold start"]
        print(f"| all ({len(names)}) | | | cold start → first answer (app.py peak RSS {rss:.0f} MiB) | | | "
              f"{_fmt((cold, cold), target)} | ≤ {target:.0f} |")
    print(f"\nthis process (FaceLab + server + clients) peak RSS: {peak_rss_mb():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
