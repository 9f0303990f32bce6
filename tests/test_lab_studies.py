"""RESULTS.md in the app: five seed sections, figures taken out of the text and kept inside the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

from facelab.lab import FaceLab, LabError
from facelab.lab.studies import RESULTS_FILE, study_sections


def test_shipped_results_split_into_five_studies_with_figures():
    sections = study_sections()
    assert [s["id"] for s in sections] == [f"seed-00{i}" for i in range(5)]
    for s in sections:
        assert s["title"].startswith("Seed 00")
        assert "![" not in s["markdown"]  # image lines become pointers to the images
        assert "|---" in s["markdown"]  # every study has at least one table
        for path, _ in s["figures"]:
            assert Path(path).is_file() and Path(path).resolve().is_relative_to(RESULTS_FILE.parent)
    assert any(s["figures"] for s in sections)


def test_links_out_of_the_repository_are_not_served(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG not really")
    repo = tmp_path / "repo"
    (repo / "fig").mkdir(parents=True)
    (repo / "fig" / "ok.png").write_bytes(b"\x89PNG")
    (repo / "fig" / "link.png").symlink_to(outside)
    (repo / "RESULTS.md").write_text(
        '<a id="seed-000"></a>\n\n## Seed 000 — x\n\n| a |\n|---|\n\n![fine](fig/ok.png)\n\n'
        '![leak](fig/link.png)\n\n![up](../secret.png)\n', encoding="utf-8")
    (s,) = study_sections(repo / "RESULTS.md")
    assert [cap for _, cap in s["figures"]] == ["fine"]
    assert s["markdown"].count("(shown above)") == 3


def test_facelab_study_by_title_and_clear_error():
    titles = FaceLab.study_titles()
    assert len(titles) == 5
    r = FaceLab.study(titles[2])
    assert "grey" in r["markdown"]  # seed 002 is the background study
    assert FaceLab.study(None)["markdown"] == FaceLab.study(titles[0])["markdown"]
    with pytest.raises(LabError, match="choose one of"):
        FaceLab.study("no such study")


def test_app_has_a_slot_for_every_figure_of_a_study():
    import app

    assert max(len(s["figures"]) for s in study_sections()) <= app.FIGURE_SLOTS
