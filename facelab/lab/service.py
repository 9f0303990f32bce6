"""FaceLab: the service the app calls. Holds cached bundles; every method takes plain values
and returns PIL images / numbers / figures, so the UI stays a thin layer and the API is testable alone.

The work is done by the package's other modules, one per concern (see facelab/lab/__init__.py).
Nothing here is per user: the app keeps per-session values in gr.State.
Every number and list a method takes is checked here (facelab.lab.inputs), not only by the UI's sliders:
clients can send JSON straight to the endpoints.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from facelab.data import background, synthfaces
from facelab.hub import Bundle
from facelab.imaging import from_pil, to_pil
from facelab.lab.bundles import (ASSETS_DIR, BundleCatalog, LabError, ProgressFn, default_device, default_sources,
                                 is_early)
from facelab.lab.inputs import (FPS, FRAMES, IMAGE_SIZE, MAX_LIST, MAX_MODELS, PSI, SAMPLES, STRENGTH, TEMPERATURE,
                                bounded, number, unique, whole)
from facelab.lab.inputs import seed as checked_seed  # methods take an argument called seed
from facelab.lab.latents import (Code, default_temperatures, edit_levels, encode, random_code, require_encoder,
                                 sample_images)
from facelab.lab.photos import prepare_photo

__all__ = ["FaceLab", "LabError", "FaceSpec"]
MAX_GENERATE = SAMPLES[1]
START_SOURCES = ("seed", "example", "photo")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass
class FaceSpec:
    """Where a face comes from: a seed (sampled from the prior), synthetic example #seed or a photo (encoded)."""

    source: str = "seed"
    seed: int = 0
    photo: Any = None


def _noop(frac: float, desc: str) -> None:
    return None


def _photo_key(photo: Any) -> str:
    """Content hash of an upload (path or PIL image): the same photo hits the same cache entry."""
    h = hashlib.sha1()
    if isinstance(photo, Image.Image):
        h.update(photo.tobytes())
    elif isinstance(photo, (str, Path)) and Path(photo).is_file():
        h.update(Path(photo).read_bytes())
    else:
        h.update(repr(photo).encode())
    return h.hexdigest()


