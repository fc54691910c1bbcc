"""Folders that are complete whenever they exist: built aside, then renamed into place."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def publish_folder(target: Path, write: Callable[[Path], object]) -> Path:
    """``target``, first built by ``write(scratch)`` when it does not exist yet.

    ``write`` fills a temporary folder beside ``target``, which is then renamed
    into place, so the folder is complete whenever it exists. When another
    process publishes it first, this one discards its copy and returns the
    winner's.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(scratch)
        scratch.chmod(0o755)
        scratch.rename(target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
