"""Phases merge their own key and section into the results, leaving the others'."""

from __future__ import annotations

import json
from pathlib import Path

from bench.sections import merge_json, merge_markdown, read_json


def test_a_phase_replaces_its_own_key_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"throughput": [1, 2], "trainers": {"old": True}}))
    merge_json(path, "trainers", {"runs": []})
    assert json.loads(path.read_text()) == {"throughput": [1, 2], "trainers": {"runs": []}}
    assert read_json(path, "trainers") == {"runs": []}
    assert read_json(tmp_path / "missing.json", "trainers") is None


def test_a_phase_replaces_its_own_section_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "results.md"
    path.write_text("# Results\n\ncore tables\n")
    merge_markdown(path, "trainers", "## Trainers\nfirst\n")
    merge_markdown(path, "link", "## Link\nlink table\n")
    merge_markdown(path, "trainers", "## Trainers\nsecond\n")
    text = path.read_text()
    assert text.startswith("# Results\n\ncore tables\n")
    assert "first" not in text
    assert text.count("## Trainers\nsecond") == 1
    assert "## Link\nlink table" in text
    assert text.index("## Trainers") < text.index("## Link")  # kept in place
