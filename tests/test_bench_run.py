"""benchmarks/run.py: the one command that regenerates BENCHMARKS.md's measured part."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_module():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_write_into_replaces_only_the_generated_part(tmp_path):
    run = _run_module()
    path = tmp_path / "B.md"
    path.write_text("# Benchmarks\n\nintro\n\n## Old section\n\nhand-written table\n")
    run.write_into(path, f"{run.MARK_BEGIN}\nfirst\n{run.MARK_END}")
    text = path.read_text()
    assert text.index("intro") < text.index("first") < text.index("## Old section")
    run.write_into(path, f"{run.MARK_BEGIN}\nsecond\n{run.MARK_END}")
    text = path.read_text()
    assert "second" in text and "first" not in text and text.count(run.MARK_BEGIN) == 1
    assert "hand-written table" in text and text.startswith("# Benchmarks\n\nintro")


def test_keep_markdown_drops_progress_and_warnings_and_spaces_tables():
    run = _run_module()
    raw = ("header line\n| a | b |\n|---|---|\n| 1 | 2 |\nafter\n"
           "train:  50%|#####     | 5/10 [00:01<00:01, 4.2it/s]\r"
           "/x.py:3: UserWarning: something\n  super().__init__(loader)\n")
    kept = run.keep_markdown(raw)
    assert "it/s" not in kept and "UserWarning" not in kept and "super()" not in kept
    assert "header line\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nafter" == kept


def test_quick_run_measures_the_peak_and_writes_a_real_table(tmp_path):
    run = _run_module()
    out = tmp_path / "B.md"
    out.write_text("# Benchmarks\n")
    assert run.main(["--quick", "--only", "synthfaces", "--out", str(out)]) == 0
    text = out.read_text()
    assert run.MARK_BEGIN in text and run.MARK_END in text
    peak_rows = [ln for ln in text.splitlines() if ln.startswith("| 1 |") or ln.startswith("| 2 |")]
    assert len(peak_rows) == 2 and all(float(r.split("|")[2]) > 1 for r in peak_rows)
    rows = [ln for ln in text.splitlines() if ln.startswith("| render | 32 |")]
    assert rows and float(rows[0].split("|")[4].replace(",", "")) > 0  # images/s measured, not a placeholder
