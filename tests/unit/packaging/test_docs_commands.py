"""Every shell command in docs/operations.md and docs/gitops.md is accounted for: where a
test runs it for real, or why it cannot run here yet. A new command fails this test
until someone says how it is exercised."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "docs" / "operations.md", ROOT / "docs" / "gitops.md"]
K8S = "tests/integration/test_packaging_k8s.py"
SERVICES = "tests/integration/test_operations_guide_services.py"
NOT_YET = "NOT EXERCISED"
CHAT_KEYS = "tests/integration/test_chat_keys.py::test_operations_guide_chat_key_runbook"
MONITORING = "tests/e2e/test_monitoring.py (real Prometheus Operator and Prometheus)"
FLUX = "tests/e2e/test_flux.py (Flux's real controllers, examples/flux applied)"

# (pattern, where it runs). Patterns match a whole command line (continuations joined).
COVERAGE: list[tuple[str, str]] = [
    (r"(NS|LM)=\w+", f"{K8S} (sets NS and LM for every guide command)"),
    (r"SCORER=\S+", f"{SERVICES} (SCORER = a real scorer; no port-forward: kwok runs no pods)"),
    (
        r"kubectl get leadmodels -A( -o wide)?",
        f"{K8S}::test_operations_guide_model_status_commands",
    ),
    (r"kubectl describe leadmodel .*", f"{K8S}::test_operations_guide_model_status_commands"),
    (r"(PREVIOUS=\$\()?kubectl (get|patch) leadmodel .*", f"{K8S}::test_operations_guide_*"),
    (r"kubectl create job .*", f"{K8S}::test_operations_guide_manual_retrain_and_dry_run_*"),
    (r"JOB=.*", f"{K8S}::test_operations_guide_manual_retrain_and_dry_run_backfill_commands"),
    (r"kubectl wait .*", f"{K8S}::test_operations_guide_manual_retrain_and_dry_run_*"),
    (r"kubectl get (jobs|events) .*", f"{K8S}::test_operations_guide_*"),
    (r"kubectl logs .*", f"{NOT_YET}: kwok pods have no containers, so no logs"),
    (r"kubectl -n argocd patch configmap argocd-cm .*", f"{K8S}::test_argocd_cm_patch_*"),
    (r"kubectl apply -f examples/argocd/.*", f"{NOT_YET}: needs Argo CD's CRDs"),
    (r"kubectl apply -f examples/flux/.*", f"{FLUX}::_user_applies_the_examples"),
    (
        r"kubectl -n flux-system annotate --overwrite gitrepository leadops .*requestedAt.*",
        f"{FLUX} (Flux.reconcile, after each push)",
    ),
    (r"kubectl get kustomization leadops-tenant-acme .*", f"{FLUX} (Flux.ready_at)"),
    (r"sed -i \"s/modelVersion: .*leadmodel\.yaml", f"{FLUX} (_pin: the same edit)"),
    (r"kubectl get pods -n sales -l .*model-version", f"{FLUX} (_serving_on_pods)"),
    (
        r"kubectl get leadmodel acme -n sales --show-managed-fields .*",
        f"{FLUX}::test_flux_reports_no_drift_the_operator_never_writes_the_spec",
    ),
    (r"curl .*/ops/.*", f"{SERVICES} (real scorer over HTTP)"),
    (r"wc -l outcomes\.csv|awk .*outcomes\.csv.*", f"{SERVICES}::test_outcome_data_checks_*"),
    (r"leadops (status -A|rollback .*|backfill .*)", f"{K8S}::test_operations_guide_leadops_cli_*"),
    (r"REDIS_URL=\S+ leadops pii-backfill.*", f"{SERVICES}::test_pii_backfill_* (real Redis)"),
    (r"git (commit|push|log|revert) .*|git push", "tests/unit/packaging/test_gitops.py (revert)"),
    (
        r"kubectl create secret generic \S+-key-salt .*",
        f"{NOT_YET}: needs openssl in the cluster test",
    ),
    (r"kubectl patch leadmodel .*keySaltSecretRef.*", f"{NOT_YET}: spec.pii in test_builders_pii"),
    (r"kubectl get secret \S+-key-salt .*", f"{NOT_YET}: the Secret comes from the line above"),
    (r"KEY=.*leadops chat-key .*|redis-cli LRANGE .*|rm key-salt", f"{CHAT_KEYS} (real Redis)"),
    (
        r"helm upgrade leadops charts/leadops .*--set prometheusRule\.for\..*",
        "tests/unit/packaging/test_chart.py::test_prometheus_rule_for_*; "
        f"{MONITORING} (the chart installed with prometheusRule.for, then upgraded)",
    ),
    (r"M=\$\(dirname .*build\.sh monitoring.*", f"{MONITORING} (monitoring_home)"),
    (r"kubectl create namespace monitoring", f"{MONITORING} (a namespace per run)"),
    (r"kubectl apply (--server-side|-n monitoring) -f \"\$M/.*", f"{MONITORING}::install_*"),
    (r"kubectl apply -f prometheus\.yaml", f"{MONITORING} (create_prometheus)"),
    (r"P=/api/v1/namespaces/monitoring/pods/.*", f"{MONITORING} (Prometheus.get)"),
    (r"kubectl -n \w+ get servicemonitor,prometheusrule", f"{MONITORING} (both read)"),
    (r"kubectl get --raw \"\$P/.*", f"{MONITORING} (query, rules, alerts)"),
]


def commands(doc: Path) -> list[str]:
    """Command lines of the ```bash blocks (comments dropped, continuations joined)."""
    out: list[str] = []
    in_block = False
    pending = ""
    for line in doc.read_text().splitlines():
        if line.startswith("```"):
            in_block = line.startswith("```bash") and not in_block
            continue
        if not in_block:
            continue
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        command = re.sub(r"\s+#\s.*$", "", text).strip()
        if command and not command.startswith("#"):
            out.append(command)
    return out


def test_every_documented_command_is_accounted_for() -> None:
    seen = 0
    for doc in DOCS:
        for command in commands(doc):
            matches = [where for pattern, where in COVERAGE if re.fullmatch(pattern, command)]
            assert matches, f"{doc.name}: say where `{command}` is exercised (COVERAGE)"
            seen += 1
    assert seen >= 40


def test_the_guide_has_the_seed_switches_as_spec_fields() -> None:
    guide = commands(DOCS[0])
    assert any("modelVersion" in c and "$PREVIOUS" in c for c in guide), "emergency rollback"
    assert any('"training":{"suspend":true}' in c for c in guide), "disable retraining"
    assert any('"gates":{"minAuc":"0.70"}' in c for c in guide), "lock minimum AUC"
    assert any("reload-model?min_auc=0.70" in c for c in guide), "the scorer's own AUC lock"
    assert any('"piiBackfill":{"dryRun":true}' in c for c in guide), "dry-run backfill"
