"""The Helm chart: lint, every documented mode rendered and validated against the
Kubernetes schemas offline, the restricted Pod Security Standard, the values schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from ruamel.yaml import YAML

from tests.deploy.tools import (
    CHART,
    Render,
    documents,
    kinds,
    must_succeed,
    only,
    run_tool,
    tool,
)
from tests.support.paths import ROOT

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest
# kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CUSTOM_RESOURCES = {
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
    "ScaledObject": "keda.sh/v1alpha1",
}
EVERYTHING_ON = (
    "--set", "serviceMonitor.enabled=true",
    "--set", "prometheusRule.enabled=true",
    "--set", "prometheusRule.runbookUrl=https://docs.example.com/vibes-bridge/runbook",
    "--set", "dashboard.enabled=true",
    "--set", "networkPolicy.enabled=true",
    "--set", "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring",
    "--set", "networkPolicy.egress[0].ports[0].port=9092",
    "--set", "serviceAccount.create=true",
    "--set", "secret.values.vibes-username=demo",
    "--set", "secret.values.vibes-password=demo",
    "--set", "secret.env.KAFKA_SASL_PASSWORD=kafka-sasl-password",
    "--set-file", "mapping.files.shipment_event\\.avsc=schemas/shipment_event.avsc",
    "--set", "extraEnv[0].name=POD_NAME",
    "--set", "extraEnv[0].valueFrom.fieldRef.fieldPath=metadata.name",
)  # fmt: skip
MODES: dict[str, tuple[str, ...]] = {
    "standalone-default": (),
    "standalone-everything-hpa": (*EVERYTHING_ON, "--set", "autoscaling.enabled=true"),
    "standalone-everything-keda": (
        *EVERYTHING_ON, "--set", "keda.enabled=true", "--set", "keda.authenticationRef=kafka-auth",
    ),
    "standalone-existing-config-and-secret": (
        "--set", "mapping.existingConfigMap=shop-bridge-config",
        "--set", "secret.existingSecret=shop-bridge-credentials",
    ),
    "sidecar-parts": (
        "--set", "mode=sidecar",
        "--set", "sidecar.selectorLabels.app=shop",
        "--set", "serviceMonitor.enabled=true",
        "--set", "prometheusRule.enabled=true",
        "--set", "dashboard.enabled=true",
    ),
}  # fmt: skip


def test_helm_lint_strict(helm: Path, example_chart: Path) -> None:
    for chart in (CHART, example_chart):
        must_succeed(run_tool([helm, "lint", "--strict", chart]))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_renders_valid_manifests(render: Render, mode: str) -> None:
    validate_manifests(render(*MODES[mode]))


def test_example_sidecar_chart_renders_valid_manifests(render: Render, example_chart: Path) -> None:
    manifests = render(chart=example_chart)
    validate_manifests(manifests)
    pod = only(manifests, "Deployment")["spec"]["template"]["spec"]
    bridge = next(c for c in pod["initContainers"] if c["name"] == "vibes-bridge")
    assert bridge["restartPolicy"] == "Always", "the example runs the bridge as a native sidecar"
    volume_names = {v["name"] for v in pod["volumes"]}
    assert {m["name"] for m in bridge["volumeMounts"]} <= volume_names
    config_map = only(manifests, "ConfigMap")["metadata"]["name"]
    assert {"name": config_map} == next(
        v["configMap"] for v in pod["volumes"] if v["name"] == "vibes-bridge-config"
    ), "the sidecar mounts the ConfigMap the sub-chart rendered"


def validate_manifests(manifests: str) -> None:
    """Built-in kinds against the Kubernetes schemas (strict: unknown fields fail);
    custom resources by their API version and, for rules, promtool."""
    docs = documents(manifests)
    assert docs, "nothing rendered"
    for doc in docs:
        kind = doc["kind"]
        if kind in CUSTOM_RESOURCES:
            assert doc["apiVersion"] == CUSTOM_RESOURCES[kind]
            if kind == "PrometheusRule":
                check_rules_with_promtool(doc["spec"])
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(
                    f"{kind}/{doc['metadata']['name']} invalid for {version}: {error.message}"
                )


def check_rules_with_promtool(spec: dict[str, Any], tmp_dir: Path | None = None) -> None:
    rules_file = ROOT / ".cache" / "deploy-tools" / f"rendered-rules-{os.getpid()}.yaml"
    rules_file.parent.mkdir(parents=True, exist_ok=True)
    with rules_file.open("w") as out:
        YAML(typ="safe", pure=True).dump(spec, out)
    try:
        must_succeed(run_tool([tool("promtool"), "check", "rules", rules_file]))
    finally:
        rules_file.unlink()


@pytest.mark.parametrize("mode", ["standalone-default", "standalone-everything-hpa"])
def test_pod_meets_the_restricted_pod_security_standard(render: Render, mode: str) -> None:
    result = run_tool([tool("psa-check"), "-level", "restricted"], stdin=render(*MODES[mode]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 pod template(s) meet the restricted" in result.stdout


def test_example_pod_meets_the_restricted_pod_security_standard(
    render: Render, example_chart: Path
) -> None:
    result = run_tool([tool("psa-check")], stdin=render(chart=example_chart))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "weakening",
    [
        "securityContext.allowPrivilegeEscalation=true",
        "podSecurityContext.runAsNonRoot=false",
        "securityContext.capabilities.drop=null",
        "podSecurityContext.seccompProfile.type=Unconfined",
    ],
)
def test_pod_security_check_catches_a_weakened_pod(render: Render, weakening: str) -> None:
    """The check can fail: each weakening of the defaults is refused."""
    weakened = render("--set", weakening)
    result = run_tool([tool("psa-check")], stdin=weakened)
    assert result.returncode == 1, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (("--set", "mode=daemon"), "value must be one of 'standalone', 'sidecar'"),
        (("--set", "replicas=3"), "additional properties 'replicas' not allowed"),
        (("--set", "management.port=70000"), "/management/port"),
        (("--set-string", "management.port=http"), "/management/port"),
        (("--set", "image.digest=latest"), "/image/digest"),
        (("--set", "keda.enabled=true", "--set", "autoscaling.enabled=true"), "exclude each other"),
        (("--set", "sidecar.native=true"), "sidecar.native applies to mode: sidecar only"),
    ],
)
def test_wrong_values_fail_with_a_clear_message(
    helm: Path, setting: tuple[str, ...], message: str
) -> None:
    result = run_tool([helm, "template", "shop", CHART, *setting])
    assert result.returncode != 0
    assert message in result.stderr


def test_a_changed_mapping_rolls_the_pods(render: Render) -> None:
    def checksum(*options: str) -> str:
        pod = only(render(*options), "Deployment")["spec"]["template"]
        annotation: str = pod["metadata"]["annotations"]["checksum/config"]
        return annotation

    assert checksum() == checksum()
    assert checksum() != checksum("--set", "mapping.config=version: 1")
    assert checksum() != checksum("--set", "secret.values.vibes-password=rotated")


def test_sidecar_mode_renders_no_workload(render: Render) -> None:
    rendered = kinds(render("--set", "mode=sidecar"))
    assert rendered == ["ConfigMap", "Secret"], "no Service without the host pod's labels"


def test_everything_on_renders_every_optional_part(render: Render) -> None:
    hpa = kinds(render(*MODES["standalone-everything-hpa"]))
    keda = kinds(render(*MODES["standalone-everything-keda"]))
    common = {
        *("ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "PrometheusRule"),
        *("Secret", "Service", "ServiceAccount", "ServiceMonitor"),
    }
    assert set(hpa) == common | {"HorizontalPodAutoscaler"}
    assert set(keda) == common | {"ScaledObject"}
    assert hpa.count("ConfigMap") == 2, "the mapping and the Grafana dashboard"


def test_prometheus_rule_links_the_configured_runbook(render: Render) -> None:
    rule = only(render(*MODES["standalone-everything-hpa"]), "PrometheusRule")
    urls = [r["annotations"]["runbook_url"] for r in rule["spec"]["groups"][0]["rules"]]
    assert urls
    assert all(u.startswith("https://docs.example.com/vibes-bridge/runbook#") for u in urls)


def test_chart_ships_the_same_rules_and_dashboard_as_deploy() -> None:
    """The chart cannot read files outside itself, so it keeps copies (`make deploy-sync`)."""
    for source in ("prometheus/vibes-bridge.rules.yaml", "grafana/vibes-bridge-dashboard.json"):
        original = ROOT / "deploy" / source
        copy = CHART / "files" / original.name
        assert original.read_bytes() == copy.read_bytes(), (
            f"{copy} differs from {original}: run `make deploy-sync`"
        )


def test_app_version_written_in_the_helpers_is_the_charts() -> None:
    chart = YAML(typ="safe", pure=True).load((CHART / "Chart.yaml").read_text())
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    block = helpers.split('define "vibes-bridge.appVersion" -}}', 1)[1].split("{{- end }}", 1)[0]
    assert block.strip() == chart["appVersion"]


@pytest.mark.parametrize("chart_name", ["vibes-bridge", "shop-with-bridge"])
def test_the_charts_default_mapping_is_a_valid_configuration(
    render: Render, example_chart: Path, tmp_path: Path, chart_name: str
) -> None:
    """The bridge's own `validate` accepts the file the chart mounts, with the
    Secret's files in place, so the defaults start a working pod."""
    chart = CHART if chart_name == "vibes-bridge" else example_chart
    config_map = only(render(chart=chart), "ConfigMap")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for key in ("vibes-username", "vibes-password"):
        (secrets / key).write_text("demo\n")
    config = config_map["data"]["bridge.yaml"].replace("/etc/vibes-bridge/secrets", str(secrets))
    (tmp_path / "bridge.yaml").write_text(config)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "VIBES_COMPANY_KEY": "shop"}
    env["BRIDGE_MANAGEMENT_PORT"] = "9464"
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "validate", "-c", str(tmp_path / "bridge.yaml")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
