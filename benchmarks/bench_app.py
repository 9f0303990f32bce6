"""Speed of the Gradio space against issue 6's targets, on shipped bundles (assets/) or given ones.

Per bundle: generate 16 faces (p50), a latent traversal grid of 8 axes × 9 steps, a morph of 8
frames (strip + GIF), each timed in-process through FaceLab and end to end through gradio_client
against the app on loopback; and the cold start: `python app.py` spawned until its first answer.
Prints a markdown table.

    .venv/bin/python benchmarks/bench_app.py                       # every bundle under assets/
    .venv/bin/python benchmarks/bench_app.py runs/x/bundle runs/y/bundle --repeats 20
"""

from __future__ import annotations

import argparse
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

TARGETS_MS = {"generate 16": 150.0, "traversal 8×9": 500.0, "morph 8": 300.0, "cold start": 15_000.0}
LEVELS = 8  # app.MAX_LEVEL_SLIDERS


def p50_ms(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    """Median wall time of fn in milliseconds after warm-up calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_timings(lab: Any, name: str, repeats: int) -> dict[str, float]:
    """In-process p50 of the three operations for one bundle."""
    from facelab.lab import FaceSpec

    return {
        "generate 16": p50_ms(lambda: lab.generate(name, 16, 0), repeats),
        "traversal 8×9": p50_ms(lambda: lab.traversal(name, None, "latent dimension", ["0-7"], 3.0, 9,
                                                      FaceSpec("seed", 0)), repeats),
        "morph 8": p50_ms(lambda: lab.morph(name, FaceSpec("seed", 1), FaceSpec("seed", 2), 8), repeats),
    }


def api_timings(client: Any, name: str, level: str, repeats: int) -> dict[str, float]:
    """End-to-end p50 through gradio_client (HTTP, queue and image encoding; not the client's downloads)."""
    return {
        "generate 16": p50_ms(lambda: client.predict(name, 0, 16, 1.0, 1.0, *[1.0] * LEVELS,
                                                     api_name="/generate"), repeats),
        "traversal 8×9": p50_ms(lambda: client.predict(name, level, "latent dimension", ["0-7"], 3.0, 9, "seed", 0,
                                                       None, 1.0, api_name="/traversal"), repeats),
        "morph 8": p50_ms(lambda: client.predict(name, "seed", 1, None, "seed", 2, None, "spherical", 8, 8,
                                                 api_name="/morph"), repeats),
    }


def cold_start_ms(sources: list[str], first: str) -> float:
    """Spawn `python app.py` and time until its first /generate answer (imports, model loading, UI build)."""
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
        return (time.perf_counter() - start) * 1000
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _fmt(ms: float, target: float) -> str:
    return f"{ms:.0f} {'✓' if ms <= target else '✗'}"


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
    # the server's answer, not the client's download of every image file afterwards
    client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
    print(f"device {lab.device}, torch threads {torch.get_num_threads()}, p50 of {args.repeats} (ms)\n")
    print("| bundle | kind | px | operation | FaceLab | through the API | target |")
    print("|---|---|---:|---|---:|---:|---:|")
    try:
        for name in names:
            info = lab.model_info(name)
            ours, api = lab_timings(lab, name, args.repeats), api_timings(client, name, info["levels"][0],
                                                                          args.repeats)
            for op, target in list(TARGETS_MS.items())[:3]:
                print(f"| {name} | {info['kind']} | {info['image_size']} | {op} | {_fmt(ours[op], target)} "
                      f"| {_fmt(api[op], target)} | ≤ {target:.0f} |")
    finally:
        demo.close()
    if not args.no_cold_start:
        cold = cold_start_ms(list(lab.model_sources or []), names[0])
        target = TARGETS_MS["cold start"]
        print(f"| all ({len(names)}) | | | cold start → first answer | | {_fmt(cold, target)} | ≤ {target:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
