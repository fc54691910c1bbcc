"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from hypothesis import settings

# No timing assertions in unit tests: hypothesis's default 200 ms deadline per
# example fails on a shared, busy machine (a normalisation example took 1.7 s).
settings.register_profile("segserve", deadline=None)
settings.load_profile("segserve")


@pytest.fixture(scope="module")
def d2l() -> Iterator[ModuleType]:
    """The chapter's MXNet code (:mod:`tests.chapter`) under its ``npx.set_np()``.

    The chapter switches MXNet to NumPy semantics once, when it is imported;
    other MXNet tests reset that switch, so every module that runs the chapter
    sets it again here and resets it afterwards.
    """
    pytest.importorskip("mxnet", reason="needs the mxnet extra")
    from mxnet import npx

    from tests import chapter

    npx.set_np()
    yield chapter
    npx.reset_np()
