"""The Kubernetes manifests of deploy/k8s and the image facts they must agree with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "Dockerfile"

Manifest = dict[str, Any]


def kustomization() -> Manifest:
    """deploy/k8s/kustomization.yaml."""
    return _load_one(K8S / "kustomization.yaml")


def base_files() -> list[Path]:
    """The manifests the kustomization applies."""
    return [K8S / name for name in kustomization()["resources"]]


def optional_files() -> list[Path]:
    """The optional manifests (applied by hand, some replacing a base object)."""
    return sorted((K8S / "optional").glob("*.yaml"))


def manifest_files() -> list[Path]:
    """Every manifest: the kustomization's resources, then the optional ones."""
    return base_files() + optional_files()


@cache
def documents(path: Path) -> tuple[Manifest, ...]:
    """The YAML documents of one file."""
    with path.open(encoding="utf-8") as file:
        return tuple(doc for doc in yaml.safe_load_all(file) if doc is not None)


def _load_one(path: Path) -> Manifest:
    (doc,) = documents(path)
    return doc


def resource(kind: str, name: str | None = None, *, optional: bool = False) -> Manifest:
    """The one manifest of ``kind`` (and ``name``) in the base, or in optional/."""
    found = [
        doc
        for path in (optional_files() if optional else base_files())
        for doc in documents(path)
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} manifests of kind {kind} named {name}"
    return found[0]


def pod_spec() -> Manifest:
    """The Deployment's pod template spec."""
    spec: Manifest = resource("Deployment")["spec"]["template"]["spec"]
    return spec


def server_container() -> Manifest:
    """The container that runs ``segserve serve``."""
    (container,) = [c for c in pod_spec()["containers"] if c["name"] == "segserve"]
    found: Manifest = container
    return found


def all_containers() -> list[Manifest]:
    """Init containers and containers of the pod."""
    spec = pod_spec()
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_values(container: Manifest) -> dict[str, str]:
    """The container's literal environment (``value`` entries)."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


@dataclass(frozen=True)
class Image:
    """What the Dockerfile's runtime stage declares."""

    uid: int
    gid: int
    user: str
    exposed: tuple[int, ...]
    env: dict[str, str]


def image() -> Image:
    """The runtime stage of the Dockerfile: user, exposed ports, environment."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    runtime = text[text.rindex("\nFROM ") :]
    uid = re.search(r"useradd [^\n]*--uid (\d+)", runtime.replace("\\\n", " "))
    gid = re.search(r"groupadd [^\n]*--gid (\d+)", runtime.replace("\\\n", " "))
    user = re.search(r"^USER (\S+)", runtime, re.MULTILINE)
    assert uid, "the runtime stage creates no user"
    assert gid, "the runtime stage creates no group"
    assert user, "the runtime stage sets no USER"
    exposed = tuple(int(p) for p in re.findall(r"^EXPOSE (\d+)", runtime, re.MULTILINE))
    env_block = re.search(r"^ENV ((?:[^\n]*\\\n)*[^\n]*)", runtime, re.MULTILINE)
    assert env_block, "the runtime stage sets no environment"
    pairs = re.findall(r"(\w+)=(\S+)", env_block.group(1))
    return Image(int(uid.group(1)), int(gid.group(1)), user.group(1), exposed, dict(pairs))
