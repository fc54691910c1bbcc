"""What the schemas cannot see: the manifests agree with the app, the image and the benchmark."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import SecretStr

from app.main import create_app_with_config
from app.metrics import Metrics
from service.config import Settings
from tests.deploy.manifests import (
    ROOT,
    Manifest,
    all_containers,
    env_values,
    image,
    pod_spec,
    resource,
    server_container,
)

SELECTOR = {"app.kubernetes.io/name": "segserve", "app.kubernetes.io/component": "server"}
# Seconds the grace period keeps beyond the preStop pause and the drain: the
# process's own exit after the drain, and the kubelet's signal delivery.
GRACE_MARGIN = 5
_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti)?$")
_UNITS = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_bytes(text: str) -> int:
    """Bytes of a Kubernetes quantity written as an integer with a binary suffix."""
    match = _QUANTITY.match(text)
    assert match, f"quantity {text!r} is not an integer with a binary suffix"
    return int(match.group(1)) * _UNITS[match.group(2)]


def _app_get_paths() -> set[str]:
    """Paths the app answers ``GET`` on, from its OpenAPI document."""
    app = create_app_with_config(Settings(data_root=None, api_token=None))
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {path for path, operations in paths.items() if "get" in operations}


def test_probe_paths_are_routes_of_the_app() -> None:
    container = server_container()
    paths = {container[probe]["httpGet"]["path"] for probe in _probes(container)}
    assert paths == {"/readyz", "/healthz"}
    assert paths <= _app_get_paths()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"


def _probes(container: Manifest) -> list[str]:
    return [
        name for name in ("startupProbe", "readinessProbe", "livenessProbe") if name in container
    ]


def test_probes_and_services_reach_the_port_the_server_listens_on() -> None:
    container = server_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    listened = int(env_values(container).get("SEGSERVE_PORT", image().env["SEGSERVE_PORT"]))
    assert ports == {"http": listened}
    assert listened in image().exposed
    assert image().env["SEGSERVE_PORT"] == str(listened)
    assert env_values(container)["SEGSERVE_HOST"] == "0.0.0.0"
    for probe in _probes(container):
        assert container[probe]["httpGet"]["port"] in ports
    for name in ("segserve", "segserve-pods"):
        for port in resource("Service", name)["spec"]["ports"]:
            assert port["targetPort"] in ports


def test_startup_probe_allows_a_cold_cache_build() -> None:
    probe = server_container()["startupProbe"]
    allowed = probe["periodSeconds"] * probe["failureThreshold"]
    cold = _bench()["startup"]["cold_ready"]
    # At least 10 minutes, and 50 times the measured cold start on this machine.
    assert allowed >= max(600, 50 * max(cold))


def test_pods_run_as_the_image_user() -> None:
    security = pod_spec()["securityContext"]
    facts = image()
    assert facts.user == f"{facts.uid}:{facts.gid}"
    assert security["runAsNonRoot"] is True
    assert (
        (security["runAsUser"], security["runAsGroup"]) == (facts.uid, facts.gid) == (10001, 10001)
    )
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("container", all_containers(), ids=lambda c: str(c["name"]))
def test_containers_are_locked_down(container: Manifest) -> None:
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["image"] == server_container()["image"]


def test_image_tag_is_the_project_version() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
    assert version
    assert server_container()["image"] == f"segserve:{version.group(1)}"


@pytest.mark.parametrize("container", all_containers(), ids=lambda c: str(c["name"]))
def test_writable_mounts_are_where_the_process_writes(container: Manifest) -> None:
    env = {**image().env, **env_values(container)}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    writable = {
        m["mountPath"]: m["name"] for m in container["volumeMounts"] if not m.get("readOnly")
    }
    # The decoded cache, and Python's tempfile folder (the Prometheus
    # multi-process directory of a server with several workers).
    assert set(writable) == {env["SEGSERVE_CACHE_DIR"], "/tmp"}
    for name in writable.values():
        assert "emptyDir" in volumes[name]
        assert volumes[name]["emptyDir"].get("medium") != "Memory"
    data = {m["mountPath"]: m for m in container["volumeMounts"] if m.get("readOnly")}
    assert set(data) == {env["SEGSERVE_DATA_ROOT"]}


def test_data_volume_is_a_read_only_many_claim() -> None:
    (data,) = [v for v in pod_spec()["volumes"] if v["name"] == "data"]
    claim = data["persistentVolumeClaim"]
    assert claim["readOnly"] is True
    pvc = resource("PersistentVolumeClaim", claim["claimName"])
    assert pvc["spec"]["accessModes"] == ["ReadOnlyMany"]


def test_init_container_builds_the_cache_the_server_reads() -> None:
    (prepare,) = pod_spec()["initContainers"]
    assert prepare["command"][:2] == ["segserve", "prepare"]
    workers = int(prepare["command"][prepare["command"].index("--workers") + 1])
    assert workers <= int(prepare["resources"]["limits"]["cpu"])
    for name in ("SEGSERVE_CACHE_DIR", "SEGSERVE_DATA_ROOT"):
        assert env_values(prepare)[name] == env_values(server_container())[name]


@pytest.mark.parametrize("container", all_containers(), ids=lambda c: str(c["name"]))
def test_every_segserve_variable_is_a_setting(container: Manifest) -> None:
    names = [e["name"] for e in container.get("env", []) if e["name"].startswith("SEGSERVE_")]
    fields = {"SEGSERVE_" + name.upper() for name in Settings.model_fields}
    assert names
    assert set(names) <= fields, set(names) - fields


def test_literal_settings_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env_values(server_container()).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.workers >= 1
    assert str(settings.data_root) == env_values(server_container())["SEGSERVE_DATA_ROOT"]


def test_token_comes_from_a_secret() -> None:
    (token,) = [e for e in server_container()["env"] if e["name"] == "SEGSERVE_API_TOKEN"]
    ref = token["valueFrom"]["secretKeyRef"]
    assert ref.get("optional", False) is False
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"create secret generic {ref['name']}" in readme
    assert isinstance(Settings(api_token=SecretStr("x")).api_token, SecretStr)


def test_service_links_cannot_shadow_settings() -> None:
    # A Service named segserve would inject SEGSERVE_PORT=tcp://... into every pod.
    assert pod_spec()["enableServiceLinks"] is False


def test_grace_period_covers_the_drain() -> None:
    spec = pod_spec()
    pause = server_container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = _drain_seconds()
    assert spec["terminationGracePeriodSeconds"] >= pause + drain + GRACE_MARGIN


def _drain_seconds() -> float:
    """The server's drain period on SIGTERM: the setting's value in the pod, else its default."""
    fields = [name for name in Settings.model_fields if "drain" in name]
    if not fields:
        pytest.skip("the settings have no drain period yet")
    (field,) = fields
    env = env_values(server_container())
    value = env.get("SEGSERVE_" + field.upper())
    return float(value) if value is not None else float(Settings.model_fields[field].default)


def test_labels_and_selectors_match() -> None:
    deployment = resource("Deployment")
    assert deployment["spec"]["selector"]["matchLabels"] == SELECTOR
    assert deployment["spec"]["template"]["metadata"]["labels"] == SELECTOR
    for name in ("segserve", "segserve-pods"):
        assert resource("Service", name)["spec"]["selector"] == SELECTOR
    assert resource("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == SELECTOR
    assert (
        resource("NetworkPolicy", optional=True)["spec"]["podSelector"]["matchLabels"] == SELECTOR
    )
    (spread,) = pod_spec()["topologySpreadConstraints"]
    assert spread["labelSelector"]["matchLabels"] == SELECTOR
    for hpa in (
        resource("HorizontalPodAutoscaler"),
        resource("HorizontalPodAutoscaler", optional=True),
    ):
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
        assert hpa["metadata"]["labels"] == SELECTOR


def test_queue_depth_autoscaler_replaces_the_cpu_one_and_names_a_real_metric() -> None:
    base = resource("HorizontalPodAutoscaler")
    queue = resource("HorizontalPodAutoscaler", optional=True)
    assert queue["metadata"]["name"] == base["metadata"]["name"]  # applying it replaces it
    (pods,) = [m["pods"] for m in queue["spec"]["metrics"] if m["type"] == "Pods"]
    name = pods["metric"]["name"]
    exposition = Metrics().exposition().decode()
    assert re.search(rf"^# TYPE {name} gauge$", exposition, re.MULTILINE), name


def test_headless_service_lists_ready_pods_only() -> None:
    spec = resource("Service", "segserve-pods")["spec"]
    assert spec["clusterIP"] == "None"
    assert spec.get("publishNotReadyAddresses", False) is False


def test_disruptions_and_roll_outs_keep_capacity() -> None:
    hpa = resource("HorizontalPodAutoscaler")["spec"]
    pdb = resource("PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] < hpa["minReplicas"]
    rolling = resource("Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0
    assert rolling["maxSurge"] >= 1
    metric = hpa["metrics"][0]["resource"]
    assert metric["name"] == "cpu"
    assert "cpu" in server_container()["resources"]["requests"]


def test_resources_cover_the_benchmark_memory() -> None:
    resources = server_container()["resources"]
    (main,) = _bench()["startup"]["memory"]["1"]
    request = quantity_bytes(resources["requests"]["memory"])
    limit = quantity_bytes(resources["limits"]["memory"])
    assert request >= main["peak_rss"]
    assert limit >= 2 * main["peak_rss"]
    (cache,) = [v for v in pod_spec()["volumes"] if v["name"] == "cache"]
    assert (
        quantity_bytes(cache["emptyDir"]["sizeLimit"]) >= 1.5 * _bench()["startup"]["cache_bytes"]
    )


def _bench() -> dict[str, Any]:
    with (ROOT / "bench" / "results.json").open(encoding="utf-8") as file:
        results: dict[str, Any] = json.load(file)
    return results
