"""Importing the client package pulls in no framework and has no side effects."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_mxnet_or_torch() -> None:
    code = (
        "import sys, segserve_client, segserve_client.gluon; "
        "print(sorted(m for m in ('mxnet', 'torch', 'fastapi', 'app') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
