"""charts/leadops: lint, render, conventions (labels, documented values, schema), RBAC, toggles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.unit.packaging.chart import CHART, ROOT, by_kind, helm, one, render

DIGEST = "sha256:" + "ab" * 32
ALL_TOGGLES = (
    "metrics.serviceMonitor.enabled=true",
    "prometheusRule.enabled=true",
    "grafanaDashboard.enabled=true",
    "networkPolicy.enabled=true",
    "ingestKeys.create=true",
    "ingestKeys.usableBy=acme",
    "ingestKeys.tenants.acme=acme-ingest-key-0123456789",
)
STANDARD_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/component",
}


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(objects)["env"]}


def test_helm_lint_strict_passes_with_defaults_and_every_toggle(helm_bin: Path) -> None:
    for extra in ((), tuple(a for pair in ALL_TOGGLES for a in ("--set", pair))):
        result = helm(helm_bin, "lint", "--strict", str(CHART), *extra)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_rendered_object_carries_the_standard_labels(helm_bin: Path) -> None:
    objects = render(helm_bin, *ALL_TOGGLES, "operator.watchNamespaces={sales,ops}")
    assert len(objects) >= 9
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels.keys() >= STANDARD_LABELS, obj["metadata"]["name"]
        assert labels["app.kubernetes.io/instance"] == "lo"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_each_template_renders_one_kind_of_resource(helm_bin: Path) -> None:
    kinds: dict[str, set[str]] = {}
    # Cluster-wide and namespaced operators together render every template.
    for scope in ("operator.watchNamespaces=null", "operator.watchNamespaces={sales,ops}"):
        args = ["template", "lo", str(CHART), "--set", scope]
        for pair in ALL_TOGGLES:
            args += ["--set", pair]
        result = helm(helm_bin, *args)
        assert result.returncode == 0, result.stderr
        for doc in result.stdout.split("\n---"):
            source = re.search(r"^# Source: (\S+)", doc, re.MULTILINE)
            body = yaml.safe_load(doc)
            if source and body:
                kinds.setdefault(Path(source.group(1)).name, set()).add(body["kind"])
    templates = {p.name for p in (CHART / "templates").glob("*.yaml")}
    assert set(kinds) == templates
    assert all(len(k) == 1 for k in kinds.values()), kinds


def _value_paths(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        paths[path] = value
        if isinstance(value, dict) and value:
            paths.update(_value_paths(value, f"{path}."))
    return paths


def test_every_value_is_documented_and_known_to_the_schema() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    documented = dict(re.findall(r"^\s*## @param (\S+) (.+)$", text, re.MULTILINE))
    paths = _value_paths(values)
    assert set(documented) <= set(paths), set(documented) - set(paths)
    for path in paths:
        parent_documented = any(path.startswith(d + ".") for d in documented)
        has_children = isinstance(paths[path], dict) and any(
            p.startswith(path + ".") for p in documented
        )
        assert path in documented or parent_documented or has_children, f"undocumented {path}"
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)*", path) or (
            parent_documented
        ), f"value {path} is not camelCase"
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path in documented:
        node = schema
        for part in path.split("."):
            assert part in node.get("properties", {}), f"values.schema.json lacks {path}"
            node = node["properties"][part]
        assert node.get("description"), f"values.schema.json: {path} has no description"


def test_schema_rejects_typos_and_bad_values_with_a_clear_error(helm_bin: Path) -> None:
    cases = {
        "operator.replicas=2": "additional properties 'replicas' not allowed",
        "image.digest=sha256:abc": "/image/digest",
        "operator.workers=0": "/operator/workers",
        "replicaCount=9": "/replicaCount",
    }
    for pair, message in cases.items():
        result = helm(helm_bin, "template", "lo", str(CHART), "--set", pair)
        assert result.returncode != 0, pair
        assert message in result.stderr, result.stderr


def test_image_is_built_from_registry_repository_tag_and_digest(helm_bin: Path) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    default = _container(render(helm_bin))
    assert default["image"] == f"docker.io/leadops/operator:{app_version}"
    tagged = _container(render(helm_bin, "image.registry=registry.example.com", "image.tag=1.2.3"))
    assert tagged["image"] == "registry.example.com/leadops/operator:1.2.3"
    pinned = _container(render(helm_bin, "image.tag=1.2.3", f"image.digest={DIGEST}"))
    assert pinned["image"] == f"docker.io/leadops/operator@{DIGEST}"


def _rules(role: dict[str, Any]) -> list[tuple[str, str, set[str]]]:
    return [
        (group, resource, set(rule["verbs"]))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    ]


def test_rbac_is_split_into_framework_and_application_rules_without_wildcards(
    helm_bin: Path,
) -> None:
    objects = render(helm_bin)
    framework = _rules(one(objects, "ClusterRole", "-framework"))
    application = _rules(one(objects, "ClusterRole", "-application"))
    for group, resource, verbs in framework + application:
        assert "*" not in verbs, (group, resource)
        assert "*" not in {resource, group}
    assert {(g, r) for g, r, _ in framework} == {
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("", "namespaces"),
    }
    assert not any("peering" in r for _, r, _ in framework), "kopf runs standalone"
    app = {(g, r): v for g, r, v in application}
    assert app[("leadops.io", "leadmodels")] == {"get", "list", "watch", "patch"}
    assert app[("", "secrets")] == {"get"}, "Secrets are read by name, never listed"
    assert app[("leadops.io", "leadmodels/status")] == {"patch"}
    assert app[("", "events")] == {"create"}
    # Merge patches only: nothing is ever replaced whole; and no way to grant more than held.
    assert not any(v & {"update", "escalate", "bind", "impersonate"} for v in app.values())
    assert not any(r in {"pods/exec", "pods/log"} for _, r in app)
    # Jobs: only the bootstrap Job, read and created once; never patched or deleted.
    assert app[("batch", "jobs")] == {"get", "create"}
    # Pods and ReplicaSets are read for rollout state (why Pods are unready), never written.
    assert app[("", "pods")] == {"get", "list", "watch"}
    assert app[("apps", "replicasets")] == {"get", "list", "watch"}
    for watched in [("apps", "deployments"), ("", "configmaps")]:
        assert {"list", "watch"} <= app[watched], watched
    # The follow-ups Service, Deployment and ServiceMonitor go when spec.followUps is removed.
    assert app[("", "services")] == {"get", "create", "patch", "delete"}
    assert "delete" in app[("apps", "deployments")]
    for child in [
        ("batch", "cronjobs"),
        ("", "serviceaccounts"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
    ]:
        assert app[child] == {"get", "create", "patch"}, child
    assert app[("monitoring.coreos.com", "servicemonitors")] == {"get", "create", "patch", "delete"}
    bindings = by_kind(objects, "ClusterRoleBinding")
    assert {b["roleRef"]["name"] for b in bindings} == {
        "lo-leadops-framework",
        "lo-leadops-application",
    }
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "lo-leadops", "namespace": "leadops-system"}
        ]


def test_watching_namespaces_binds_application_rules_only_there(helm_bin: Path) -> None:
    objects = render(helm_bin, "operator.watchNamespaces={sales,ops}")
    assert [b["roleRef"]["name"] for b in by_kind(objects, "ClusterRoleBinding")] == [
        "lo-leadops-framework"
    ]
    role_bindings = [
        b for b in by_kind(objects, "RoleBinding") if b["metadata"]["name"].endswith("-application")
    ]
    assert sorted(b["metadata"]["namespace"] for b in role_bindings) == ["ops", "sales"]
    assert all(b["roleRef"]["name"] == "lo-leadops-application" for b in role_bindings)
    args = _container(objects)["args"]
    assert args[:5] == ["operator", "--namespace", "sales", "--namespace", "ops"]
    assert "--all-namespaces" not in args
    assert "--all-namespaces" in _container(render(helm_bin))["args"]


def test_operator_pod_is_hardened_and_takes_scheduling_and_env_overrides(helm_bin: Path) -> None:
    objects = render(
        helm_bin,
        "nodeSelector.pool=ops",
        "tolerations[0].key=dedicated",
        "tolerations[0].operator=Exists",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0].key=zone",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
        "extraEnv[0].name=HTTPS_PROXY",
        "extraEnv[0].value=http://proxy:3128",
        "resources.limits.memory=512Mi",
    )
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(objects)
    # Two replicas by default: leader election keeps the second idle, so rolling is safe.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0},
    }
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["nodeSelector"] == {"pool": "ops"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert "nodeAffinity" in pod["affinity"]
    assert _env(objects)["HTTPS_PROXY"] == "http://proxy:3128"
    assert container["resources"]["limits"]["memory"] == "512Mi"
    assert container["args"][0] == "operator"
    assert {p["name"] for p in container["ports"]} == {"metrics", "health"}
    assert container["livenessProbe"]["httpGet"]["port"] == "health"


def test_metrics_service_and_optional_service_monitor_select_the_operator(
    helm_bin: Path,
) -> None:
    default = render(helm_bin)
    assert not by_kind(default, "ServiceMonitor")
    objects = render(
        helm_bin, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=kps"
    )
    service = one(objects, "Service", "-metrics")
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_static_prometheus_rule_is_the_operator_rule_file(
    helm_bin: Path,
) -> None:
    default = render(helm_bin)
    assert not by_kind(default, "PrometheusRule")
    assert _env(default)["LEADOPS_ALERT_RULES"] == "true"
    objects = render(helm_bin, "prometheusRule.enabled=true")
    rule = one(objects, "PrometheusRule")
    source = ROOT / "operator" / "leadops" / "operator" / "manifests" / "prometheus-rules.yaml"
    assert rule["spec"] == yaml.safe_load(source.read_text())
    # One set of rules: the operator stops making its per-LeadModel copies.
    assert _env(objects)["LEADOPS_ALERT_RULES"] == "false"


def test_prometheus_rule_for_sets_the_static_rule_and_the_operators_rules(
    helm_bin: Path,
) -> None:
    objects = render(
        helm_bin,
        "prometheusRule.enabled=true",
        "prometheusRule.for.LeadModelHighDrift=30s",
        "prometheusRule.for.LeadModelCriticalAuc=10s",
    )
    rules = one(objects, "PrometheusRule")["spec"]["groups"]
    fors = {r["alert"]: r.get("for") for g in rules for r in g["rules"]}
    assert (fors["LeadModelHighDrift"], fors["LeadModelCriticalAuc"]) == ("30s", "10s")
    assert fors["LeadModelStale"] == "15m"
    env = _env(objects)
    assert env["LEADOPS_ALERT_FOR"] == "LeadModelCriticalAuc=10s,LeadModelHighDrift=30s"
    assert "LEADOPS_ALERT_FOR" not in _env(render(helm_bin))


def test_scorer_monitor_interval_reaches_the_operator(helm_bin: Path) -> None:
    assert _env(render(helm_bin))["LEADOPS_SCRAPE_INTERVAL"] == "30s"
    set_ = _env(render(helm_bin, "scorerMonitor.interval=5s"))
    assert set_["LEADOPS_SCRAPE_INTERVAL"] == "5s"


def test_prometheus_rule_for_refuses_an_unknown_alert_or_a_bad_duration(helm_bin: Path) -> None:
    args = ["template", "lo", str(CHART)]
    unknown = helm(helm_bin, *args, "--set", "prometheusRule.for.HighDrift=1m")
    assert unknown.returncode != 0
    assert "prometheusRule.for: HighDrift is not a LeadOps alert" in unknown.stderr
    bad = helm(helm_bin, *args, "--set", "prometheusRule.for.LeadModelHighDrift=an-hour")
    assert bad.returncode != 0
    assert "prometheusRule/for/LeadModelHighDrift" in bad.stderr


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar(helm_bin: Path) -> None:
    objects = render(helm_bin, "grafanaDashboard.namespace=monitoring")
    configmap = one(objects, "ConfigMap", "-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    shipped = json.loads((CHART / "files" / "grafana" / "leadops.json").read_text())
    assert json.loads(configmap["data"]["leadops.json"]) == shipped
    assert not by_kind(render(helm_bin, "grafanaDashboard.enabled=false"), "ConfigMap")


def test_chart_crds_are_identical_to_the_top_level_crds() -> None:
    top = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert top, "crds/ holds no CRD"
    assert chart.keys() == top.keys(), "charts/leadops/crds/ and crds/ hold different files"
    for name, content in top.items():
        assert chart[name] == content, f"charts/leadops/crds/{name} differs from crds/{name}"
    kinds = {yaml.safe_load(c)["spec"]["names"]["kind"] for c in top.values()}
    assert "LeadModel" in kinds


def _notes(helm_bin: Path, *sets: str) -> str:
    args = ["install", "lo", str(CHART), "--dry-run=client", "--namespace", "leadops-system"]
    for pair in sets:
        args += ["--set", pair]
    result = helm(helm_bin, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.partition("\nNOTES:\n")[2]


def test_notes_name_what_was_installed_and_where_to_look(helm_bin: Path) -> None:
    notes = _notes(helm_bin)
    assert 'release "lo" in namespace "leadops-system"' in notes
    assert (
        "Deployment lo-leadops (2 replicas, one leading (Lease lo-leadops), "
        "image docker.io/leadops/operator:" in notes
    )
    assert "reconciling LeadModels in every namespace" in notes
    assert "kubectl apply -k examples/tenants/acme" in notes
    assert "kubectl -n leadops-system logs deployment/lo-leadops" in notes
    assert "PrometheusRule" not in notes  # off by default: not claimed as installed

    scoped = _notes(helm_bin, "operator.watchNamespaces={sales,eng}", *ALL_TOGGLES)
    assert "reconciling LeadModels in: sales, eng" in scoped
    assert "PrometheusRule" in scoped
    assert "ServiceMonitor" in scoped


def test_ingest_keys_secret_is_opt_in_and_holds_one_tenant_key_line_each(helm_bin: Path) -> None:
    assert not [o for o in render(helm_bin) if o["kind"] == "Secret"]
    objects = render(
        helm_bin,
        "ingestKeys.create=true",
        "ingestKeys.namespace=sales",
        "ingestKeys.usableBy=acme",
        "ingestKeys.tenants.acme=acme-ingest-key-0123456789",
        "ingestKeys.tenants.globex=globex-ingest-key-012345",
    )
    secret = one(objects, "Secret")
    assert secret["metadata"]["name"] == "lo-leadops-ingest-keys"
    assert secret["metadata"]["namespace"] == "sales"
    assert secret["metadata"]["annotations"]["leadops.io/usable-by"] == "acme"
    lines = secret["stringData"]["keys"].split()
    assert lines == ["acme=acme-ingest-key-0123456789", "globex=globex-ingest-key-012345"]
    # The keys file parses as the scorer reads it.
    from leadops.scorer.auth import parse_ingest_keys  # noqa: PLC0415

    pairs = parse_ingest_keys(secret["stringData"]["keys"], where="chart")
    assert [tenant for tenant, _ in pairs] == ["acme", "globex"]
    refused = helm(helm_bin, "template", "lo", str(CHART), "--set", "ingestKeys.create=true")
    assert refused.returncode != 0
    assert "ingestKeys.tenants" in refused.stderr


def test_two_replicas_elect_a_leader_on_a_lease_only_they_may_update(helm_bin: Path) -> None:
    objects = render(helm_bin)
    args = _container(objects)["args"]
    at = args.index("--leader-elect-lease")
    assert "--leader-elect" in args
    assert args[at + 1] == "leadops-system/lo-leadops"
    assert args[args.index("--lease-duration") + 1] == "15"
    role = next(
        r for r in by_kind(objects, "Role") if r["metadata"]["name"] == "lo-leadops-leader-election"
    )
    assert role["metadata"]["namespace"] == "leadops-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["lo-leadops"],
            "verbs": ["get", "update"],
        },
    ]
    single = render(helm_bin, "replicaCount=1")
    assert "--leader-elect" not in _container(single)["args"]
    assert one(single, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert not [r for r in by_kind(single, "Role") if "leader" in r["metadata"]["name"]]


def test_selector_value_shards_the_fleet(helm_bin: Path) -> None:
    args = _container(render(helm_bin, "operator.selector=leadops.io/shard=a"))["args"]
    assert args[args.index("--selector") + 1] == "leadops.io/shard=a"
    assert "--selector" not in _container(render(helm_bin))["args"]
