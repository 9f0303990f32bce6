"""What a bundle folder may hold, checked before any of its files is opened as data.

Bundles are untrusted input (Hub repos, downloaded folders), so a bundle is refused, with the
offending file named, when it holds:
  - a link (or a linked folder) whose target lies outside the bundle's real directory, whatever
    the link says (`..`, an absolute path, a chain of links), or anything that is not a regular file
    (a FIFO would hang the reader);
  - pickle data, recognised by its bytes and not its name: protocol opcodes, a PyTorch zip with a
    data.pkl inside, a compressed pickle, a NumPy file with object arrays;
  - a file of no known safe format (JSON, text, images, safetensors, TensorBoard events), or whose
    bytes do not match what its name says (every file of the documented layout is of such a format).
A Hub snapshot's files are links into the repo's blobs/ folder, which huggingface_hub itself wrote:
that folder is the one other place a bundle's links may point to.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import os
import pickletools
import stat
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib")
HEAD_BYTES = 64 * 1024  # enough to recognise any format here; never read a whole unknown file
MAX_FILES = 10_000  # a bundle holds tens of files: walking millions would hold a request slot for minutes
TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".txt", ".log", ".csv", ".tsv", ".yaml", ".yml", ".gitattributes",
                 ".gitignore", ".metadata", ".lock")
ROLES = {"diffusion_pytorch_model.safetensors": "the model weights", "probes/probes.safetensors": "the probes' arrays",
         "samples.png": "the bundle's sample grid", "facelab.json": "the bundle's metadata",
         "config.json": "the model's configuration"}
SAFE_FORMATS = "JSON, Markdown/text/logs, CSV, YAML, PNG/JPEG/WebP/GIF images, safetensors, TensorBoard events"


class BundleFileError(ValueError):
    """A bundle holds a file facelab will not open; the message names the file and why."""


class BundleError(RuntimeError):
    """A bundle cannot be saved, found, loaded or pushed; the message says why and what to do."""


def real_roots(folder: Path, extra: Iterable[Path] = ()) -> tuple[Path, ...]:
    """The real directories a bundle's files may live in: its own, plus e.g. a Hub cache's blobs/."""
    return tuple(Path(os.path.realpath(p)) for p in (folder, *extra))


def hub_blobs(snapshot: Path) -> list[Path]:
    """blobs/ of the Hub cache repo holding snapshot (models--x--y/snapshots/<rev>), when it is one."""
    blobs = snapshot.parent.parent / "blobs"
    return [blobs] if snapshot.parent.name == "snapshots" and blobs.is_dir() else []


def is_inside(path: Path, roots: Sequence[Path]) -> bool:
    """True when path's real location (every link followed) is one of roots or lies under one."""
    real = Path(os.path.realpath(path))
    return any(real == r or r in real.parents for r in roots)


def contained_file(path: Path, roots: Sequence[Path]) -> Path | None:
    """path when it is a regular file whose real location lies inside roots, else None."""
    try:
        if not is_inside(path, roots) or not stat.S_ISREG(os.stat(path).st_mode):
            return None
    except (OSError, ValueError):
        return None
    return path


def check_bundle_files(folder: Path, roots: Sequence[Path] | None = None) -> None:
    """Refuse a bundle folder holding links out, special files, pickles or files of unknown format."""
    roots = tuple(roots or real_roots(folder))
    pickles: list[str] = []
    for rel, path in _walk(folder, roots):
        data = head(path)
        if _name_says_pickle(rel) or pickle_kind(path, data) is not None:
            pickles.append(rel)
            continue
        problem = format_problem(rel, path, data)
        if problem:
            raise BundleFileError(f"{rel}: {problem}")
    if pickles:
        raise BundleFileError(f"holds pickle-format files ({', '.join(sorted(pickles))}); "
                              "facelab loads only safetensors weights and refuses pickles")


def _name_says_pickle(rel: str) -> bool:
    return any(s in PICKLE_SUFFIXES for s in (s.lower() for s in PurePosixPath(rel).suffixes))


