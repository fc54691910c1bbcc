"""Phases that merge their results into ``results.json`` and ``results.md`` instead of wiping.

A phase's results are one top-level key of ``results.json``, and one section of
``results.md`` between ``<!-- phase:NAME -->`` and ``<!-- /phase:NAME -->``:
running the phase again replaces its own key and section, and leaves every
other phase's as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- phase:{name} -->", f"<!-- /phase:{name} -->"


def merge_json(path: Path, name: str, document: Any) -> None:
    """Set key ``name`` of the JSON object in ``path`` (created when missing) to ``document``."""
    results: dict[str, Any] = {}
    if path.exists():
        results = json.loads(path.read_text(encoding="utf-8"))
    results[name] = document
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


def read_json(path: Path, name: str) -> Any:
    """Key ``name`` of the JSON object in ``path``; None when either is missing."""
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get(name)


def merge_markdown(path: Path, name: str, section: str) -> None:
    """Put ``section`` between the phase's markers in ``path``: in place, or appended."""
    begin, end = _markers(name)
    block = f"{begin}\n{section.rstrip()}\n{end}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block
    path.write_text(text, encoding="utf-8")
