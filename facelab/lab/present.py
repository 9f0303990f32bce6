"""Turn the lab's tensors and records into what each tab shows: captioned images, grids, tables, figures."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from facelab.hub import Bundle
from facelab.imaging import to_pil
from facelab.lab.conditional import Conditioned, precision
from facelab.lab.render import gif_bytes, labelled_grid


def conditional_report(out: Conditioned, method: str, variant: str | None,
                       levels: Sequence[str] | None) -> dict[str, Any]:
    """Images with per-sample verdict captions, a summary, and a verdict table."""
    names = list(out.targets)
    captions, rows = [], []
    for i in range(len(out.images)):
        if out.verdict is not None:
            probs = out.verdict[i]
            marks = [_meets(p, out.targets[a]) for a, p in zip(names, probs)]
            # short: a caption sits over its thumbnail; the probabilities are in the verdict table
            captions.append(f"#{i} {'✓' if all(marks) else '✗'}")
            rows.append([i, *[round(float(p), 3) if np.isfinite(p) else None for p in probs],
                         "yes" if all(marks) else "no"])
        else:
            captions.append(f"#{i} {'✓' if out.satisfied[i] else '✗'} (probes)")
            rows.append([i, *["" for _ in names], "yes" if out.satisfied[i] else "no"])
    prec = precision(out)
    lines = [f"**targets**: {', '.join(f'{a} = {v}' for a, v in out.targets.items())}",
             f"**method**: {'conditional VAE' if method == 'cvae' else method}"
             + (f", {variant.replace('_', '-')} classifiers" if variant else "")
             + (f", constrained levels {', '.join(levels)}" if levels else ""),
             _method_line(out, method),
             f"**probes satisfied**: {out.satisfied.mean():.0%} of samples"]
    if prec is not None:
        lines.append("**image classifier precision**: " + ", ".join(f"{a} {p:.0%}" for a, p in prec.items()))
    lines += [f"_{note}_" for note in out.notes]
    verdict_head = [f"P({a})" for a in names]
    return {"images": to_pil(out.images), "captions": captions, "summary": "  \n".join(lines),
            "headers": ["sample", *verdict_head, "all targets met"], "rows": rows,
            "acceptance_rate": dict(out.acceptance_rate), "precision": prec}


def _method_line(out: Conditioned, method: str) -> str:
    """What the method did, in its own terms: draws kept (rejection), faces moved (shift, nearest)."""
    per_level = lambda f: ", ".join(f"{k}: {f(v):.0%}" for k, v in out.acceptance_rate.items())  # noqa: E731
    if method == "cvae":
        return "**conditioning**: the targets are the decoder's inputs; no draw is rejected or moved"
    if method == "rejection":
        return f"**draws kept** (met the targets as drawn): {per_level(lambda v: v)}"
    return (f"**moved onto the target side**: {per_level(lambda v: 1 - v)} of the drawn faces "
            f"(the rest already met the targets as drawn)")


def _meets(p: float, target: int) -> bool:
    """The classifier's probability p is on the target's side; a NaN or infinite p never is."""
    return bool(np.isfinite(p)) and (p > 0.5) == bool(target)


def traversal_figure(images: torch.Tensor, axes: Sequence[Any], span: float, steps: int,
                     how: str) -> tuple[Image.Image, dict[str, Any]]:
    """Seed 001's layout: one labelled row per axis, offsets along the top."""
    pics = to_pil(images)
    steps = int(steps)
    cells = [pics[r * steps:(r + 1) * steps] for r in range(len(axes))]
    # float32 linspace puts ±6e-08 where 0 belongs: round so the middle column reads "+0"
    ts = [round(t, 6) + 0.0 for t in torch.linspace(-float(span), float(span), steps).tolist()]
    grid, layout = labelled_grid(cells, [a.label for a in axes], [f"{t:+.2g}" for t in ts])
    return grid, {"start": how, "axes": [a.label for a in axes], "offsets": [round(t, 4) for t in ts],
                  **layout.as_dict()}


