"""Real servers and browsers for tests, installed by the tests themselves on a fresh machine.

- olah (a Hub-compatible mirror) lives in its own venv under the test cache
  (~/.cache/facelab-test, or $FACELAB_TEST_CACHE): its pins clash with facelab's, so it never
  goes into requirements.txt. The venv is built once (pip, ~30 s) and reused.
- Chromium comes from apt (`apt-get install -y chromium`) when missing and we are root.
Everything listens on 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

OLAH_VERSION = "0.5.4"
CACHE = Path(os.environ.get("FACELAB_TEST_CACHE", Path.home() / ".cache" / "facelab-test"))
GIT_ENV = {"GIT_AUTHOR_NAME": "facelab-test", "GIT_AUTHOR_EMAIL": "test@facelab.invalid",
           "GIT_COMMITTER_NAME": "facelab-test", "GIT_COMMITTER_EMAIL": "test@facelab.invalid"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def olah_python() -> Path:
    """The python of a venv holding olah (built on first use); skips the test when it cannot be built."""
    venv = CACHE / "olah-venv"
    marker = venv / f".olah-{OLAH_VERSION}"
    python = venv / "bin" / "python"
    if marker.is_file() and python.exists():
        return python
    tmp = CACHE / f"olah-venv.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    steps = [[sys.executable, "-m", "venv", str(tmp)],
             [str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              f"olah=={OLAH_VERSION}"],
             [str(tmp / "bin" / "python"), "-c", "import olah.server"]]
    for cmd in steps:
        try:
            res = _run(cmd, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as err:
            res = subprocess.CompletedProcess(cmd, 1, "", str(err))
        if res.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.skip(f"cannot build the olah venv ({' '.join(cmd[-2:])} failed: {res.stderr.strip()[-400:]}); "
                        f"this test needs `pip install olah=={OLAH_VERSION}` into {venv}")
    (tmp / marker.name).write_text("ok\n")
    shutil.rmtree(venv, ignore_errors=True)
    try:
        os.replace(tmp, venv)  # venvs survive a rename: bin/python finds lib/ beside itself
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another run finished first: use its venv
    return python


def git_commit(repo: Path, message: str, tag: str | None = None) -> str:
    """Commit everything in repo (git init on first use), optionally tag it; returns the commit sha."""
    env = {**os.environ, **GIT_ENV}
    if not (repo / ".git").exists():
        _run(["git", "init", "-q", "-b", "main", str(repo)], 30, env=env, check=True)
    _run(["git", "-C", str(repo), "add", "-A"], 30, env=env, check=True)
    _run(["git", "-C", str(repo), "commit", "-q", "-m", message], 30, env=env, check=True)
    if tag:
        _run(["git", "-C", str(repo), "tag", tag], 30, env=env, check=True)
    return _run(["git", "-C", str(repo), "rev-parse", "HEAD"], 30, env=env, check=True).stdout.strip()


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll url until it answers 200, the process dies, or timeout seconds pass (then raise)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s ({last})")


OLAH_TOML = """[basic]
host = "127.0.0.1"
port = {port}
repos-path = "{work}/repos"
mirror-scheme = "http"
mirror-netloc = "127.0.0.1:{port}"
mirror-lfs-netloc = "127.0.0.1:{port}"
mirrors-path = ["{mirrors}"]

[accessibility]
offline = true
"""


@contextmanager
def olah_server(mirrors: Path, work: Path, probe_repo: str, timeout: float = 90) -> Iterator[str]:
    """Serve the git repos under mirrors/models/<org>/<repo> with olah on loopback; yields the endpoint URL."""
    python = olah_python()
    port = free_port()
    config = work / "olah.toml"
    config.write_text(OLAH_TOML.format(port=port, work=work, mirrors=mirrors))
    log = open(work / "olah.log", "w")  # noqa: SIM115 - closed below
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    proc = subprocess.Popen([str(python), "-m", "olah.server", "-c", str(config), "--log-path", str(work / "logs")],
                            cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(f"{endpoint}/api/models/{probe_repo}/revision/main", timeout, proc)
        except (RuntimeError, TimeoutError) as err:
            log.flush()
            raise RuntimeError(f"olah did not start: {err}\n{(work / 'olah.log').read_text()[-2000:]}") from err
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def ensure_apt(binaries: tuple[str, ...], package: str) -> str:
    """Path of the first of binaries, apt-installing package when none is found (needs root); else skips."""
    def found() -> str | None:
        return next((p for p in map(shutil.which, binaries) if p), None)

    if found():
        return found()
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip(f"{binaries[0]} is not installed and cannot be installed here (needs root and apt-get): "
                    f"run `apt-get install -y {package}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    errors = []
    for cmds in ([[apt, "install", "-y", "-q", package]],
                 [[apt, "update", "-q"], [apt, "install", "-y", "-q", package]]):
        try:
            results = [_run(cmd, timeout=900, env=env) for cmd in cmds]
        except (OSError, subprocess.TimeoutExpired) as err:
            errors.append(str(err))
            continue
        errors.extend(r.stderr.strip()[-300:] for r in results if r.returncode)
        if found():
            return found()
    pytest.skip(f"`apt-get install -y {package}` failed: {' | '.join(errors)[-600:]}")
    raise AssertionError("unreachable")


def ensure_chromium() -> str:
    """Path of a chromium binary, apt-installing it when missing and root; skips the test when impossible."""
    return ensure_apt(("chromium", "chromium-browser"), "chromium")