def _walk(folder: Path, roots: Sequence[Path]) -> Iterable[tuple[str, Path]]:
    """(relative posix name, path) of every regular file; links out and special files refused on the way."""
    count = 0
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs):
            path = Path(top) / name
            if path.is_symlink():
                _check_link(folder, path, roots)
                dirs.remove(name)  # its target lies inside the bundle, so the walk meets it there
            elif name == ".git" and top == str(folder):
                dirs.remove(name)  # a `git clone` of a Hub repo: git's own store, never opened by facelab
        for name in sorted(files):
            count += 1
            if count > MAX_FILES:
                raise BundleFileError(f"holds more than {MAX_FILES:,} files; a bundle holds tens")
            path = Path(top) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                _check_link(folder, path, roots)
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                raise BundleFileError(f"{rel} is not a regular file (a pipe, socket or device); refused")
            yield rel, path


def _check_link(folder: Path, path: Path, roots: Sequence[Path]) -> None:
    rel = path.relative_to(folder).as_posix()
    if not path.exists():
        raise BundleFileError(f"{rel} is a broken link (to {os.readlink(path)})")
    if not is_inside(path, roots):
        raise BundleFileError(f"{rel} is a link to {os.readlink(path)}, outside the bundle's folder; "
                              "a bundle may only link to its own files, so it is refused")


# ---------------------------------------------------------------- pickle by its bytes


def head(path: Path, n: int = HEAD_BYTES) -> bytes:
    """The first n bytes of a file."""
    with open(path, "rb") as fh:
        return fh.read(n)


def pickle_kind(path: Path, data: bytes | None = None) -> str | None:
    """What kind of pickle the file holds (read from its bytes), or None when it holds none."""
    data = head(path) if data is None else data
    if data.startswith(b"PK\x03\x04"):
        return _zip_pickle(path)
    return sniff_pickle(data)


def sniff_pickle(data: bytes, depth: int = 0) -> str | None:
    """Pickle recognised in a file's first bytes: protocol 2+ header, protocol 0/1 opcodes, compressed."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return f"pickle protocol {data[1]}"
    if data.startswith(b"\x93NUMPY"):
        return "NumPy array of Python objects (pickled)" if b"'O'" in data[:512] or b"|O" in data[:512] else None
    if depth < 2:
        inner = _decompressed(data)
        if inner is not None:
            kind = sniff_pickle(inner, depth + 1)
            return f"compressed {kind}" if kind else None
    return "pickle protocol 0/1" if _old_protocol(data) else None


def _decompressed(data: bytes) -> bytes | None:
    """The first bytes of a gzip/zlib/bz2/xz stream (joblib's and numpy's compressors), else None."""
    try:
        if data.startswith(b"\x1f\x8b"):
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, HEAD_BYTES)
        if data[:1] == b"\x78" and len(data) > 1 and (data[0] << 8 | data[1]) % 31 == 0:
            return zlib.decompressobj().decompress(data, HEAD_BYTES)
        if data.startswith(b"BZh"):
            return bz2.BZ2Decompressor().decompress(data, HEAD_BYTES)
        if data.startswith(b"\xfd7zXZ\x00") or data.startswith(b"\x5d\x00\x00"):
            return lzma.LZMADecompressor().decompress(data, HEAD_BYTES)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return None
    return None


def _old_protocol(data: bytes) -> bool:
    """Protocol 0/1 pickles have no header: a valid opcode stream (stack and memo checked) that ends in STOP,
    or a long valid run cut off by the head's end; text breaks the stream within a few bytes."""
    try:
        pickletools.dis(data, out=io.StringIO())
        return True
    except Exception:  # noqa: BLE001 - any parse failure means "not a pickle"
        pass
    count = 0
    try:
        for _ in pickletools.genops(data):
            count += 1
    except Exception:  # noqa: BLE001
        return count >= 64 and len(data) >= HEAD_BYTES
    return False


