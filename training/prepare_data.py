"""Background variants of a real dataset (seed 002): rembg masks -> grey / blur PNGs on disk.

    python training/prepare_data.py --dataset celeba --root data/celeba [--size 64]
        [--variants grey blur] [--rembg-model u2net | --rembg-model-path file.onnx] [--limit N]

Writes ROOT/facelab_background/<mask|original|grey|blur>/<image path relative to ROOT>.png,
the layout facelab.data.datasets reads. Resumable: outputs that exist are complete (each is
written to a temp file and renamed), so a re-run only fills in what is missing. Images the
data rule refuses (facelab.data.file_checks: not an image, truncated, 1 px wide, fully
transparent; with --size, a short side under SIZE/2) get no outputs and are counted by reason
and listed at the end. One rembg session serves the whole run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

if __package__ in (None, ""):  # run as `python training/prepare_data.py`: make facelab importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from facelab.data import background as bg  # noqa: E402
from facelab.data.datasets import BACKGROUND_DIR as OUT_DIR  # noqa: E402
from facelab.data.datasets import find_images, variant_path  # noqa: E402
from facelab.data.file_checks import LOAD_ERRORS, describe, reason_of, require_usable, tally  # noqa: E402
from facelab.data.transforms import resize_square, to_rgb  # noqa: E402

SETTINGS_FILE = "prepare.json"
CHOICES = ("original", "grey", "blur")


@dataclass
class Report:
    """What one run did."""

    images: int = 0
    complete: int = 0  # images whose outputs all existed already
    written: list[Path] = field(default_factory=list)
    skipped: dict[Path, str] = field(default_factory=dict)  # image -> file_checks skip reason

    @property
    def unreadable(self) -> list[Path]:
        """The images left out, whatever the reason (the name earlier versions gave them)."""
        return list(self.skipped)

    def skipped_by_reason(self) -> dict[str, int]:
        """Images left out per reason."""
        return tally(self.skipped.values())


# --------------------------------------------------------------------------- listing


def list_images(dataset: str, root: Path) -> list[Path]:
    """Image paths relative to root, sorted as facelab.data.datasets lists them."""
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root not found: {root}")
    if dataset != "celeba":
        return find_images(root)
    top = root / "img_align_celeba"
    if not top.is_dir():
        raise FileNotFoundError(f"CelebA images not found: expected the folder {top} (the released layout)")
    return [top.relative_to(root) / rel for rel in find_images(top)]


# --------------------------------------------------------------------------- files


def write_png(image: Image.Image, path: Path) -> None:
    """Write a PNG atomically: a killed run leaves either no file or a complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed temp name: a rerun overwrites what a killed run left instead of piling up files.
    tmp = path.with_name(f".{path.name}.partial")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def load_rgb(path: Path, size: int | None = None) -> Image.Image:
    """Decode an image fully (EXIF orientation applied) -> RGB; raises on broken or refused files."""
    with Image.open(path) as img:
        require_usable(img, size, loaded=False)
        img.load()
        require_usable(img, size)
        return to_rgb(img)


def check_settings(root: Path, settings: dict, overwrite: bool) -> None:
    """Refuse to mix outputs made with other settings (size, masks, blur) into one folder."""
    path = root / OUT_DIR / SETTINGS_FILE
    if overwrite or not path.exists():
        return
    old = json.loads(path.read_text())
    diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
    if diff:
        shown = "; ".join(f"{k}: {a!r} there, {b!r} asked" for k, (a, b) in diff.items())
        raise ValueError(f"{root / OUT_DIR} was prepared with other settings ({shown}). "
                         f"Re-run with the same options to resume, or add --overwrite to redo everything.")


def save_settings(root: Path, settings: dict) -> None:
    """Record the run's settings next to its outputs."""
    path = root / OUT_DIR / SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- one image


def image_and_mask(rgb: Image.Image, mask_path: Path, size: int | None, session: Callable[[], Any],
                   overwrite: bool) -> tuple[Image.Image, np.ndarray]:
    """The image at output geometry and its mask: read back when on disk, else from rembg."""
    if mask_path.exists() and not overwrite:
        with Image.open(mask_path) as img:
            mask = img.convert("L")
    else:
        # rembg sees the whole photo (context helps it); then mask and image share one crop
        mask = bg.mask_to_pil(bg.rembg_mask(rgb, session()))
    if size is not None:
        rgb = resize_square(rgb, size)
        if mask.size != (size, size):
            mask = resize_square(mask, size, resample=Image.BILINEAR)
    if mask.size != rgb.size:
        raise ValueError(f"{mask_path} is {mask.size[0]}x{mask.size[1]} but its image is "
                         f"{rgb.size[0]}x{rgb.size[1]}; re-run with --overwrite")
    return rgb, bg.as_mask(mask)


