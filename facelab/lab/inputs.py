"""Every number and list a lab endpoint takes, checked on the server before any model or loop sees it.

A client can send JSON straight to an endpoint, past the UI's sliders: NaN, ±inf, 1e300, negative
seeds, or a range like "0-20000000" that would expand to millions of items. Each check here says in
plain words what is allowed and what came in. The app's sliders take their bounds from these constants,
so the UI and the server agree.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any, Iterable, Sequence, TypeVar

from facelab.lab.bundles import LabError

T = TypeVar("T")

MAX_SEED = 2**32 - 1  # numpy and torch both take it; one range for every seed in the app
SAMPLES = (1, 64)
TEMPERATURE = (0.0, 2.0)
PSI = (0.0, 1.5)
STRENGTH = (-4.0, 4.0)
SPAN = (0.0, 20.0)  # exclusive below: a traversal of range 0 shows one face many times
STEPS = (2, 21)
FRAMES = (2, 64)
FPS = (1.0, 50.0)
IMAGE_SIZE = (16, 512)  # rendered synthetic faces and photo crops: 512² is ~1 MB, more is a denial of service
MAX_LIST = 64  # any list an endpoint takes (targets, levels, temperatures, terms), before it is read
MAX_MODELS = 8  # models compared at once in the Background tab
MAX_TEXT = 400  # characters of a typed list such as "1, 2, 5-7"
_RANGE = re.compile(r"^(?:PC)?(\d{1,9})\s*[-–:]\s*(?:PC)?(\d{1,9})$", re.IGNORECASE)


def _shown(value: Any) -> str:
    """A short rendering of what the client sent, for error messages."""
    if isinstance(value, float):
        return f"{value:g}"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _as_float(value: Any) -> float | None:
    """value as a finite or non-finite float, or None when it is not a number at all."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range is simply too big
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def number(value: Any, what: str, lo: float, hi: float, lo_open: bool = False) -> float:
    """value as a float in [lo, hi] ((lo, hi] with lo_open); a LabError in words otherwise."""
    x = _as_float(value)
    if x is None or not math.isfinite(x) or x < lo or x > hi or (lo_open and x == lo):
        span = f"above {lo:g} and at most {hi:g}" if lo_open else f"from {lo:g} to {hi:g}"
        raise LabError(f"{what} must be a number {span}; got {_shown(value)}")
    return x


def whole(value: Any, what: str, lo: int, hi: int) -> int:
    """value as an int in [lo, hi] (2.0 is fine, 2.5 is not); a LabError in words otherwise."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        n: int | None = int(value)
    else:
        x = _as_float(value)
        n = int(x) if x is not None and math.isfinite(x) and x.is_integer() else None
    if n is None or not lo <= n <= hi:
        raise LabError(f"{what} must be a whole number from {lo:,} to {hi:,}; got {_shown(value)}")
    return n


def seed(value: Any, what: str = "seed") -> int:
    """A seed: a whole number from 0 to MAX_SEED."""
    return whole(value, what, 0, MAX_SEED)


def bounded(items: Iterable[T] | None, what: str, most: int = MAX_LIST) -> list[T]:
    """items as a list of at most `most` entries, refused before any entry is looked at."""
    if items is None:
        return []
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise LabError(f"{what} must be a list; got {_shown(items)}")
    if isinstance(items, Sequence) and len(items) > most:
        raise LabError(f"{what}: at most {most} at once; got {len(items):,}")
    out: list[T] = []
    for item in items:  # a generator is read only as far as the limit
        if len(out) == most:
            raise LabError(f"{what}: at most {most} at once")
        out.append(item)
    return out


def unique(items: Iterable[T]) -> list[T]:
    """items without repeats, first occurrence kept (so asking twice costs once)."""
    seen: set[Any] = set()
    return [x for x in items if not (x in seen or seen.add(x))]


def text(value: Any, what: str, most: int = MAX_TEXT) -> str:
    """A typed list such as '1, 2, 5-7': a string of at most `most` characters."""
    if not isinstance(value, str):
        raise LabError(f"{what} must be text like '1, 2, 5-7'; got {_shown(value)}")
    if len(value) > most:
        raise LabError(f"{what}: at most {most} characters; got {len(value):,}")
    return value


def expand_ranges(items: Sequence[Any], what: str, most: int) -> list[str]:
    """Comma lists and ranges ('0-7', 'PC1-PC4') as single items, at most `most` of them in all.

    The count is checked from the range ends before a range is expanded: '0-20000000' is refused
    at once instead of being turned into twenty million strings first.
    """
    parts = [p.strip() for item in bounded(items, what, most) for p in text(str(item), what).split(",")]
    out: list[str] = []
    for part in (p for p in parts if p):
        m = _RANGE.match(part)
        if m is None:
            out.append(part)
        else:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise LabError(f"{what}: range {part!r} runs backwards; write it low to high")
            if len(out) + hi - lo + 1 > most:
                raise LabError(f"{what}: at most {most} at once; {part!r} alone is {hi - lo + 1:,}")
            prefix = "PC" if part.upper().startswith("PC") else ""
            out += [f"{prefix}{i}" for i in range(lo, hi + 1)]
        if len(out) > most:
            raise LabError(f"{what}: at most {most} at once")
    return out
