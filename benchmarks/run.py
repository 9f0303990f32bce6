#!/usr/bin/env python
"""Every benchmark in one command: one markdown report, written into BENCHMARKS.md's generated part.

    python benchmarks/run.py                      # all of them (under 20 minutes on an idle 2-core CPU)
    python benchmarks/run.py --only models,vae_peers --no-write
    python benchmarks/run.py --quick              # each script's smoke settings (CI-sized)

The run first measures this machine's fp32 matmul peak (1 and 2 threads, wall and per CPU-second)
and the load average, then runs each benchmark script of STEPS in its own process, one after the
other, and keeps the markdown it prints (tables and their one-line headers; progress bars and
warnings dropped). Each script pairs its own contestants interleaved or in CPU time, so the ratios
hold under load; absolute numbers are of this run only. The report replaces the part of
BENCHMARKS.md between the MARK_BEGIN and MARK_END comments (added at the top when missing), so
the file says which numbers came from this command and when. Long studies (GAN peers, background
share over seeds, disentanglement sweeps) are not re-run: their sections below the generated part
name their own commands.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MARK_BEGIN = "<!-- benchmarks/run.py: begin (generated; edits here are overwritten) -->"
MARK_END = "<!-- benchmarks/run.py: end -->"
NOISE = re.compile(r"(Warning|warn\(|it/s|s/it|batch/s|^\s*\d+%|Traceback|^\s+File |super\(\)|^Training of|"
                   r"^Created |^Training config|Closing server|^round \d+:)")


@dataclass(frozen=True)
class Step:
    """One benchmark script: its arguments for the full and the quick run, and a title."""

    name: str
    title: str
    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]
    timeout_s: int = 900


STEPS = (
    Step("models", "Training step of each shipped preset against the matmul peak (1 thread)", "bench_models.py",
         ("--presets", "--threads", "1", "--precisions", "fp32", "--steps", "5"),
         ("--presets", "--threads", "1", "--precisions", "fp32", "--steps", "1", "--warmup", "1")),
    Step("models_2t", "The same at 2 threads", "bench_models.py",
         ("--presets", "--threads", "2", "--precisions", "fp32", "--steps", "5"),
         ("--presets", "--threads", "2", "--precisions", "fp32", "--steps", "1", "--warmup", "1")),
    Step("levers", "What each CPU lever buys the GAN and HVAE presets (variants interleaved)", "bench_levers.py",
         ("--rounds", "2", "--steps", "3"), ("--only", "dcgan", "--rounds", "1", "--steps", "1")),
    Step("ddp", "Two cores: one process × 2 threads vs 2-process DDP", "bench_ddp.py",
         ("--steps", "60", "--rounds", "2"), ("--presets", "dcgan_synthfaces32_cpu", "--steps", "4", "--rounds", "1")),
    Step("vae_peers", "VAE training step: facelab vs pythae on the same networks and data", "bench_vae_peers.py",
         ("--images", "6400", "--threads", "1", "--profile"), ("--quick",)),
    Step("app", "App latency as users get it (shipped VAE, HVAE and StyleGAN)", "bench_app.py",
         ("assets/vae_synthfaces64", "assets/hvae_synthfaces64", "assets/stylegan32_original", "--repeats", "10"),
         ("assets/vae32_original", "--repeats", "2", "--no-cold-start")),
    Step("synthfaces", "Synthetic faces per core", "bench_synthfaces.py",
         ("--sizes", "32", "64", "128", "--batches", "64", "256"),
         ("--sizes", "32", "--batches", "64", "--images", "256")),
    Step("rembg", "Background removal: one rembg session reused vs a session per image", "bench_rembg.py",
         ("--images", "12"), ("--images", "2", "--size", "64")),
    Step("probes", "Probe fits at seed 000's scale (70,000 × 800) vs scikit-learn", "bench_probes.py",
         ("--attributes", "1,5"), ("--n", "2000", "--solvers", "newton,liblinear", "--attributes", "1")),
)


def matmul_peaks(n: int = 2048, reps: int = 5) -> dict[str, float]:
    """fp32 GFLOP/s of an n×n matmul at 1 and 2 threads: best wall rate and best per CPU-second per thread."""
    out, before = {}, torch.get_num_threads()
    a, b = torch.randn(n, n), torch.randn(n, n)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        a @ b
        wall = cpu = float("inf")
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            a @ b
            wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, (time.process_time() - c0) / threads)
        out[f"{threads} thread wall"], out[f"{threads} thread per CPU-s"] = 2 * n ** 3 / wall / 1e9, 2 * n ** 3 / cpu / 1e9
    torch.set_num_threads(before)
    return out


def keep_markdown(text: str) -> str:
    """The report lines of a script's output: tables and prose, without progress bars and warnings."""
    lines = [ln.rstrip() for ln in text.replace("\r", "\n").splitlines()]
    kept: list[str] = []
    for ln in lines:
        if not ln.startswith("|") and NOISE.search(ln):
            continue
        if kept and kept[-1] and kept[-1].startswith("|") != ln.startswith("|") and ln:
            kept.append("")  # a table needs a blank line on each side to render as one
        kept.append(ln)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def run_step(step: Step, quick: bool) -> tuple[str, float, int]:
    """Run one script in its own process; (its markdown, wall seconds, exit code)."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / step.script), *(step.quick if quick else step.args)]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=path, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=step.timeout_s)
        out, rc = proc.stdout + ("\n" + proc.stderr[-1500:] if proc.returncode else ""), proc.returncode
    except subprocess.TimeoutExpired as err:
        out, rc = f"(stopped after {step.timeout_s} s)\n{err.stdout or ''}", 124
    return keep_markdown(out if isinstance(out, str) else out.decode(errors="replace")), time.perf_counter() - t0, rc


def report(results: list[tuple[Step, str, float, int]], peaks: dict[str, float], quick: bool, total_s: float) -> str:
    """The generated part of BENCHMARKS.md."""
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    head = [f"## Generated by `python benchmarks/run.py{' --quick' if quick else ''}` — "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {total_s / 60:.1f} min",
            "",
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
            f"load average at the start {load}. fp32 matmul peak measured in this run (2048², best of 5):",
            "",
            "| threads | GFLOP/s per wall second | GFLOP/s per CPU-second per thread |",
            "|---:|---:|---:|",
            *[f"| {t} | {peaks[f'{t} thread wall']:.0f} | {peaks[f'{t} thread per CPU-s']:.0f} |" for t in (1, 2)]]
    body = []
    for step, text, seconds, rc in results:
        args = " ".join(step.quick if quick else step.args)
        status = "" if rc == 0 else f" — **exit {rc}**"
        body += ["", f"### {step.title} — `python benchmarks/{step.script} {args}` ({seconds:.0f} s){status}", "",
                 text or "(no output)"]
    return "\n".join([MARK_BEGIN, *head, *body, "", MARK_END])


def write_into(path: Path, generated: str) -> None:
    """Replace the generated part of path (or insert it after the first heading block)."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    if MARK_BEGIN in text and MARK_END in text:
        start, end = text.index(MARK_BEGIN), text.index(MARK_END) + len(MARK_END)
        text = text[:start] + generated + text[end:]
    else:
        first = text.find("\n## ")
        cut = len(text) if first < 0 else first + 1
        text = text[:cut].rstrip("\n") + "\n\n" + generated + "\n\n" + text[cut:]
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Measure the peak, run the chosen steps, print the report and write it into BENCHMARKS.md."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help=f"comma list of {', '.join(s.name for s in STEPS)} (default: all)")
    p.add_argument("--quick", action="store_true", help="each script's smoke settings")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - {s.name for s in STEPS})
    if unknown:
        p.error(f"--only: unknown step(s) {unknown}; choose from {', '.join(s.name for s in STEPS)}")
    t0 = time.perf_counter()
    peaks = matmul_peaks()
    results = []
    for step in [s for s in STEPS if not names or s.name in names]:
        print(f"running {step.name} ...", file=sys.stderr, flush=True)
        results.append((step, *run_step(step, args.quick)))
    generated = report(results, peaks, args.quick, time.perf_counter() - t0)
    print(generated)
    if not args.no_write:
        write_into(args.out, generated)
        print(f"\n(written into {args.out})", file=sys.stderr)
    return 0 if all(rc == 0 for *_, rc in results) else 1


if __name__ == "__main__":
    sys.exit(main())