def process_image(root: Path, rel: Path, variants: Sequence[str], size: int | None,
                  session: Callable[[], Any], blur_radius: float | None, overwrite: bool,
                  report: Report) -> None:
    """Write the missing outputs of one image; an image the rule refuses is recorded with its reason, not raised."""
    outs = {v: variant_path(root, rel, v) for v in ("mask", *variants)}
    todo = [v for v, p in outs.items() if overwrite or not p.exists()]
    if not todo:
        report.complete += 1
        return
    try:
        rgb = load_rgb(root / rel, size)
    except LOAD_ERRORS as err:  # broken, truncated, not an image, or refused by the data rule
        report.skipped[rel] = reason_of(err)
        return
    rgb, mask = image_and_mask(rgb, outs["mask"], size, session, overwrite)
    pils = bg.variants(rgb, mask, blur_radius)
    for v in todo:
        write_png(pils[v], outs[v])
        report.written.append(outs[v])


# --------------------------------------------------------------------------- whole dataset


def prepare(dataset: str, root: Path, variants: Sequence[str] = ("grey", "blur"), size: int | None = None,
            session: Callable[[], Any] | None = None, limit: int | None = None,
            blur_radius: float | None = None, overwrite: bool = False, mask_source: str = "rembg:u2net",
            progress: bool = True) -> Report:
    """Masks + variants of every image of a dataset under root/facelab_background; returns a Report.

    session is called (once, lazily: a finished dataset never loads rembg) for the rembg session.
    """
    root = Path(root)
    unknown = [v for v in variants if v not in CHOICES]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {', '.join(CHOICES)}")
    settings = {"size": size, "mask_source": mask_source, "blur_radius": blur_radius}
    check_settings(root, settings, overwrite)
    rels = list_images(dataset, root)[:limit]
    if not overwrite:
        save_settings(root, settings)  # written first so an interrupted run is protected too
    cache: list[Any] = []
    get = session or (lambda: bg.get_session())

    def once() -> Any:
        if not cache:
            cache.append(get())
        return cache[0]

    report = Report(images=len(rels))
    bar = tqdm(rels, desc=f"prepare {dataset}", unit="img", disable=not progress, file=sys.stderr)
    for rel in bar:
        process_image(root, rel, variants, size, once, blur_radius, overwrite, report)
        bar.set_postfix(written=len(report.written), skipped=len(report.skipped), refresh=False)
    if overwrite:
        save_settings(root, settings)  # only once everything matches the new settings
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, choices=("celeba", "ffhq", "folder"))
    p.add_argument("--root", required=True, type=Path,
                   help="dataset folder; outputs go under ROOT/facelab_background")
    p.add_argument("--size", type=int, default=None,
                   help="centre-crop + resize to SIZE×SIZE (default: keep each image's size)")
    p.add_argument("--variants", nargs="+", default=["grey", "blur"], choices=CHOICES,
                   help="variants written beside the mask (default: grey blur)")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--rembg-model", default="u2net", choices=tuple(bg.REMBG_MODELS),
                       help="named rembg model, found in or downloaded to $REMBG_HOME (default: u2net)")
    model.add_argument("--rembg-model-path", type=Path, default=None,
                       help="custom U2-Net-style ONNX file, inside $REMBG_HOME or $U2NET_HOME as rembg requires")
    p.add_argument("--blur-radius", type=float, default=None, help="Gaussian radius for blur (default: side/16)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images (sorted paths)")
    p.add_argument("--overwrite", action="store_true", help="rewrite every output, even complete ones")
    args = p.parse_args(argv)
    for name in ("size", "limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be a positive integer")
    if args.blur_radius is not None and args.blur_radius <= 0:
        p.error("--blur-radius must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; 0 on success (skipped images are reported, not fatal), 2 on bad input."""
    args = parse_args(argv)
    if args.rembg_model_path is not None:
        name, path = bg.CUSTOM_MODEL, args.rembg_model_path
        source = f"rembg:{name}:{path.name}"
    else:
        name, path, source = args.rembg_model, None, f"rembg:{args.rembg_model}"
    try:
        report = prepare(args.dataset, args.root, args.variants, args.size,
                         session=lambda: bg.get_session(name, path), limit=args.limit,
                         blur_radius=args.blur_radius, overwrite=args.overwrite, mask_source=source)
    except (FileNotFoundError, ValueError, ImportError, RuntimeError) as exc:
        print(f"prepare_data: error: {exc}", file=sys.stderr)
        return 2
    print(f"{report.images} images: {len(report.written)} files written, {report.complete} already complete, "
          f"{len(report.skipped)} skipped ({describe(report.skipped_by_reason())})")
    for rel, reason in report.skipped.items():
        print(f"  skipped ({reason}): {args.root / rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