@dataclass
class FaceLab:
    """Cached models and the operations the app exposes; safe to share between sessions."""

    model_sources: list[str] | None = None  # None: every bundle folder under assets/
    device: str | None = None  # None: the GPU when there is one
    rembg_model: str = field(default_factory=lambda: os.environ.get("FACELAB_REMBG_MODEL", "u2net"))
    classifier_path: str | None = field(default_factory=lambda: os.environ.get("FACELAB_CLASSIFIER"))
    assets_dir: Path = ASSETS_DIR
    _catalog: BundleCatalog | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _classifiers: dict[str, Any] = field(default_factory=dict, repr=False)
    _work_dir: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.model_sources is None:
            self.model_sources = default_sources(self.assets_dir)
        self.device = self.device or default_device()
        self._catalog = BundleCatalog(list(self.model_sources), self.device, self.assets_dir)

    # ---- models ------------------------------------------------------------------------
    @property
    def catalog(self) -> BundleCatalog:
        """The bundle catalogue (each bundle loaded once)."""
        assert self._catalog is not None
        return self._catalog

    def load(self, progress: ProgressFn | None = None) -> list[list[str]]:
        """Load every model now (cold start) and return the model table."""
        self.catalog.load_all(progress)
        return self.models_table()

    def models_table(self) -> list[list[str]]:
        """[name, kind, size, data, status] for every source, failed ones with their error."""
        return self.catalog.status_rows()

    def models_message(self) -> str:
        """One line about the catalogue: how many models are ready, or what to do when none is."""
        loaded, total = len(self.catalog.names()), len(self.catalog.entries())
        if not loaded:
            return self.catalog.empty_message()
        early = len(self.catalog.names(lambda b: is_early(b.meta)))
        broken = total - loaded
        return (f"{loaded - early} model(s) ready" + (f"; {early} early run(s) whose samples are not faces yet"
                                                       if early else "")
                + (f"; {broken} failed to load (see the table)" if broken else ""))

    def model_names(self, need: str = "any") -> list[str]:
        """Loaded models able to do something: any, encoder, stylegan, probed, conditional."""
        return self.catalog.names(self._capability(need))

    def model_choices(self, need: str = "any") -> list[tuple[str, str]]:
        """(label, name) pairs for a model picker: as model_names, early runs labelled as such."""
        return self.catalog.choices(self._capability(need))

    @staticmethod
    def _capability(need: str) -> Callable[[Bundle], bool]:
        """The bundle predicate of a capability name (model_names, model_choices)."""
        tests = {
            "any": lambda b: True,
            "encoder": lambda b: b.model.is_encoder,
            "stylegan": lambda b: b.model.kind == "stylegan",
            "probed": lambda b: "probes" in b.extras,
            "conditional": lambda b: b.model.kind == "cvae" or "probes" in b.extras,
        }
        if need not in tests:
            raise ValueError(f"unknown capability {need!r}; choose one of {', '.join(tests)}")
        return tests[need]

    def bundle(self, name: str | None) -> Bundle:
        """The loaded bundle called name (LabError when unknown or broken)."""
        return self.catalog.get(name)

    def model_info(self, name: str | None) -> dict[str, Any]:
        """What the UI needs to adapt to a model: kind, levels, style inputs, attributes."""
        from facelab.lab.conditional import target_attributes

        b = self.bundle(name)
        m = b.model
        return {"name": b.name, "kind": m.kind, "image_size": m.image_size, "is_encoder": m.is_encoder,
                "levels": [s.name for s in edit_levels(b)], "num_ws": int(m.num_ws) if m.kind == "stylegan" else 0,
                "attributes": target_attributes(b), "probed": "probes" in b.extras,
                "temperatures": default_temperatures(b)}

    # ---- faces -------------------------------------------------------------------------
    def prepare_photo(self, photo: Any, size: int = 128) -> tuple[Image.Image, str]:
        """An upload checked, normalised and face-cropped to size×size, and how the face was found."""
        return prepare_photo(photo, whole(size, "photo size", *IMAGE_SIZE))

    def photo_face(self, photo: Any, size: int, cache: dict | None = None) -> tuple[Image.Image, str]:
        """prepare_photo through a caller-owned cache (the app passes the session's gr.State dict)."""
        size = whole(size, "photo size", *IMAGE_SIZE)
        key = (_photo_key(photo), size)
        if cache is not None and key in cache:
            return cache[key]
        out = prepare_photo(photo, size)
        if cache is not None:
            if len(cache) >= 4:  # a session needs its last few photos, not all of them
                cache.pop(next(iter(cache)))
            cache[key] = out
        return out

    def face_code(self, b: Bundle, face: FaceSpec, temperature: float = 1.0, psi: float = 1.0,
                  cache: dict | None = None) -> tuple[Code, str]:
        """One face's code: sampled from the seed, or the uploaded photo encoded; and a note on how."""
        if face.source not in START_SOURCES:
            raise LabError(f"a face comes from one of {', '.join(START_SOURCES)}; got {face.source!r}")
        if face.source == "seed":
            s, t = checked_seed(face.seed), number(temperature, "temperature", *TEMPERATURE)
            return random_code(b, 1, s, t, number(psi, "truncation ψ", *PSI)), f"seed {s}"
        require_encoder(b)  # before touching the photo: a GAN cannot use it anyway
        if face.source == "example":
            s = checked_seed(face.seed, "example number")
            img = self.example_face(s, b.model.image_size, str(b.meta.get("background") or "original"))
            return encode(b, from_pil(img)[None]), f"synthetic example {s}"
        img, how = self.photo_face_for(b, face.photo, cache)
        return encode(b, from_pil(img)[None]), f"photo ({how})"

    def photo_face_for(self, b: Bundle, photo: Any, cache: dict | None = None) -> tuple[Image.Image, str]:
        """An uploaded photo as the bundle saw its training faces: cropped, and on its background variant.

        A model trained on grey (or blurred) backgrounds is not background-blind: shown a background it
        never saw, its code spends more on it than an original-trained model's does
        (benchmarks/bench_background_share.py). So its photos get the same rembg mask and composite first.
        """
        variant = str(b.meta.get("background") or "original")
        size = int(b.model.image_size)
        if variant == "original":
            return self.photo_face(photo, size, cache)
        try:
            var = self.background_variants("photo", photo=photo, cache=cache)
        except LabError as err:  # no rembg model (offline): encode it as it is, and say so
            img, how = self.photo_face(photo, size, cache)
            return img, f"{how}; background kept, so expect a poorer code ({err})"
        img = var.images[variant].resize((size, size), Image.LANCZOS)
        return img, f"{var.how}; background → {variant}, as in the model's training data"

    def example_face(self, number: int, size: int, variant: str = "original") -> Image.Image:
        """Synthetic face #number (factors from the prior) in a background variant, size×size."""
        number, size = checked_seed(number, "example number"), whole(size, "image size", 1, IMAGE_SIZE[1])
        # rendered at the model's size, as its training data was (tiny sizes: rendered at the minimum, resized)
        img = self.synth_face(self.random_factors(number), number, max(size, synthfaces.MIN_SIZE))[variant]
        return img if img.size == (size,) * 2 else img.resize((size, size), Image.LANCZOS)

    def example_photos(self) -> list[str]:
        """Example photos shipped in assets/examples (none is fine)."""
        folder = Path(self.assets_dir) / "examples"
        return sorted(str(p) for p in folder.glob("*") if p.suffix.lower() in PHOTO_SUFFIXES) \
            if folder.is_dir() else []

    # ---- generate ----------------------------------------------------------------------
    def generate(self, name: str | None, n: int, seed: int, temperature: float = 1.0,
                 level_temperatures: Sequence[float] | None = None, psi: float = 1.0,
                 progress: ProgressFn | None = None) -> list[Image.Image]:
        """n samples from the prior (HVAE: one temperature per level; StyleGAN: truncation ψ)."""
        b = self.bundle(name)
        n, s = whole(n, "number of samples", *SAMPLES), checked_seed(seed)
        temps: Any = number(temperature, "temperature", *TEMPERATURE)
        psi = number(psi, "truncation ψ", *PSI)
        if b.model.kind == "hvae":
            k = len(b.model.latent_levels)
            given = [number(t, f"temperature of level {i}", *TEMPERATURE)
                     for i, t in enumerate(bounded(level_temperatures, "per-level temperatures", MAX_LIST))] or [temps]
            temps = (given + [given[-1]] * k)[:k]  # levels beyond the sliders repeat the last value
        (progress or _noop)(0.0, f"sampling {n} faces from {b.name}")
        return to_pil(sample_images(b, n, s, temps, psi))

    # ---- conditional sampling ------------------------------------------------------------
    def target_choices(self, name: str | None) -> list[str]:
        """'Attribute = 1' / 'Attribute = 0' picks for the conditional tab."""
        from facelab.lab.conditional import target_attributes

        return [f"{a} = {v}" for a in target_attributes(self.bundle(name)) for v in (1, 0)]

    def classifier(self, b: Bundle) -> Any | None:
        """The image attribute classifier judging b's samples (explicit, in the bundle, or in assets/)."""
        # the bundle's own classifier only where it really lies inside the bundle (no link out)
        inside = [b.path / d for d in ("attribute_classifier", "classifier") if b.file(d, "config.json")]
        candidates = [self.classifier_path, *inside, Path(self.assets_dir) / "attribute_classifier"]
        for cand in candidates:
            if cand and (Path(cand) / "config.json").is_file():
                key = str(Path(cand).resolve())
                with self._lock:
                    if key not in self._classifiers:
                        from facelab.models.classifier import load_attribute_classifier

                        self._classifiers[key] = load_attribute_classifier(key, self.device)
                    return self._classifiers[key]
        return None

    def conditional(self, name: str | None, targets: Sequence[str] | dict[str, int], n: int, seed: int,
                    method: str = "rejection", variant: str = "per_level", levels: Sequence[str] | None = None,
                    progress: ProgressFn | None = None) -> dict[str, Any]:
        """Samples meeting attribute targets, the acceptance rate, and the classifier's verdict per sample."""
        from facelab.lab.conditional import parse_targets, sample
        from facelab.lab.present import conditional_report

        b = self.bundle(name)
        n, s = whole(n, "number of samples", *SAMPLES), checked_seed(seed)
        levels = bounded(levels, "constrained levels") or None
        goals = parse_targets(dict(bounded(targets.items(), "targets")) if isinstance(targets, dict)
                              else bounded(targets, "targets"))
        (progress or _noop)(0.0, f"sampling under {goals}")
        out = sample(b, goals, n, s, method, variant, levels, self.classifier(b))
        hvae = b.model.kind == "hvae"  # only the HVAE has per-level vs cumulative classifiers and levels
        shown = "cvae" if b.model.kind == "cvae" else method  # a CVAE ignores the method: it is conditioned
        return conditional_report(out, shown, variant if hvae else None, levels if hvae else None)

    # ---- traversal -----------------------------------------------------------------------
    def axis_choices(self, name: str | None, level: str | None, kind: str) -> list[str]:
        """The axes a traversal can use on a level: dimensions, PCs or attribute names."""
        from facelab.lab.traverse import axis_choices

        return axis_choices(self.bundle(name), level, kind)

    def traversal(self, name: str | None, level: str | None, kind: str, axes: Sequence[str], span: float,
                  steps: int, face: FaceSpec, psi: float = 1.0, cache: dict | None = None,
                  progress: ProgressFn | None = None) -> tuple[Image.Image, dict[str, Any]]:
        """Seed 001's traversal grid: one row per axis, columns from -span to +span."""
        from facelab.lab.present import traversal_figure
        from facelab.lab.traverse import AXIS_KINDS, dimension_order, make_axes, offsets, traverse

        b = self.bundle(name)
        chosen = make_axes(b, level, kind, axes)
        offsets(span, steps)  # checked before the start face is made, so these conversions are safe
        span, steps = float(span), int(float(steps))
        (progress or _noop)(0.1, "encoding the start face" if face.source == "photo" else "sampling the start")
        start, how = self.face_code(b, face, psi=psi, cache=cache)
        (progress or _noop)(0.4, f"decoding {len(chosen)}×{int(steps)} faces")
        images = traverse(b, start, level, chosen, span, steps)
        grid, meta = traversal_figure(images, chosen, span, steps, how)
        if kind == AXIS_KINDS[0]:
            meta["dimensions"] = dimension_order(b, level)[1]
        return grid, meta

    # ---- morphing and arithmetic -----------------------------------------------------------
    def morph(self, name: str | None, a: FaceSpec, b_face: FaceSpec, frames: int = 8, method: str = "spherical",
              fps: float = 8.0, cache: dict | None = None,
              progress: ProgressFn | None = None) -> tuple[Image.Image, str, dict[str, Any]]:
        """Frame strip, animated GIF path and info for a morph from face a to face b."""
        from facelab.lab.morph import morph
        from facelab.lab.present import morph_outputs

        b = self.bundle(name)
        frames, fps = whole(frames, "frames", *FRAMES), number(fps, "GIF frames per second", *FPS)
        (progress or _noop)(0.1, "placing both faces in latent space")
        code_a, how_a = self.face_code(b, a, cache=cache)
        code_b, how_b = self.face_code(b, b_face, cache=cache)
        (progress or _noop)(0.4, f"decoding {int(frames)} frames")
        images = to_pil(morph(b, code_a, code_b, frames, method))
        strip, gif, info = morph_outputs(images, fps)
        info.update({"from": how_a, "to": how_b, "interpolation": method})
        return strip, self._save(gif, ".gif"), info

    def arithmetic(self, name: str | None, face: FaceSpec, level: str | None, terms: dict[str, float],
                   cache: dict | None = None) -> tuple[Image.Image, dict[str, Any]]:
        """Seeds 003/004's vector arithmetic: the face, each edit alone, and all edits together."""
        from facelab.lab.morph import arithmetic
        from facelab.lab.render import labelled_grid

        b = self.bundle(name)
        if not isinstance(terms, dict):
            raise LabError("attribute terms must map names to strengths, e.g. {'Smiling': 1.5}")
        terms = {str(k): number(v, f"strength of {k}", *STRENGTH) for k, v in bounded(terms.items(), "attribute terms")}
        start, how = self.face_code(b, face, cache=cache)
        images, labels, key = arithmetic(b, start, level, terms)
        strip, layout = labelled_grid([to_pil(images)], col_labels=labels)
        return strip, {**layout.as_dict(), "start": how, "labels": labels, "directions": key}

    # ---- style mixing ----------------------------------------------------------------------
    def style_mix(self, name: str | None, row_seeds: str | Sequence[int], col_seeds: str | Sequence[int],
                  first: int, last: int, psi: float = 1.0) -> tuple[Image.Image, dict[str, Any]]:
        """Seed 002's style blending grid: row faces keep their styles except layers first..last from columns."""
        from facelab.lab.present import style_figure
        from facelab.lab.style import layer_range, parse_seeds, style_mix

        b = self.bundle(name)
        rows, cols = parse_seeds(row_seeds, "row seeds"), parse_seeds(col_seeds, "column seeds")
        layers = layer_range(b, first, last)
        row_img, col_img, mixed = style_mix(b, rows, cols, layers, number(psi, "truncation ψ", *PSI))
        return style_figure(row_img, col_img, mixed, rows, cols, layers)

    # ---- background ------------------------------------------------------------------------
    def background_variants(self, source: str, example_seed: int = 0, photo: Any = None,
                            cache: dict | None = None) -> Any:
        """Original / grey / blur variants and mask of a synthetic example or an uploaded photo."""
        from facelab.lab.background import WORK_SIZE, example_variants, photo_variants

        if source not in ("example", "photo"):
            raise LabError(f"the face comes from 'example' or 'photo'; got {source!r}")
        seed = checked_seed(example_seed, "example seed") if source == "example" else 0
        key = ("background", source, seed if source == "example" else _photo_key(photo))
        if cache is not None and key in cache:
            return cache[key]
        if source == "example":
            out = example_variants(self.synth_face(self.random_factors(seed), seed, WORK_SIZE))
        else:
            face, how = self.photo_face(photo, WORK_SIZE, cache)
            out = photo_variants(face, how, self.rembg_model)
        if cache is not None:
            cache[key] = out
        return out

    def background_view(self, source: str, example_seed: int = 0, photo: Any = None,
                        cache: dict | None = None) -> tuple[dict[str, Image.Image | None], str]:
        """The Background tab's four images (original, mask, grey, blur) and a note. A photo that cannot
        be masked (no rembg model offline) still shows its crop, with the reason where the note goes."""
        from facelab.lab.background import WORK_SIZE

        keys = ("original", "mask", "grey", "blur")
        try:
            v = self.background_variants(source, example_seed, photo, cache)
        except LabError as err:
            if source != "photo" or photo is None:
                raise
            face, how = self.photo_face(photo, WORK_SIZE, cache)
            return ({k: face if k == "original" else None for k in keys},
                    f"{how}. No mask, so no grey or blurred variant: {err}")
        return {k: v.images.get(k) for k in keys}, f"mask: {v.how}"

    def background_compare(self, names: Sequence[str], variants: Any) -> dict[str, Any]:
        """Reconstructions, PCA curves, background share and metric table for models trained on each variant."""
        from facelab.lab.present import background_report

        # bounded and de-duplicated before any model runs: 3,000 copies of one name once took 50 s
        names = unique(str(n) for n in bounded(names, "models to compare", MAX_LIST))
        if not names:
            raise LabError("pick at least one model to compare (e.g. one trained on original, one on grey)")
        if len(names) > MAX_MODELS:
            raise LabError(f"compare at most {MAX_MODELS} models at once; got {len(names)}")
        return background_report([self.bundle(n) for n in names], variants)

    # ---- results ---------------------------------------------------------------------------
    def results(self, name: str | None) -> dict[str, Any]:
        """Per bundle: summary, metrics, probe tables, disentanglement, FID, PCA spectrum, curves, samples."""
        from facelab.lab.present import results_report

        return results_report(self.bundle(name))

    @staticmethod
    def study_titles() -> list[str]:
        """Titles of RESULTS.md's seed sections, in order (empty when RESULTS.md is missing)."""
        from facelab.lab.studies import study_sections

        return [s["title"] for s in study_sections()]

    @staticmethod
    def study(title: str | None) -> dict[str, Any]:
        """One seed section of RESULTS.md: {"markdown", "figures": [(path, caption)]}; default the first."""
        from facelab.lab.studies import study_sections

        sections = study_sections()
        if not sections:
            raise LabError("RESULTS.md is missing: regenerate it with `python training/results.py`")
        chosen = sections[0] if not title else next((s for s in sections if title in (s["title"], s["id"])), None)
        if chosen is None:
            raise LabError(f"no study named {str(title)[:80]!r}; choose one of: "
                           + "; ".join(s["title"] for s in sections))
        return {"markdown": chosen["markdown"], "figures": chosen["figures"]}

    # ---- files -----------------------------------------------------------------------------
    def _save(self, data: bytes, suffix: str) -> str:
        """Write bytes to the lab's scratch folder under a content name (same content, same file)."""
        with self._lock:
            if self._work_dir is None:
                self._work_dir = tempfile.mkdtemp(prefix="facelab-")
        path = Path(self._work_dir) / f"{hashlib.sha1(data).hexdigest()[:16]}{suffix}"
        if not path.exists():
            tmp = path.with_suffix(path.suffix + f".{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return str(path)

    # ---- synthetic faces -------------------------------------------------------------------
    @staticmethod
    def factor_choices() -> dict[str, list[tuple[str, int]]]:
        """Per factor, (label, value) pairs for UI pickers."""
        return {name: [(label, i) for i, label in enumerate(synthfaces.FACTOR_VALUE_NAMES[name])]
                for name in synthfaces.FACTOR_NAMES}

    @staticmethod
    def random_factors(seed: int) -> dict[str, int]:
        """Factors drawn from synthfaces' correlated prior for a seed."""
        f = synthfaces.sample_factors(np.random.default_rng(checked_seed(seed)), 1)[0]
        return {name: int(v) for name, v in zip(synthfaces.FACTOR_NAMES, f)}

    @staticmethod
    def synth_face(factors: dict[str, int], seed: int = 0, size: int = 128) -> dict[str, Any]:
        """Render one synthetic face: its original/grey/blur variants, mask and attributes."""
        values = np.array([[_factor(factors, n) for n in synthfaces.FACTOR_NAMES]], dtype=np.int64)
        size = whole(size, "image size", max(IMAGE_SIZE[0], synthfaces.MIN_SIZE), IMAGE_SIZE[1])
        rgb, mask = synthfaces.render(values, size=size, seeds=np.array([checked_seed(seed, "detail seed")]))
        out: dict[str, Any] = {v: Image.fromarray(background.composite(rgb[0], mask[0], v))
                               for v in background.VARIANTS}
        out["mask"] = Image.fromarray((mask[0] * 255).round().astype(np.uint8), "L")
        attrs = synthfaces.attributes_from_factors(values)[0]
        out["attributes"] = {n: int(a) for n, a in zip(synthfaces.ATTRIBUTE_NAMES, attrs)}
        return out


def _factor(factors: dict[str, Any], name: str) -> int:
    """One synthetic-face factor value, checked against the values the factor has."""
    if not isinstance(factors, dict) or name not in factors:
        raise LabError(f"factor {name} is missing; give every factor: {', '.join(synthfaces.FACTOR_NAMES)}")
    options = synthfaces.FACTOR_VALUE_NAMES[name]
    return whole(factors[name], f"factor {name}", 0, len(options) - 1)
