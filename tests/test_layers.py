"""The import directions of STYLE.md, checked on the source files' syntax trees.

protocol -> nothing of the project; the client -> never service or app;
service -> never app; outside client/ and its tests, only the client's public
modules. Imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "client" / "src" / "segserve_client"
PROTOCOL = CLIENT / "protocol"
PUBLIC = (
    "segserve_client",
    "segserve_client.protocol",
    "segserve_client.torch",
    "segserve_client.gluon",
)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def under(module: str, package: str) -> bool:
    """Whether ``module`` is ``package`` or inside it."""
    return module == package or module.startswith(package + ".")


def where(path: Path, line: int, module: str) -> str:
    """``path:line: module``, the path relative to the repository when inside it."""
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{shown}:{line}: {module}"


def offenders(files: list[Path], banned: tuple[str, ...]) -> list[str]:
    """The imports in ``files`` of any module in ``banned`` (or below)."""
    return [
        where(path, line, module)
        for path in files
        for line, module in imports(path)
        if any(under(module, b) for b in banned)
    ]


def python_files(*folders: Path) -> list[Path]:
    files = sorted(f for folder in folders for f in folder.rglob("*.py"))
    assert files, folders  # a moved folder must not make the check vacuous
    return files


def test_protocol_imports_nothing_else_of_the_project() -> None:
    files = python_files(PROTOCOL)
    others = [f"segserve_client.{p.stem}" for p in CLIENT.glob("*.py") if p.stem != "__init__"]
    assert offenders(files, ("service", "app", "tests", *others)) == []
    outside = [
        where(path, line, module)
        for path in files
        for line, module in imports(path)
        if module == "segserve_client"
    ]
    assert outside == []


def test_client_never_imports_the_server() -> None:
    assert (
        offenders(python_files(CLIENT), ("service", "app", "fastapi", "starlette", "pydantic"))
        == []
    )


def test_service_never_imports_app() -> None:
    assert offenders(python_files(ROOT / "service"), ("app", "fastapi", "starlette")) == []


@pytest.mark.parametrize("folder", ["app", "service", "bench", "examples", "tools", "tests"])
def test_only_the_clients_public_modules_are_imported_outside_it(folder: str) -> None:
    files = [f for f in python_files(ROOT / folder) if ROOT / "tests" / "client" not in f.parents]
    private = [
        where(path, line, module)
        for path in files
        for line, module in imports(path)
        if under(module, "segserve_client") and not any(under(module, p) for p in PUBLIC)
    ]
    assert private == []


def test_the_checks_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from app.main import create_app\n    import segserve_client.session\n"
    )
    assert offenders([sample], ("app",)) == [f"{sample}:2: app.main"]
    assert offenders([sample], ("segserve_client.session",)) == [
        f"{sample}:3: segserve_client.session"
    ]
    assert offenders([sample], ("segserve",)) == []  # a prefix of a name is not its package
