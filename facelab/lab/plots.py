"""Matplotlib figures for the app (object API only: no pyplot state shared between request threads)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # matplotlib loads only when a figure is drawn: ~1 s off the app's cold start
    from matplotlib.figure import Figure


def _new(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _figure(width: float = 6.0, height: float = 3.6) -> tuple[Figure, object]:
    fig = _new(width, height)
    return fig, fig.add_subplot(1, 1, 1)


def pca_curves(curves: Mapping[str, Sequence[float]], title: str = "PCA of the latents",
               max_components: int = 64) -> Figure:
    """Cumulative explained-variance curves, one per label (seed 002's background comparison)."""
    fig, ax = _figure()
    for label, ratio in curves.items():
        r = np.asarray(ratio, dtype=np.float64)[:max_components]
        ax.plot(np.arange(1, len(r) + 1), np.cumsum(r), marker=".", label=label)
    ax.set_xlabel("number of principal components")
    ax.set_ylabel("cumulative explained variance")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    return fig


def pca_spectrum(ratio: Sequence[float], title: str, max_components: int = 48) -> Figure:
    """Explained-variance ratio per component (bars) and its cumulative sum (line)."""
    fig, ax = _figure()
    r = np.asarray(ratio, dtype=np.float64)[:max_components]
    x = np.arange(1, len(r) + 1)
    ax.bar(x, r, color="tab:blue", alpha=0.7, label="per component")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    twin = ax.twinx()
    twin.plot(x, np.cumsum(r), color="tab:orange", marker=".", label="cumulative")
    twin.set_ylim(0, 1.02)
    twin.set_ylabel("cumulative")
    ax.set_title(title)
    return fig


def spectra(bases: Mapping[str, Sequence[float]], max_components: int = 48) -> Figure:
    """One explained-variance spectrum per stored PCA basis, as lines on a log scale."""
    fig, ax = _figure()
    for key, ratio in bases.items():
        r = np.asarray(ratio, dtype=np.float64)[:max_components]
        ax.plot(np.arange(1, len(r) + 1), np.maximum(r, 1e-6), marker=".", label=key)
    ax.set_yscale("log")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    ax.set_title("PCA spectrum of the latents")
    ax.grid(alpha=0.3, which="both")
    if bases:
        ax.legend(fontsize=8)
    return fig


def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str = "training curves") -> Figure:
    """Training curves: one subplot per series (the first six), step on x."""
    names = list(series)
    fig = _new(7.0, 2.2 * max(1, min(len(names), 6)))
    for i, name in enumerate(names[:6]):
        ax = fig.add_subplot(min(len(names), 6), 1, i + 1)
        steps, values = series[name]
        ax.plot(steps, values, lw=1)
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def bars(values: Mapping[str, float], title: str, ylabel: str) -> Figure:
    """One bar per label (e.g. background share of variance per model)."""
    fig, ax = _figure()
    labels = list(values)
    ax.bar(range(len(labels)), [values[k] for k in labels], color="tab:green", alpha=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig
