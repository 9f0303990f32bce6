"""Per-level and cumulative linear probes on latent levels: the two SVM tables of seed 000, plus an MLP check.

Latents come as one array per level, [N, d_k] (flattened here), labels as [N, A] in {0, 1}. For every
attribute a linear SVM is fitted on each level alone ("per_level") or on levels 1..k together
("cumulative"), on standardised features, with a held-out split (80/20 by default); the table keeps
accuracy, balanced accuracy (attributes are imbalanced) and the majority-class baseline.

The SVM is LinearSVC's: L2-regularised squared hinge, C = 1, intercept penalised like liblinear's
(a constant feature of 1). The default solver "newton" minimises exactly that objective for all
attributes at once, in float32 torch: truncated Newton whose conjugate gradients are preconditioned
by the Cholesky factor of X^T X + I/2C (the Hessian if every point were a margin violator), shared by
all attributes. The Gram matrix of all levels is computed once: every per-level and cumulative Gram
is a block of it. "liblinear" (sklearn LinearSVC, dual=False, one attribute at a time) is the
reference; benchmarks/bench_probes.py measures both (accuracies agree to well under 0.5 points).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.svm import LinearSVC

Mode = Literal["per_level", "cumulative"]
Kind = Literal["svm", "mlp"]
Solver = Literal["newton", "liblinear"]
_TINY = 1e-30


def to_numpy(x: Any) -> np.ndarray:
    """A numpy array from an array-like or a torch tensor on any device."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _flat(x: Any) -> np.ndarray:
    """[N, ...] -> [N, prod(...)] float32."""
    x = to_numpy(x)
    return x.reshape(len(x), -1).astype(np.float32, copy=False)


@dataclass
class LinearProbe:
    """A fitted linear classifier on standardised latents: decision = ((x - mean) / scale) @ w + b."""

    w: np.ndarray
    b: float
    mean: np.ndarray
    scale: np.ndarray
    levels: tuple[int, ...]
    attribute: str
    accuracy: float = float("nan")

    def decision(self, x: Any) -> np.ndarray:
        """Signed score of each row of x (this probe's levels, flattened and concatenated); > 0 = present."""
        x = to_numpy(x).reshape(len(x), -1).astype(np.float64, copy=False)
        return ((x - self.mean) / self.scale) @ self.w + self.b

    def predict(self, x: Any) -> np.ndarray:
        """Predicted attribute (0 or 1) for each row of x."""
        return (self.decision(x) > 0).astype(np.int64)

    def select(self, levels: Sequence[Any]) -> np.ndarray:
        """This probe's input from a full list of per-level latents: its levels flattened and concatenated."""
        return np.concatenate([_flat(levels[k]) for k in self.levels], axis=1)

    def raw(self) -> tuple[np.ndarray, float]:
        """The same hyperplane in raw latent coordinates: decision(x) == x @ w_raw + b_raw."""
        w_raw = self.w / self.scale
        return w_raw, float(self.b - w_raw @ self.mean)

    def normal(self) -> np.ndarray:
        """Unit normal of the boundary in raw latent coordinates, pointing towards the attribute."""
        w_raw = self.raw()[0]
        return w_raw / max(float(np.linalg.norm(w_raw)), _TINY)

    def distance(self, x: Any) -> np.ndarray:
        """Signed Euclidean distance of each row of x to the boundary, in raw latent coordinates."""
        return self.decision(x) / max(float(np.linalg.norm(self.raw()[0])), _TINY)


@dataclass
class ProbeTable:
    """Held-out scores of one probe family: rows = attributes, columns = levels (or levels 1..k)."""

    mode: str
    kind: str
    attributes: list[str]
    columns: list[str]
    dims: list[int]
    accuracy: np.ndarray
    balanced_accuracy: np.ndarray
    baseline: np.ndarray
    n_train: int
    n_test: int
    probes: dict[tuple[str, str], LinearProbe] = field(default_factory=dict)

    def probe(self, attribute: str, column: str | int) -> LinearProbe:
        """The fitted linear probe for an attribute at a column (label or index); SVM tables only."""
        label = self.columns[column] if isinstance(column, int) else column
        if (attribute, label) not in self.probes:
            raise KeyError(f"no {self.kind} probe for attribute {attribute!r} at column {label!r} "
                           f"(attributes: {self.attributes}; columns: {self.columns})")
        return self.probes[(attribute, label)]

    def to_markdown(self, metric: str = "accuracy", digits: int = 3) -> str:
        """Seed 000's layout: a dimensions row, then one row per attribute, plus the majority baseline."""
        values = getattr(self, metric)
        head = f"{metric} ({self.kind}, {self.mode.replace('_', ' ')})"
        lines = ["| " + " | ".join([head, *self.columns, "majority"]) + " |",
                 "|" + "---|" + "---:|" * (len(self.columns) + 1),
                 "| " + " | ".join(["dimensions", *map(str, self.dims), ""]) + " |"]
        for i, name in enumerate(self.attributes):
            cells = [f"{v:.{digits}f}" for v in values[i]] + [f"{self.baseline[i]:.{digits}f}"]
            lines.append("| " + " | ".join([name, *cells]) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready scores and names (the probes' arrays are packed separately by facelab.probes.io)."""
        return {"mode": self.mode, "kind": self.kind, "attributes": list(self.attributes),
                "columns": list(self.columns), "dims": [int(d) for d in self.dims],
                "accuracy": self.accuracy.tolist(), "balanced_accuracy": self.balanced_accuracy.tolist(),
                "baseline": self.baseline.tolist(), "n_train": int(self.n_train), "n_test": int(self.n_test)}

    @classmethod
    def from_dict(cls, data: dict[str, Any],
                  probes: dict[tuple[str, str], LinearProbe] | None = None) -> ProbeTable:
        """Inverse of to_dict (probes re-attached by the caller)."""
        arrays = {k: np.asarray(data[k], dtype=np.float64) for k in ("accuracy", "balanced_accuracy", "baseline")}
        return cls(mode=data["mode"], kind=data["kind"], attributes=list(data["attributes"]),
                   columns=list(data["columns"]), dims=[int(d) for d in data["dims"]],
                   n_train=int(data["n_train"]), n_test=int(data["n_test"]), probes=dict(probes or {}), **arrays)


# ---------------------------------------------------------------- the batched squared-hinge solver


def _cholesky(gram: torch.Tensor, lam: float) -> torch.Tensor:
    """Cholesky factor (float64) of gram + lam·I; jitter grows if float32 rounding broke definiteness."""
    g = gram.double()
    eye = torch.eye(len(g), dtype=torch.float64)
    jitter = lam
    for _ in range(8):
        chol, info = torch.linalg.cholesky_ex(g + jitter * eye)
        if int(info) == 0:
            return chol
        jitter = jitter * 10 + 1e-6 * float(g.diagonal().mean())
    raise np.linalg.LinAlgError("Gram matrix is not positive definite even with jitter (NaN in latents?)")


def _inverse(gram: torch.Tensor, lam: float) -> torch.Tensor:
    """(gram + lam·I)^-1 in gram's dtype: one matmul per preconditioning beats triangular solves here."""
    return torch.cholesky_inverse(_cholesky(gram, lam)).to(gram.dtype)


# Layout: per-sample arrays are [n, A], per-feature arrays [A, d] (one row per attribute). MKL on this
# CPU runs x.T @ r and x @ w for skinny [n, A] / [d, A] operands 3-16x slower than r.T @ x and
# x @ w.T with w [A, d] (measured: 1.4 s vs 86 ms for 56,000 × 801 with A = 2).


def _xt(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """X^T r as [A, d] for r [n, A]."""
    return r.T @ x


def _newton_direction(x: torch.Tensor, active: torch.Tensor, grad: torch.Tensor, prec: torch.Tensor,
                      lam: float, max_cg: int) -> torch.Tensor:
    """Preconditioned CG on H·s = −grad, H = lam·I + X^T diag(active) X, one row of grad per attribute."""
    step = torch.zeros_like(grad)
    r = -grad
    z = r @ prec
    p = z.clone()
    rz = (r * z).sum(1, keepdim=True)
    target = 0.1 * grad.norm(dim=1, keepdim=True)  # inexact Newton (liblinear's TRON uses the same 0.1)
    for _ in range(max_cg):
        hp = lam * p + _xt(x, active * (x @ p.T))
        alpha = rz / (p * hp).sum(1, keepdim=True).clamp_min(_TINY)
        step += alpha * p
        r -= alpha * hp
        if bool((r.norm(dim=1, keepdim=True) <= target).all()):
            break
        z = r @ prec
        rz_new = (r * z).sum(1, keepdim=True)
        p = z + (rz_new / rz.clamp_min(_TINY)) * p
        rz = rz_new
    return step


def _objective(y: torch.Tensor, out: torch.Tensor, w: torch.Tensor, lam: float) -> torch.Tensor:
    return 0.5 * lam * (w * w).sum(1) + 0.5 * (torch.clamp(1 - y * out, min=0) ** 2).sum(0)


def _step_size(y: torch.Tensor, out: torch.Tensor, q: torch.Tensor, w: torch.Tensor, step: torch.Tensor,
               lam: float) -> torch.Tensor:
    """Per-attribute step: 1-D Newton on the piecewise-quadratic line objective, guarded by backtracking."""
    wd, dd = (w * step).sum(1), (step * step).sum(1)
    t = torch.ones_like(wd)
    for _ in range(6):
        o = out + t * q
        m = (y * o < 1).to(q.dtype)
        slope = lam * (wd + t * dd) - (m * (y - o) * q).sum(0)
        t = t - slope / (lam * dd + (m * q * q).sum(0)).clamp_min(_TINY)
    # The 1-D Newton iterate is not guaranteed monotone: keep the best of it and halvings of 1.
    cands = torch.stack([t, *(torch.full_like(t, 0.5 ** k) for k in range(6))])
    objs = torch.stack([_objective(y, out + c * q, w + c[:, None] * step, lam) for c in cands])
    return cands.gather(0, objs.argmin(0, keepdim=True))[0]


def fit_squared_hinge(x: torch.Tensor, y: torch.Tensor, C: float = 1.0, gram: torch.Tensor | None = None,
                      tol: float = 1e-4, max_newton: int = 30, max_cg: int = 100) -> torch.Tensor:
    """Weights [d, A] minimising ½|w|² + C·Σ max(0, 1 − y·xw)² for every ±1 column of y [n, A] at once."""
    lam = 0.5 / C  # the objective divided by 2C: same minimiser, nicer scaling
    prec = _inverse(x.T @ x if gram is None else gram, lam)
    xty = _xt(x, y)
    w = xty @ prec  # exact minimiser if every point were a margin violator
    out = x @ w.T
    n_pos = (y > 0).sum(0).to(x.dtype)
    # liblinear's stopping rule: |grad| <= tol · max(min(#pos, #neg), 1) / n · |grad at w = 0|
    thresh = tol * torch.clamp(torch.minimum(n_pos, len(y) - n_pos), min=1) / len(y) * xty.norm(dim=1)
    for _ in range(max_newton):
        active = (y * out < 1).to(x.dtype)
        grad = lam * w - _xt(x, active * (y - out))
        todo = (grad.norm(dim=1) > thresh).nonzero().flatten()
        if len(todo) == 0:
            break
        yt, ot, wt = y[:, todo], out[:, todo], w[todo]
        step = _newton_direction(x, active[:, todo].contiguous(), grad[todo], prec, lam, max_cg)
        q = x @ step.T
        t = _step_size(yt, ot, q, wt, step, lam)
        w[todo] = wt + t[:, None] * step
        out[:, todo] = ot + t * q
    return w.T


# ---------------------------------------------------------------- tables


def _column_sets(dims: list[int], mode: str) -> list[tuple[int, ...]]:
    """Which levels each column of the table uses."""
    if mode == "per_level":
        return [(k,) for k in range(len(dims))]
    if mode == "cumulative":
        return [tuple(range(k + 1)) for k in range(len(dims))]
    raise ValueError(f"mode must be 'per_level' or 'cumulative', got {mode!r}")


def _feature_index(levels: tuple[int, ...], bounds: np.ndarray) -> np.ndarray:
    return np.concatenate([np.arange(bounds[k], bounds[k + 1]) for k in levels])


def _svm_weights(xtr: np.ndarray, ytr: np.ndarray, index_sets: list[np.ndarray], C: float,
                 solver: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(w [d, A], b [A]) for each feature subset, every attribute."""
    if solver == "liblinear":
        out = []
        for idx in index_sets:
            fits = [LinearSVC(C=C, dual=False).fit(xtr[:, idx].astype(np.float64), ytr[:, a])
                    if 0 < ytr[:, a].sum() < len(ytr) else None for a in range(ytr.shape[1])]
            w = np.stack([f.coef_[0] if f else np.zeros(len(idx)) for f in fits], 1)
            b = np.array([f.intercept_[0] if f else (1.0 if ytr[0, a] else -1.0) for a, f in enumerate(fits)])
            out.append((w, b))
        return out
    if solver != "newton":
        raise ValueError(f"solver must be 'newton' or 'liblinear', got {solver!r}")
    # Bias as column 0 so that every subset is [0, features...] and its Gram a block of one Gram.
    x = torch.from_numpy(np.hstack([np.ones((len(xtr), 1), np.float32), xtr]))
    gram = x.T @ x
    y = torch.from_numpy(2.0 * ytr.astype(np.float32) - 1.0)
    out = []
    for idx in index_sets:
        cols = torch.from_numpy(np.concatenate([[0], idx + 1]))
        w = fit_squared_hinge(x[:, cols].contiguous(), y, C, gram=gram[cols][:, cols]).double().numpy()
        out.append((w[1:], w[0]))
    return out


def _mlp_predictions(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, idx: np.ndarray,
                     hidden: tuple[int, ...], seed: int) -> np.ndarray:
    """Held-out predictions [n_test, A] of one small early-stopped MLP per attribute."""
    preds = np.empty((len(xte), ytr.shape[1]), np.int64)
    for a in range(ytr.shape[1]):
        if ytr[:, a].min() == ytr[:, a].max():
            preds[:, a] = ytr[0, a]
            continue
        mlp = MLPClassifier(hidden_layer_sizes=hidden, early_stopping=True, max_iter=200, random_state=seed)
        preds[:, a] = mlp.fit(xtr[:, idx], ytr[:, a]).predict(xte[:, idx])
    return preds


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per column, the mean recall over the classes present (sklearn's definition), vectorised."""
    recalls = [np.where(y == c, pred == c, 0).sum(0) / np.maximum((y == c).sum(0), 1) for c in (0, 1)]
    present = np.stack([(y == c).any(0) for c in (0, 1)])
    return (np.stack(recalls) * present).sum(0) / present.sum(0)


def _check_inputs(levels: Sequence[Any], labels: Any, names: Sequence[str],
                  mask: Any) -> tuple[list[np.ndarray], np.ndarray]:
    """Flatten levels, validate labels/names/mask, and apply the mask."""
    flat = [_flat(x) for x in levels]
    y = to_numpy(labels)
    y = y[:, None] if y.ndim == 1 else y
    n = len(y)
    if not flat or any(len(x) != n for x in flat):
        raise ValueError(f"every level needs one row per label row ({n}); got {[len(x) for x in flat]}")
    if y.shape[1] != len(names):
        raise ValueError(f"labels have {y.shape[1]} columns but {len(names)} attribute names were given")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    if mask is not None:
        mask = to_numpy(mask).astype(bool)
        if mask.shape != (n,):
            raise ValueError(f"mask must be a boolean vector of length {n}, got shape {mask.shape}")
        flat, y = [x[mask] for x in flat], y[mask]
    return flat, y.astype(np.int64)


def fit_level_probes(levels: Sequence[Any], labels: Any, names: Sequence[str], mode: Mode = "per_level",
                     kind: Kind = "svm", test_size: float = 0.2, seed: int = 0, mask: Any = None,
                     level_names: Sequence[str] | None = None, C: float = 1.0, solver: Solver = "newton",
                     mlp_hidden: tuple[int, ...] = (128, 64)) -> ProbeTable:
    """Probe every attribute on each level ("per_level") or on levels 1..k ("cumulative"); held-out scores."""
    flat, y = _check_inputs(levels, labels, names, mask)
    dims = [x.shape[1] for x in flat]
    level_names = list(level_names or [f"z{k + 1}" for k in range(len(flat))])
    sets = _column_sets(dims, mode)
    columns = [level_names[s[0]] if mode == "per_level" else f"{level_names[0]}..{level_names[s[-1]]}"
               for s in sets]
    train, test = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed)
    x = np.concatenate(flat, axis=1)
    xtr, xte = x[train], x[test]
    mean, scale = xtr.mean(0, dtype=np.float64), xtr.std(0, dtype=np.float64)
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0  # constant features: as StandardScaler does
    # float32 throughout: at seed 000's scale a float64 copy alone is 360 MB.
    xtr = (xtr - mean.astype(np.float32)) / scale.astype(np.float32)
    xte = (xte - mean.astype(np.float32)) / scale.astype(np.float32)
    ytr, yte = y[train], y[test]
    bounds = np.cumsum([0, *dims])
    index_sets = [_feature_index(s, bounds) for s in sets]
    if kind == "svm":
        weights = _svm_weights(xtr, ytr, index_sets, C, solver)
        preds = [(xte[:, idx] @ w + b > 0).astype(np.int64) for idx, (w, b) in zip(index_sets, weights)]
    elif kind == "mlp":
        preds = [_mlp_predictions(xtr, ytr, xte, idx, mlp_hidden, seed) for idx in index_sets]
    else:
        raise ValueError(f"kind must be 'svm' or 'mlp', got {kind!r}")
    acc = np.stack([(p == yte).mean(0) for p in preds], 1)
    bal = np.stack([_balanced_accuracy(yte, p) for p in preds], 1)
    majority = (ytr.mean(0) >= 0.5).astype(np.int64)
    table = ProbeTable(mode=mode, kind=kind, attributes=list(names), columns=columns,
                       dims=[int(bounds[s[-1] + 1] - bounds[s[0]]) for s in sets], accuracy=acc,
                       balanced_accuracy=bal, baseline=(yte == majority).mean(0),
                       n_train=len(train), n_test=len(test))
    if kind == "svm":
        for j, (idx, (w, b)) in enumerate(zip(index_sets, weights)):
            for a, name in enumerate(names):
                table.probes[(name, columns[j])] = LinearProbe(
                    w=w[:, a].astype(np.float64), b=float(b[a]), mean=mean[idx], scale=scale[idx],
                    levels=sets[j], attribute=name, accuracy=float(acc[a, j]))
    return table
