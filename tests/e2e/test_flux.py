"""LeadOps through Flux on the real node (issue #17): examples/flux/ applied as a user
would, its GitRepository pointed at a repository served in the cluster's network namespace
(`git http-backend`); Flux's own controllers (built from their Go modules) install the
chart with the HelmRelease and sync the tenant. A commit that adds the acme LeadModel
makes it appear and roll out; a commit that pins an older modelVersion rolls back; `git
revert` of that commit rolls forward; the operator never writes the spec, so Flux reports
no drift (Ready at the latest commit, nothing re-applied).

The tests run in file order and share one Flux, repository and tenant (module fixture):
each step starts from the state the one before left."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.e2e import flux as fluxlib
from tests.e2e.pods import get_json, score_from_a_pod, start_redis
from tests.fixtures.artifacts import build_artifact
from tests.fixtures.control_plane import LocalCluster
from tests.fixtures.control_plane.binaries import flux_home, monitoring_home

ROOT = Path(__file__).resolve().parents[2]
LEADOPS = str(Path(sys.executable).with_name("leadops"))
EXAMPLES = ROOT / "examples" / "flux"
NAME = "acme"
NS = "sales"  # examples/tenants/acme's namespace
OPERATOR_NS = "leadops-system"  # examples/flux/operator's
REPLICAS = 2  # the example LeadModel's scorer.replicas
LEADMODEL = "examples/tenants/acme/leadmodel.yaml"
TENANT_KUSTOMIZATION = "examples/tenants/acme/kustomization.yaml"
MODEL_VERSION = "leadops.io/model-version"


@dataclass
class GitOps:
    flux: fluxlib.Flux
    repo: fluxlib.Repository
    versions: tuple[int, int]  # (older, newer) published by test 1
    commits: dict[str, str]


def _crds(cluster: LocalCluster, folder: Path) -> None:
    cluster.run_kubectl("apply", "--server-side", "-f", str(folder))
    cluster.run_kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(folder))


def _user_applies_the_examples(gitops: fluxlib.Flux, workdir: Path) -> None:
    """`kubectl apply -f` of examples/flux/*.yaml, the GitRepository's url set to our server
    (the one line docs/gitops.md tells a user to change)."""
    source = yaml.safe_load((EXAMPLES / "gitrepository.yaml").read_text())
    source["spec"]["url"] = gitops.git_url
    edited = workdir / "gitrepository.yaml"
    edited.write_text(yaml.safe_dump(source))
    gitops.cluster.run_kubectl(
        "apply", "-f", str(edited),
        "-f", str(EXAMPLES / "kustomization-operator.yaml"),
        "-f", str(EXAMPLES / "kustomization-tenant-acme.yaml"),
    )  # fmt: skip


def _tenant_secrets(cluster: LocalCluster) -> None:
    """The Secrets the example LeadModel names, made out of band (its leadmodel.yaml's
    header), and a Redis Pod behind the URL."""
    for name, key, value in (
        ("acme-redis", "url", f"redis://redis.{NS}.svc:6379/0"),
        ("acme-scorer-api-key", "key", secrets.token_hex(16)),
        ("acme-key-salt", "salt", secrets.token_hex(32)),
    ):
        cluster.run_kubectl(
            "create", "secret", "generic", name, "-n", NS, f"--from-literal={key}={value}"
        )
        cluster.run_kubectl("annotate", "secret", name, "-n", NS, f"leadops.io/usable-by={NAME}")
    start_redis(cluster, NS)


@pytest.fixture(scope="module")
def gitops(
    real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GitOps]:
    workdir = tmp_path_factory.mktemp("flux")
    # The HelmRelease's values turn the ServiceMonitor on: the Prometheus Operator's CRDs.
    _crds(real_cluster, monitoring_home() / "crds")
    repo = fluxlib.Repository.create(workdir / "git", "leadops")
    started = time.monotonic()
    flux = fluxlib.start_flux(real_cluster, flux_home(), workdir, repo.bare.parent)
    print(f"Flux's controllers and the Git server started in {time.monotonic() - started:.1f}s")
    # The first commit: the chart, the Flux examples, the tenant's namespace (no LeadModel).
    for path in ("charts/leadops", "examples/flux", "examples/tenants/acme/namespace.yaml"):
        repo.copy_in(path)
    repo.write(
        TENANT_KUSTOMIZATION,
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - namespace.yaml\n",
    )
    first = repo.commit("LeadOps chart, Flux objects and the acme namespace")
    try:
        started = time.monotonic()
        _user_applies_the_examples(flux, workdir)
        flux.wait_for(
            "both Kustomizations Ready at the first commit (operator installed by its HelmRelease)",
            lambda: all(
                flux.ready_at("kustomization", k, first)
                for k in ("leadops-operator", "leadops-tenant-acme")
            ),
            timeout=360,
        )
        release = flux.get("helmrelease", "leadops", OPERATOR_NS)
        assert fluxlib.condition(release, "Ready") == "True", release["status"]
        print(
            f"examples applied to operator installed and synced {time.monotonic() - started:.1f}s"
        )
        _tenant_secrets(real_cluster)
        yield GitOps(flux, repo, (0, 0), {"first": first})
    finally:
        started = time.monotonic()
        try:
            _tear_down(real_cluster, flux)
        finally:
            flux.stop()
        print(f"tear-down, pruned by Flux: {time.monotonic() - started:.1f}s")


def _tear_down(cluster: LocalCluster, flux: fluxlib.Flux) -> None:
    """As a user removes it: the tenant's Kustomization first (Flux prunes the LeadModel and
    its namespace while the operator still runs to finalize it), then the operator's (Flux
    prunes the HelmRelease; helm-controller uninstalls the chart), then the source."""
    for kustomization, gone in (("leadops-tenant-acme", NS), ("leadops-operator", OPERATOR_NS)):
        cluster.run_kubectl(
            "delete", "kustomization", kustomization, "-n", fluxlib.NAMESPACE,
            "--timeout=180s", check=False,
        )  # fmt: skip
        cluster.run_kubectl(
            "wait", "--for=delete", f"namespace/{gone}", "--timeout=180s", check=False
        )
    cluster.run_kubectl(
        "delete", "gitrepository", "leadops", "-n", fluxlib.NAMESPACE, "--timeout=60s",
        check=False,
    )  # fmt: skip


def _publish(cluster: LocalCluster, artifact: Path) -> None:
    result = subprocess.run(
        [LEADOPS, "publish", "--kubeconfig", str(cluster.kubeconfig), "--artifact",
         str(artifact), "--leadmodel", NAME, "--namespace", NS],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _serving_on_pods(cluster: LocalCluster, version: int) -> bool:
    """Every scorer Pod of now Ready on `version`, as many as the spec asks, and the
    LeadModel saying so."""
    lm = get_json(cluster, "leadmodel", NAME, "-n", NS)
    if str(lm.get("status", {}).get("servingVersion")) != str(version):
        return False
    pods = get_json(cluster, "pods", "-n", NS, "-l", "app.kubernetes.io/component=scorer")["items"]
    live = [p for p in pods if "deletionTimestamp" not in p["metadata"]]
    return len(live) == REPLICAS and all(
        p["metadata"]["labels"].get(MODEL_VERSION) == str(version)
        and fluxlib.condition(p, "Ready") == "True"
        for p in live
    )


def _commit_to_serving(g: GitOps, version: int, pinned: str, what: str) -> tuple[float, float]:
    """Flux told of the commit (as a push webhook would); when Flux had applied the spec
    (`spec.modelVersion` == `pinned`) and when `version` served on every scorer Pod."""
    g.flux.reconcile("gitrepository", "leadops")
    cluster = g.flux.cluster
    g.flux.wait_for(
        f"{what}: spec.modelVersion {pinned!r} applied by Flux",
        lambda: get_json(cluster, "leadmodel", NAME, "-n", NS)["spec"]["modelVersion"] == pinned,
        timeout=120,
    )
    applied = time.monotonic()
    g.flux.wait_for(f"{what}: {version} serving on real Pods", lambda: _serving_on_pods(
        cluster, version), timeout=300)  # fmt: skip
    return applied, time.monotonic()


def _pin(repo: fluxlib.Repository, version: int | str) -> None:
    text = (repo.work / LEADMODEL).read_text()
    doc = yaml.safe_load(text)
    old = f'modelVersion: "{doc["spec"]["modelVersion"]}"'
    assert old in text, old
    repo.write(LEADMODEL, text.replace(old, f'modelVersion: "{version}"', 1))


# -- 1. a commit adds the acme LeadModel: it appears and rolls out ------------------------


def test_a_commit_that_adds_the_acme_leadmodel_makes_it_appear_and_roll_out(
    gitops: GitOps, tmp_path: Path
) -> None:
    cluster, flux = gitops.flux.cluster, gitops.flux
    gitops.repo.copy_in(TENANT_KUSTOMIZATION)
    gitops.repo.copy_in(LEADMODEL)
    committed = time.monotonic()
    sha = gitops.repo.commit("acme: LeadModel")
    flux.reconcile("gitrepository", "leadops")
    flux.wait_for(
        "the acme LeadModel applied by Flux",
        lambda: (
            cluster.run_kubectl("get", "leadmodel", NAME, "-n", NS, check=False).returncode == 0
        ),
        timeout=120,
    )
    print(f"commit adding the LeadModel to it existing: {time.monotonic() - committed:.1f}s")
    flux.wait_for(
        "the LeadModel reconciled once (its uid known to publish against)",
        lambda: get_json(cluster, "leadmodel", NAME, "-n", NS).get("status"),
        timeout=60,
    )
    # Two versions, as training would publish them; the newer one passes the gates and serves.
    now = int(time.time())
    older, newer = now - 120, now - 60
    for version in (older, newer):
        built = build_artifact(tmp_path / f"{version}.json", auc=0.8, version=version)
        _publish(cluster, built.path)
    published = time.monotonic()
    flux.wait_for(
        f"the newer version {newer} serving on real Pods",
        lambda: _serving_on_pods(cluster, newer),
        timeout=300,
    )
    print(f"published to serving on {REPLICAS} Pods: {time.monotonic() - published:.1f}s")
    # kstatus reads the LeadModel's Ready: with wait: true the Kustomization is Ready only now.
    flux.wait_for(
        "the tenant's Kustomization Ready at the commit",
        lambda: flux.ready_at("kustomization", "leadops-tenant-acme", sha),
        timeout=120,
    )
    gitops.versions = (older, newer)
    gitops.commits["leadmodel"] = sha


# -- 2. a commit pins the older version: rollback -----------------------------------------


def test_a_commit_that_pins_an_older_model_version_rolls_back(gitops: GitOps) -> None:
    older, newer = gitops.versions
    assert older, "test 1 published the versions"
    _pin(gitops.repo, older)
    committed = time.monotonic()
    sha = gitops.repo.commit(f"acme: pin model {older} (rollback of {newer})")
    applied, served = _commit_to_serving(gitops, older, str(older), "rollback by commit")
    print(
        f"commit pinning {older}: applied by Flux {applied - committed:.1f}s,"
        f" serving on {REPLICAS} Pods {served - committed:.1f}s"
    )
    gitops.flux.wait_for(
        "the tenant's Kustomization Ready at the pin",
        lambda: gitops.flux.ready_at("kustomization", "leadops-tenant-acme", sha),
        timeout=120,
    )
    status = get_json(gitops.flux.cluster, "leadmodel", NAME, "-n", NS)["status"]
    assert str(status["servingVersion"]) == str(older), status
    gitops.commits["pin"] = sha


# -- 3. git revert of the pin: roll forward -----------------------------------------------


def test_git_revert_of_the_pin_rolls_forward_again(gitops: GitOps) -> None:
    newer = gitops.versions[1]
    committed = time.monotonic()
    sha = gitops.repo.revert(gitops.commits["pin"])
    applied, served = _commit_to_serving(gitops, newer, "", "roll forward by git revert")
    print(
        f"git revert to {newer}: applied by Flux {applied - committed:.1f}s,"
        f" serving on {REPLICAS} Pods {served - committed:.1f}s"
    )
    cluster = gitops.flux.cluster
    gitops.flux.wait_for(
        "the tenant's Kustomization Ready at the revert",
        lambda: gitops.flux.ready_at("kustomization", "leadops-tenant-acme", sha),
        timeout=120,
    )
    spec = get_json(cluster, "leadmodel", NAME, "-n", NS)["spec"]
    assert spec["modelVersion"] == ""
    # The Pods answer leads with the newer version, through the Service.
    scored = score_from_a_pod(cluster, NS, NAME, "leads", leads=20, outcomes=False)
    assert scored == {"versions": [newer], "errors": 0}
    gitops.commits["revert"] = sha


# -- 4. Flux never fights the operator ----------------------------------------------------


def test_flux_reports_no_drift_the_operator_never_writes_the_spec(gitops: GitOps) -> None:
    flux, cluster = gitops.flux, gitops.flux.cluster
    head = gitops.repo.git("rev-parse", "HEAD")
    assert head == gitops.commits["revert"]
    lm = get_json(cluster, "leadmodel", NAME, "-n", NS, "--show-managed-fields")
    generation = lm["metadata"]["generation"]
    # Who owns the spec: Flux alone (server-side apply's field managers).
    spec_owners = {
        m["manager"] for m in lm["metadata"]["managedFields"] if "f:spec" in m.get("fieldsV1", {})
    }
    assert spec_owners == {"kustomize-controller"}, spec_owners
    # A fresh reconcile of both Kustomizations at the same commit: Ready, nothing to change.
    for kustomization in ("leadops-operator", "leadops-tenant-acme"):
        token = flux.reconcile("kustomization", kustomization)
        flux.wait_for(
            f"{kustomization} reconciled again ({fluxlib.REQUESTED_AT}={token})",
            lambda k=kustomization, t=token: (
                flux.get("kustomization", k).get("status", {}).get("lastHandledReconcileAt") == t
            ),
            timeout=120,
        )
        assert flux.ready_at("kustomization", kustomization, head), flux.diagnosis()
    after = get_json(cluster, "leadmodel", NAME, "-n", NS)
    assert after["metadata"]["generation"] == generation, "Flux re-applied the spec"
    assert fluxlib.condition(after, "Ready") == "True", after["status"]
    # kustomize-controller logs each apply's change set: the last one, at this commit,
    # found the LeadModel as Git has it.
    log = next(p for p in flux.processes if p.name == "kustomize-controller").log_path
    applies = [
        json.loads(line)
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("{") and "server-side apply completed" in line
        and "leadops-tenant-acme" in line
    ]  # fmt: skip
    last = applies[-1]
    assert last["revision"] == f"main@sha1:{head}", last
    assert last["output"][f"LeadModel/{NS}/{NAME}"] == "unchanged", last
