"""Every manifest passes kubernetes-validate's strict schemas (offline: they ship in the wheel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from tests.deploy.manifests import K8S, documents, kustomization, manifest_files

# The oldest Kubernetes the manifests claim (preStop `sleep` is on by default
# from 1.30) and the newest schema the package bundles.
OLDEST = "1.30"
VERSIONS = (OLDEST, kubernetes_validate.latest_version())


def test_kustomization_lists_every_manifest() -> None:
    top = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization()["resources"]) == sorted(top)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.relative_to(K8S).as_posix())
def test_strict_schema(path: Path, version: str) -> None:
    docs = documents(path)
    assert docs, f"{path} holds no manifest"
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_schema_rejects_an_unknown_field() -> None:
    (doc,) = documents(K8S / "service.yaml")
    broken = {**doc, "spec": {**doc["spec"], "clusterIp": "None"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, OLDEST, strict=True)


def test_command_line_tool_passes_every_manifest() -> None:
    command = [str(Path(sys.executable).with_name("kubernetes-validate")), "--strict", "--quiet"]
    done = subprocess.run(
        [*command, *map(str, manifest_files())], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