def _zip_pickle(path: Path) -> str | None:
    """A zip holding pickles (PyTorch's torch.save format: <name>/data.pkl), else None."""
    try:
        with zipfile.ZipFile(path) as zf:
            inner = [n for n in zf.namelist() if n.endswith((".pkl", "data.pkl")) or n.endswith(".pickle")]
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return f"PyTorch/zip archive with pickles inside ({inner[0]})" if inner else None


# ---------------------------------------------------------------- known safe formats


def format_problem(rel: str, path: Path, data: bytes) -> str | None:
    """Why the file is not acceptable in a bundle (unknown format, or bytes unlike its name), else None."""
    name = PurePosixPath(rel).name
    suffix = PurePosixPath(name).suffix.lower() or (name.lower() if name.startswith(".") else "")
    if "tfevents" in name:
        return None  # TensorBoard's record format; it was checked for pickles above
    if suffix in TEXT_SUFFIXES:
        ok, what = _is_text(data), f"named like a text file ({suffix}) but holds binary data"
    elif suffix in _MAGIC:
        ok, what = _MAGIC[suffix](data, path), f"named {suffix} but its bytes are not a {suffix[1:].upper()} file"
    else:
        return (f"not part of the bundle layout, nor a known safe format ({SAFE_FORMATS}); "
                "a bundle holds nothing else, so remove it")
    if ok:
        return None
    role = ROLES.get(rel)
    return f"{what} (truncated, or another format renamed); " + (
        f"it is {role}: download or copy the bundle again" if role else "replace or remove it")


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:  # a character cut by the head's end is still text
        return len(data) == HEAD_BYTES and err.start >= len(data) - 3
    return True


def _safetensors(data: bytes, path: Path) -> bool:
    """8-byte little-endian header length, then a JSON header opening with '{'."""
    if len(data) < 9:
        return False
    (n,) = struct.unpack("<Q", data[:8])
    return 0 < n <= path.stat().st_size - 8 and data[8:9] == b"{"


_MAGIC = {
    ".png": lambda d, p: d.startswith(b"\x89PNG\r\n\x1a\n"),
    ".jpg": lambda d, p: d.startswith(b"\xff\xd8\xff"),
    ".jpeg": lambda d, p: d.startswith(b"\xff\xd8\xff"),
    ".webp": lambda d, p: d[:4] == b"RIFF" and d[8:12] == b"WEBP",
    ".gif": lambda d, p: d[:6] in (b"GIF87a", b"GIF89a"),
    ".safetensors": _safetensors,
}


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON file that must hold an object ({...}); ValueError saying what it holds instead."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{what} must hold a JSON object ({{...}}), but it holds a {_json_type(data)}")
    return data


def _json_type(data: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(data), type(data).__name__)


# ---------------------------------------------------------------- checks with the bundle named


def check_files(folder: Path, source: str | None = None, roots: tuple[Path, ...] = ()) -> None:
    """Refuse a bundle folder holding links out of it, pickles or files of unknown format, naming the file."""
    try:
        check_bundle_files(folder, roots or None)
    except BundleFileError as err:
        raise BundleError(f"bundle {source or str(folder)!r}: {err}") from err


def check_weights(model: Any, path: Path, source: str) -> None:
    """Refuse weights that miss or add tensors (a half-written file loads as noise) or hold NaN/inf."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        stored = set(fh.keys())
    state = model.state_dict()
    missing, unexpected = sorted(set(state) - stored), sorted(stored - set(state))
    if missing or unexpected:
        raise BundleError(f"bundle {source!r}: {path.name} does not match {type(model).__name__}: "
                          f"{len(missing)} tensor(s) missing {missing[:3]}, {len(unexpected)} unexpected "
                          f"{unexpected[:3]}; the file is incomplete or from another model")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise BundleError(f"bundle {source!r}: {path.name} holds NaN or infinite weights in {len(bad)} tensor(s) "
                          f"({', '.join(bad[:3])}); the model would draw blank images, so it is refused")