def morph_outputs(frames: Sequence[Image.Image], fps: float) -> tuple[Image.Image, bytes, dict[str, Any]]:
    """A labelled frame strip, an animated GIF (at the model's size) and info."""
    n = len(frames)
    strip, layout = labelled_grid([list(frames)], col_labels=[f"{i / max(1, n - 1):.2f}" for i in range(n)])
    # the GIF at the strip's cell size: small models' faces stay visible, pixels unblurred
    return strip, gif_bytes(frames, fps, layout.cell), {"frames": n, "fps": float(fps), **layout.as_dict()}


def style_figure(row_img: torch.Tensor, col_img: torch.Tensor, mixed: torch.Tensor, rows: Sequence[int],
                 cols: Sequence[int], layers: range) -> tuple[Image.Image, dict[str, Any]]:
    """StyleGAN's mixing figure: column faces on top, row faces on the left, mixes inside."""
    r_pics, c_pics, m_pics = to_pil(row_img), to_pil(col_img), to_pil(mixed)
    blank = Image.new("RGB", c_pics[0].size, (255, 255, 255))
    cells = [[blank, *c_pics]] + [[r_pics[i], *m_pics[i * len(cols):(i + 1) * len(cols)]] for i in range(len(rows))]
    labels = ["", *[f"seed {s}" for s in cols]]
    row_labels = ["", *[f"seed {s}" for s in rows]]
    grid, layout = labelled_grid(cells, row_labels, labels)
    return grid, {"row_seeds": list(rows), "column_seeds": list(cols),
                  "layers_from_columns": [layers.start, layers.stop - 1], **layout.as_dict()}


def background_report(bundles: Sequence[Bundle], variants: Any) -> dict[str, Any]:
    """Each model's input variant beside its reconstruction, PCA curves, background share, metric table."""
    from facelab.lab.background import comparison_plots, comparison_table, reconstruction

    rows, labels, notes = [], [], []
    for b in bundles:
        pair, caption = reconstruction(b, variants)
        if pair is None:
            notes.append(caption)
        else:
            rows.append(list(pair))
            labels.append(caption)
    grid, layout = labelled_grid(rows, labels, ["input", "output"]) if rows else (None, None)
    curves, shares = comparison_plots(bundles)
    if curves is None:
        notes.append("no bundle has a PCA basis yet (run training/probe.py)")
    if shares is None:
        notes.append("no bundle reports a background share of variance yet (run training/evaluate.py)")
    return {"reconstructions": grid, "layout": None if layout is None else layout.as_dict(), "captions": labels,
            "pca": curves, "share": shares, "headers": ["metric", *[b.name for b in bundles]],
            "rows": comparison_table(bundles), "notes": notes}


def results_report(bundle: Bundle) -> dict[str, Any]:
    """Everything the Results tab shows for one bundle."""
    from facelab.lab.results import (
        DISENTANGLEMENT_KEYS, FID_KEYS, curves_figure, metric_notes, metrics, metrics_markdown, pick,
        probe_tables_markdown, spectrum_figure, summary_markdown,
    )

    values = metrics(bundle)
    curves, note = curves_figure(bundle)
    spectrum = spectrum_figure(bundle)
    samples = bundle.file("samples.png")  # None when missing, or when a link would lead out of the bundle
    how = f"`python training/evaluate.py {bundle.path}`"
    return {
        "summary": summary_markdown(bundle),
        "metrics": metrics_markdown(values, "All metrics", f"none yet — run {how}")
        + "".join(f"\n- {n}" for n in metric_notes(bundle)),
        "probes": probe_tables_markdown(bundle),
        "disentanglement": metrics_markdown(pick(values, DISENTANGLEMENT_KEYS), "Disentanglement",
                                            f"not measured — run {how} (needs ground-truth factors)"),
        "fid": metrics_markdown(pick(values, FID_KEYS), "FID / KID", f"not measured — run {how}"),
        "spectrum": spectrum,
        "spectrum_note": "" if spectrum is not None else "No PCA basis stored: run training/probe.py",
        "curves": curves,
        "curves_note": note,
        "samples": str(samples) if samples is not None else None,
    }
