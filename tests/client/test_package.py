"""Importing the client package pulls in no framework and has no side effects."""

from __future__ import annotations

import subprocess
import sys


def _printed(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (so nothing is imported yet)."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_import_does_not_load_mxnet_or_torch() -> None:
    code = (
        "import sys, segserve_client, segserve_client.gluon; "
        "print(sorted(m for m in ('mxnet', 'torch', 'fastapi', 'app') if m in sys.modules))"
    )
    assert _printed(code) == "[]"


def test_every_export_is_the_object_its_module_defines() -> None:
    # Exports are imported on first use; a fresh interpreter, so none has been yet.
    code = (
        "import importlib, segserve_client as c; "
        "assert sorted(c.__all__) == sorted(set(c.__all__)); "
        "assert set(c.__all__) <= set(dir(c)); "
        "print(all(getattr(importlib.import_module(getattr(c, n).__module__), n) is getattr(c, n)"
        " for n in c.__all__))"
    )
    assert _printed(code) == "True"


def test_the_protocol_alone_does_not_load_the_request_layer() -> None:
    # The server imports segserve_client.protocol, which runs the package's __init__.
    code = (
        "import sys, segserve_client.protocol.wire; "
        "print(sorted(m for m in ('segserve_client.http', 'tenacity') if m in sys.modules))"
    )
    assert _printed(code) == "[]"
