"""examples/: the Argo CD health check runs (real Lua 5.1, as Argo CD's gopher-lua) against
LeadModels whose conditions the operator's own code stamps; the GitOps objects point at
paths that exist and the kustomizations build."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from leadops.operator import conditions, reasons
from leadops.operator.spec import Condition
from tests.fixtures.control_plane.binaries import build

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
HEALTH_LUA = EXAMPLES / "argocd" / "leadmodel-health.lua"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """Run the health check as Argo CD does: `obj` global, a table {status, message} back."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH_LUA.read_text())
    return str(result["status"]), str(result["message"])


def leadmodel(
    *conds: Condition, generation: int = 3, observed: int | None = 3, **status: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "leadops.io/v1alpha1",
        "kind": "LeadModel",
        "metadata": {"name": "acme", "namespace": "sales", "generation": generation},
        "spec": {"modelVersion": ""},
    }
    if conds:
        stamped = conditions.as_status(
            conditions.stamp(conds, [], generation=observed or generation, now=NOW)
        )
        obj["status"] = {"conditions": stamped, **status}
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
    return obj


SERVING = conditions.true(reasons.READY, reasons.SERVING, "serving 1730483820")
ROLLED_OUT = conditions.true(reasons.ROLLED_OUT, reasons.ROLLOUT_COMPLETE)
NOT_DEGRADED = conditions.false(reasons.DEGRADED, reasons.AS_EXPECTED)


def test_a_new_leadmodel_without_status_is_progressing() -> None:
    assert health(leadmodel()) == ("Progressing", "Waiting for the LeadOps operator to reconcile")


def test_serving_leadmodel_is_healthy_and_names_its_version_and_auc() -> None:
    obj = leadmodel(SERVING, ROLLED_OUT, NOT_DEGRADED, servingVersion="1730483820", auc="0.78")
    assert health(obj) == ("Healthy", "Serving model version 1730483820 (AUC 0.78)")


def test_a_rollout_in_progress_is_progressing_even_while_the_old_model_serves() -> None:
    rolling = conditions.false(reasons.ROLLED_OUT, reasons.ROLLOUT_IN_PROGRESS, "1730570000 to 2/2")
    status, message = health(leadmodel(SERVING, rolling, NOT_DEGRADED, servingVersion="1"))
    assert (status, message) == ("Progressing", "RolloutInProgress: 1730570000 to 2/2")
    rollback = conditions.false(reasons.ROLLED_OUT, reasons.ROLLBACK_IN_PROGRESS)
    assert health(leadmodel(SERVING, rollback, NOT_DEGRADED))[0] == "Progressing"


def test_an_automatic_rollback_is_degraded_with_its_reason() -> None:
    degraded = conditions.true(
        reasons.DEGRADED, reasons.PROGRESS_DEADLINE_EXCEEDED, "1730570000 never became Available"
    )
    rolled_back = conditions.false(reasons.ROLLED_OUT, reasons.ROLLED_BACK)
    status, message = health(leadmodel(SERVING, rolled_back, degraded))
    assert status == "Degraded"
    assert message == "ProgressDeadlineExceeded: 1730570000 never became Available"


def test_a_spec_edit_not_yet_observed_is_progressing() -> None:
    obj = leadmodel(SERVING, ROLLED_OUT, NOT_DEGRADED, generation=4, observed=3)
    assert health(obj) == ("Progressing", "Waiting for the operator to observe generation 4")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (reasons.INVALID_SPEC, "Degraded"),
        (reasons.UNKNOWN_MODEL_VERSION, "Degraded"),
        (reasons.PINNED_VERSION_REJECTED, "Degraded"),
        (reasons.NAME_CONFLICT, "Degraded"),
        (reasons.APPLY_FAILED, "Degraded"),
        (reasons.NO_MODEL, "Progressing"),
        (reasons.COLD_START, "Progressing"),
        (reasons.AWAITING_PROMOTION, "Progressing"),
    ],
)
def test_not_ready_is_degraded_only_when_the_spec_needs_fixing(reason: str, expected: str) -> None:
    obj = leadmodel(conditions.false(reasons.READY, reason, "why"), NOT_DEGRADED)
    assert health(obj) == (expected, f"{reason}: why")


def test_argocd_cm_embeds_exactly_the_tested_lua() -> None:
    cm = yaml.safe_load((EXAMPLES / "argocd" / "argocd-cm-leadmodel-health.yaml").read_text())
    assert cm["data"]["resource.customizations.health.leadops.io_LeadModel"] == (
        HEALTH_LUA.read_text()
    )


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_gitops_objects_point_at_paths_that_exist() -> None:
    paths: list[str] = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in _docs(path):
            kind = doc.get("kind")
            if kind == "Application":
                paths.append(doc["spec"]["source"]["path"])
            elif kind == "HelmRelease":
                paths.append(doc["spec"]["chart"]["spec"]["chart"])
            elif kind == "Kustomization" and "spec" in doc:
                paths.append(doc["spec"]["path"])
    assert len(paths) == 5
    for rel in paths:
        assert (ROOT / rel).is_dir(), f"{rel} does not exist in the repository"


def test_the_kustomizations_build_with_kubectl() -> None:
    kubectl = build(what="tools") / "kubectl"
    for directory in ("tenants/acme", "flux/operator"):
        result = subprocess.run(
            [str(kubectl), "kustomize", str(EXAMPLES / directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout) if d]
        assert "Namespace" in kinds
        assert {"LeadModel", "HelmRelease"} & set(kinds)


def _git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "ops",
        "GIT_AUTHOR_EMAIL": "ops@example.com",
        "GIT_COMMITTER_NAME": "ops",
        "GIT_COMMITTER_EMAIL": "ops@example.com",
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
    }
    result = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rollback_by_git_commit_and_revert_changes_only_the_pinned_version(tmp_path: Path) -> None:
    """docs/gitops.md's flow on a copy of the tenant directory: pin, commit, revert."""
    leadmodel = tmp_path / "examples" / "tenants" / "acme" / "leadmodel.yaml"
    leadmodel.parent.mkdir(parents=True)
    original = (EXAMPLES / "tenants" / "acme" / "leadmodel.yaml").read_text()
    leadmodel.write_text(original)
    _git(tmp_path, "init", "--quiet")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "--quiet", "-m", "acme")
    assert '  modelVersion: ""\n' in original
    leadmodel.write_text(original.replace('  modelVersion: ""\n', '  modelVersion: "1730483820"\n'))
    _git(
        tmp_path,
        "commit",
        "-am",
        "acme: pin model 1730483820 (rollback of 1730570000, AUC dropped)",
    )
    diff = _git(tmp_path, "show", "--format=", "--unified=0", "HEAD")
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in {"+++", "---"}]
    assert changed == ['-  modelVersion: ""', '+  modelVersion: "1730483820"']
    assert yaml.safe_load(leadmodel.read_text())["spec"]["modelVersion"] == "1730483820"
    _git(tmp_path, "revert", "--no-edit", "HEAD")
    assert leadmodel.read_text() == original
