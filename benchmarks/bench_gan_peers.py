#!/usr/bin/env python
"""facelab's CPU GAN presets against the GAN trainers a user would pick instead, scored by facelab's FID.

    OMP_NUM_THREADS=1 python benchmarks/bench_gan_peers.py                  # 32 px, 20 min each, 1 thread
    python benchmarks/bench_gan_peers.py --size 32 --budget-min 20 --threads 1 --n-fid 1000 \
        --only facelab-dcgan,facelab-stylegan,stylegan2-pytorch,lightweight-gan
    python benchmarks/bench_gan_peers.py --size 32 --budget-min 0.5 --n-fid 50 --n-images 500 \
        --peer-set lightweight-gan.fmap_max=64                # smoke run (see "Cost per image" below)

Contestants, each trained for the same wall-clock budget on the same images, at the same resolution
and number of threads, one after the other (never side by side), then scored alike:

* facelab-dcgan, facelab-stylegan: training/configs/dcgan_synthfaces32_cpu.yaml and
  stylegan_synthfaces32_cpu.yaml run by training/train.py's own main(), with data.image_size=SIZE,
  data.length=N and data.seed=0 (the exported faces). The budget is enforced without changing
  training/: the worker wraps the step function that train.py's build() returns, and when the
  budget is spent it sets train.max_steps to the current step + 1, so train.py ends as at any
  max_steps: last checkpoint, then the release bundle. 1,000 images are then sampled from the
  bundle (facelab.hub.load_bundle) with facelab.metrics.fid_protocol.generated_images (seed 0, ψ 1,
  StyleGAN's EMA generator; DCGAN keeps none), the protocol's own sampler.
* stylegan2-pytorch 1.9.0 and lightweight-gan 1.2.1 (PyPI): their Trainer classes, imported
  directly, with the keyword defaults of each package's own `stylegan2_pytorch` /
  `lightweight_gan` command line (stylegan2-pytorch: batch 5 x 6 accumulated, network_capacity 16,
  lr 2e-4, ttur 1.5; lightweight-gan: batch 10 x 4 accumulated, attention at 32 px, 1x1
  discriminator output, Adam 2e-4, augmentation probability auto-set from the dataset size).
  Changed: image_size=SIZE; num_workers=0 (their default forks one data worker per core, which
  would use more CPU than --threads allows; facelab's loader runs in the main process too);
  no experiment tracker. Their periodic sample grids and checkpoints stay on, as in facelab's
  presets. `Trainer.train()` (one step) is called until the budget is spent; images seen = steps x
  batch x accumulation. Samples: the peer's own generate functions (stylegan2-pytorch
  `generate_truncated` at ψ 1, lightweight-gan `generate_`) on its EMA generator when the EMA is
  running, i.e. after step 20,000 — before that both packages' EMA generator is only a copy of the
  generator reset every 1,000 steps, so the live generator is sampled (the table's notes say which).

Cost per image at 32 px (forward FLOPs, torch.utils.flop_counter): stylegan2-pytorch's defaults
G 0.23 + D 0.56 GFLOP; lightweight-gan's defaults G 14.1 + D 6.0 GFLOP (fmap_max 512 with 4x4
convolutions, and its attention runs at full resolution when the image is 32 px), so one of its
40-image steps takes minutes on one thread and a short run sees few images — that is what its
command line gives at 32 px. `--peer-set PEER.KEY=VALUE` changes a Trainer argument (e.g.
lightweight-gan.fmap_max=64: G 0.43 + D 1.1 GFLOP) and the table marks the row as changed. A
contestant checks the clock between steps, so its last step may end after the budget: images/s is
images seen over the seconds actually spent.

Peer environments live under --cache (default ~/.cache/facelab-peers/), never in requirements.txt
and never in the facelab venv: `pip install --no-deps --target <cache>/<peer>/site` of the peer and
its import-time pure-Python dependencies (plus kornia-rs, kornia 0.9's small Rust wheel that does
not depend on torch), one package per pip call so a failure names its package. The peer then runs
in the facelab venv's python with PYTHONPATH=<cache>/<peer>/site, on facelab's own CPU torch; no
CUDA torch is ever downloaded. Installed (versions pinned):

* stylegan2-pytorch==1.9.0 kornia==0.9.0 kornia-rs==0.2.0 einops==0.8.2 vector-quantize-pytorch==0.1.0
  fire==0.7.1 termcolor==3.3.0 (stylegan2_pytorch.py imports fire at module level)
* lightweight-gan==1.2.1 kornia==0.9.0 kornia-rs==0.2.0 einops==0.8.2 adabelief-pytorch==0.2.1
  colorama==0.4.6 tabulate==0.10.0

Not installed, because the training path never imports them: retry (command line only), fire for
lightweight-gan (command line only), contrastive-learner (stylegan2-pytorch cl_reg only), aim
(tracker). stylegan2-pytorch imports aim at module level but uses it only with log=True, so a
one-line stub module `aim` is written to its site.

torchvision: both peers import it, but no PyPI wheel imports against torch 2.13.0+cpu — the only
one pairing with it, torchvision 0.28.0, is a CUDA build whose _C.so links libtorch_cuda.so /
libc10_cuda.so (import fails with "operator torchvision::nms does not exist"). So the script writes a
small shim package named `torchvision` into each peer's site (SHIM below, PIL + numpy + torch):
transforms Compose, Lambda, Resize, CenterCrop, RandomResizedCrop, ToTensor, ToPILImage,
functional.resize, and utils.make_grid / save_image — only what the peers use. The exported images
are already SIZE x SIZE, so Resize and CenterCrop leave them unchanged and ToTensor is the whole
data transform, as with the real torchvision.

CUDA on the CPU: both peers `assert torch.cuda.is_available()` at import and move every tensor and
module with `.cuda(rank)`. The peer worker (this script run with --worker) therefore makes
`Tensor.cuda` and `Module.cuda` return their object unchanged, answers True to is_available only
while the peer module is imported, and gives the peer module a view of torch whose
`torch.device("cuda:i")` is the CPU (lightweight-gan allocates its loss accumulators on it). The
peers' code is run unchanged; no checkpoint is loaded by this script (training and sampling share a
process). Only a peer's own NaN recovery reloads its last checkpoint, with its own
torch.load(..., weights_only=True).

Scoring: facelab.metrics.fid_protocol.real_features(SIZE, BACKGROUND, n) gives Inception features
of n held-out synthfaces (test split) and of a disjoint second set; every contestant's n samples
(kept as uint8, the 8 bits an image file holds, which Inception's preprocessing quantises to anyway)
pass through load_inception() + extract_features, and feature_distances gives FID and KID (subsets of
n/2). "data floor" is the FID of the two real sets: the best any model can score at this n.

Work files: <cache>/data/ (exported PNGs, reused when complete), <cache>/runs/<contestant>-<size>px-
<background>/ (spec.json, worker.log, samples.npy uint8 [n,H,W,3], result.json, the trainers' own
outputs), <cache>/results-<size>px-<background>.json (the table's numbers).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_peers_env import ensure_peer, export_images
from gan_peers_spec import CONTESTANTS, DEFAULT_CACHE, FACELAB_PRESETS, PEERS, ROOT, SAMPLE_CHUNK, BenchError
from gan_peers_worker import worker_main


def run_worker(name: str, spec: dict[str, Any], site: Path | None, threads: int, budget_s: float) -> dict[str, Any]:
    """Train + sample one contestant in a fresh process (own threads, PYTHONPATH); its result.json."""
    workdir = Path(spec["workdir"])
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "spec.json").write_text(json.dumps(spec, indent=1))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1",
               TQDM_MININTERVAL="30")  # train.py's progress bar: a line per 30 s in worker.log
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    log = workdir / "worker.log"
    print(f"{name}: training for {budget_s / 60:g} min at {threads} thread(s); log {log}", flush=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(workdir / "spec.json")]
    with open(log, "w") as fh:
        try:
            rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
                                timeout=3 * budget_s + 3600).returncode  # a CPU-clock budget stretches under load
        except subprocess.TimeoutExpired:
            rc = "timeout"
    result = workdir / "result.json"
    if rc != 0 or not result.is_file():
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
        raise BenchError(f"{name}: worker failed (exit {rc}); last lines of {log}:\n{tail}")
    out = json.loads(result.read_text())
    print(f"{name}: {out['images_seen']} images in {out['seconds']:.0f} s "
          f"({out['images_per_s']:.1f}/s), sampled {out['generator']}", flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# Scoring and the table

def score(results: dict[str, dict[str, Any]], size: int, background: str, n: int) -> dict[str, float]:
    """FID / KID of every contestant's samples vs n held-out synthfaces (in place); returns the data floor."""
    from facelab.metrics.fid import extract_features, feature_distances, load_inception
    from facelab.metrics.fid_protocol import real_features

    print(f"scoring: Inception features of 2 x {n} held-out synthfaces and {len(results)} x {n} samples",
          flush=True)
    real_a, real_b, _ = real_features(size, background, n)
    subset = max(2, n // 2)
    floor = feature_distances(real_a, real_b, kid_subset_size=subset)
    inception = load_inception()
    for name, r in results.items():
        if "error" in r:
            continue
        arr = np.load(r["samples_path"])
        if arr.shape != (n, size, size, 3) or arr.dtype != np.uint8:
            r["error"] = f"samples {arr.shape} {arr.dtype}, expected ({n}, {size}, {size}, 3) uint8"
            continue
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        feats = extract_features(inception, [x[i:i + SAMPLE_CHUNK] for i in range(0, n, SAMPLE_CHUNK)])
        d = feature_distances(real_a, feats, kid_subset_size=subset)
        r.update(fid=d["frechet"], kid=d["kid_mean"], kid_std=d["kid_std"])
    return {"fid_floor": floor["frechet"], "kid_floor": floor["kid_mean"]}


def package_of(name: str) -> str:
    """The package/version cell: a peer's PyPI pin, or facelab's version and preset."""
    if name in PEERS:
        return f"{PEERS[name].name} {PEERS[name].version}"
    import facelab

    return f"facelab {facelab.__version__} ({Path(FACELAB_PRESETS[name]).name})"


def table(results: dict[str, dict[str, Any]], floor: dict[str, float], args: argparse.Namespace) -> str:
    """One markdown table, plus notes on how each contestant was sampled and any failures."""
    head = ["contestant", "package/version", "resolution", "threads", "budget min", "images seen",
            "images/s", f"FID ({args.n_fid})", f"KID ({args.n_fid})", "data floor FID"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for name, r in results.items():
        common = [name, package_of(name), f"{args.size} px", str(args.threads), f"{args.budget_min:g} ({args.clock})"]
        if "error" in r:
            lines.append("| " + " | ".join(common + ["failed"] + [""] * 3 + [f"{floor['fid_floor']:.2f}"]) + " |")
            notes.append(f"{name}: {r['error'].splitlines()[0]}")
            continue
        if r.get("overrides"):
            common[1] += " (changed, see notes)"
        cells = [f"{r['images_seen']:,}", f"{r['images_per_s']:.1f}", f"{r['fid']:.2f}",
                 f"{r['kid']:.4f} ± {r['kid_std']:.4f}", f"{floor['fid_floor']:.2f}"]
        lines.append("| " + " | ".join(common + cells) + " |")
        extra = f", augmentation probability {r['aug_prob']:.2f}" if r.get("aug_prob") is not None else ""
        if r.get("overrides"):
            extra += ", CHANGED from its command-line defaults: " + ", ".join(
                f"{k}={v}" for k, v in r["overrides"].items())
        notes.append(f"{name}: {r['steps']:,} step(s) in {r['seconds']:.0f} s, "
                     f"sampled from the {r['generator']}{extra}")
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


# ---------------------------------------------------------------------------------------------
# Command line

def samples_figure(results: dict[str, dict[str, Any]], path: Path, per_row: int = 12, scale: int = 2) -> None:
    """One row of the first samples per contestant (in table order), upscaled, as a PNG."""
    from PIL import Image

    rows = []
    for name, res in results.items():
        if "error" in res or not Path(res.get("samples_path", "")).is_file():
            continue
        imgs = np.load(res["samples_path"])[:per_row]
        imgs = imgs if imgs.dtype == np.uint8 else np.clip(imgs * 255 + 0.5, 0, 255).astype(np.uint8)
        rows.append(np.concatenate(list(imgs), axis=1))
    if rows:
        grid = np.concatenate(rows, axis=0)
        Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(path)
        print(f"samples figure (rows: {', '.join(n for n in results if 'error' not in results[n])}): {path}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: --size --background --budget-min --threads --only --n-fid --n-images --cache."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=32, help="resolution (a power of 2; default 32)")
    p.add_argument("--background", default="original", choices=["original", "grey", "blur"])
    p.add_argument("--budget-min", type=float, default=20.0, help="training wall-clock per contestant (min)")
    p.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                   help="what the budget counts: wall seconds (default; needs an idle machine) or the "
                        "contestant's own CPU seconds / threads (fair when other jobs share the cores)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every contestant (default 1)")
    p.add_argument("--only", default=",".join(CONTESTANTS), help=f"comma list of {', '.join(CONTESTANTS)}")
    p.add_argument("--n-fid", type=int, default=1000, help="samples and held-out images for FID/KID")
    p.add_argument("--n-images", type=int, default=20_000, help="training synthfaces exported (default 20,000)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"work folder (default {DEFAULT_CACHE})")
    p.add_argument("--peer-set", nargs="+", action="extend", default=[], metavar="PEER.KEY=VALUE",
                   help="change a peer Trainer argument (JSON value), e.g. lightweight-gan.fmap_max=64; "
                        "default: each peer's command-line defaults (the table notes any change)")
    p.add_argument("--figure", type=Path, help="also save a PNG: one row of samples per contestant")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one contestant from a spec.json
    args = p.parse_args(argv)
    if args.worker is None:
        args.only = [c.strip() for c in args.only.split(",") if c.strip()]
        unknown = [c for c in args.only if c not in CONTESTANTS]
        if unknown or not args.only:
            p.error(f"--only: unknown contestant(s) {unknown}; choose from {', '.join(CONTESTANTS)}")
        if args.size < 8 or not math.log2(args.size).is_integer():
            p.error(f"--size must be a power of 2 >= 8 (the peers need one), got {args.size}")
        if args.n_fid < 4 or args.threads < 1 or args.budget_min <= 0 or args.n_images < 1:
            p.error("--n-fid >= 4, --threads >= 1, --budget-min > 0 and --n-images >= 1 are required")
        try:
            args.peer_overrides = parse_peer_set(args.peer_set)
        except ValueError as err:
            p.error(str(err))
    return args


def parse_peer_set(items: list[str]) -> dict[str, dict[str, Any]]:
    """--peer-set PEER.KEY=VALUE items -> {peer: {key: value}}; values are JSON (bare words stay strings)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        peer, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise ValueError(f"--peer-set {item!r}: expected PEER.KEY=VALUE, e.g. lightweight-gan.fmap_max=64")
        if peer not in PEERS:
            raise ValueError(f"--peer-set {item!r}: unknown peer {peer!r}; choose from {', '.join(PEERS)}")
        if key in ("name", "base_dir", "image_size"):
            raise ValueError(f"--peer-set {item!r}: {key} is set by the benchmark (image_size: --size)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(peer, {})[key] = value
    return out


def run_contestant(name: str, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """Install (peers), train and sample one contestant; its result, or {'error': ...}."""
    workdir = args.cache.expanduser() / "runs" / f"{name}-{args.size}px-{args.background}"
    spec = {"contestant": name, "workdir": str(workdir), "data": str(data), "size": args.size,
            "background": args.background, "n_images": args.n_images, "budget_s": args.budget_min * 60,
            "threads": args.threads, "clock": args.clock, "n_fid": args.n_fid, "preset": FACELAB_PRESETS.get(name),
            "trainer_overrides": args.peer_overrides.get(name, {})}
    try:
        site = ensure_peer(PEERS[name], args.cache.expanduser()) if name in PEERS else None
        result = run_worker(name, spec, site, args.threads, args.budget_min * 60)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return {"error": str(err)}
    result["samples_path"] = str(workdir / "samples.npy")
    return result


def main(argv: list[str] | None = None) -> int:
    """Export the data, run every contestant in turn, score them, print the table."""
    args = parse_args(argv)
    if args.worker:  # this script re-run by run_worker: one contestant (gan_peers_worker)
        return worker_main(args.worker)
    sys.path.insert(0, str(ROOT))  # this checkout's facelab (peer workers never import it)
    torch.set_num_threads(args.threads)
    cache = args.cache.expanduser()
    data = export_images(cache, args.size, args.background, args.n_images)
    results = {name: run_contestant(name, args, data) for name in args.only}
    from facelab.metrics.fid import InceptionUnavailable

    try:
        floor = score(results, args.size, args.background, args.n_fid)
    except InceptionUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    text = table(results, floor, args)
    path = cache / f"results-{args.size}px-{args.background}.json"
    path.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "floor": floor,
                                "results": results}, indent=1, default=str))
    print(f"\n{text}\n\n(numbers also in {path})")
    if args.figure:
        samples_figure(results, args.figure)
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
