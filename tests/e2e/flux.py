"""Flux on the real-node cluster: source-controller, kustomize-controller and helm-controller,
built from their Go modules (`hack/control-plane/build.sh flux`), run as processes in the
cluster's network namespace with the admin kubeconfig (as `flux install` runs them in
flux-system, less the Deployments: no Flux image is built here), their CRDs from the
modules' own config/crd/bases; and a Git repository served over smart HTTP by Debian's
`git http-backend` (tests/e2e/git_http.py) in the same namespace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.pods import apply, wait_for
from tests.fixtures.control_plane import LocalCluster
from tests.fixtures.control_plane.processes import ManagedProcess
from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "flux-system"
CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller")
# Flux's default is 30 s: a Kustomization whose dependency has not applied the new revision
# yet looks again after this long (the tenant's waits on the operator's, same commit).
REQUEUE_DEPENDENCY = "5s"
# `flux reconcile` sets this annotation; a notification-controller Receiver (a push webhook)
# does the same for a GitRepository.
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


class Repository:
    """A work tree on this machine pushing to a bare repository the Git server serves."""

    def __init__(self, work: Path, bare: Path) -> None:
        self.work, self.bare = work, bare

    @classmethod
    def create(cls, root: Path, name: str) -> Repository:
        bare = root / "served" / f"{name}.git"
        work = root / "work"
        work.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        repo = cls(work, bare)
        repo.git("init", "-q", "-b", "main")
        repo.git("remote", "add", "origin", str(bare))
        return repo

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "LeadOps e2e",
            "GIT_AUTHOR_EMAIL": "e2e@leadops.invalid",
            "GIT_COMMITTER_NAME": "LeadOps e2e",
            "GIT_COMMITTER_EMAIL": "e2e@leadops.invalid",
        }
        done = subprocess.run(
            ["git", "-C", str(self.work), *args],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
        return done.stdout.strip()

    def copy_in(self, relative: str) -> None:
        """A file or folder of this checkout, at the same path in the repository."""
        source, target = ROOT / relative, self.work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)

    def write(self, relative: str, text: str) -> None:
        target = self.work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def commit(self, message: str) -> str:
        """Commit everything and push; the new commit's sha."""
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self._push()

    def revert(self, sha: str) -> str:
        self.git("revert", "--no-edit", sha)
        return self._push()

    def _push(self) -> str:
        self.git("push", "-q", "origin", "main")
        return self.git("rev-parse", "HEAD")


@dataclass
class Flux:
    cluster: LocalCluster
    git_url: str  # the served repository, as the GitRepository names it
    processes: list[ManagedProcess] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
            if proc in self.cluster.processes:
                self.cluster.processes.remove(proc)

    def get(self, kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        got = self.cluster.run_kubectl("get", kind, name, "-n", namespace, "-o", "json")
        result: dict[str, Any] = json.loads(got.stdout)
        return result

    def reconcile(self, kind: str, name: str, namespace: str = NAMESPACE) -> str:
        """What `flux reconcile <kind> <name>` does: ask for a reconcile now; the token."""
        token = f"{time.time():.6f}"
        self.cluster.run_kubectl(
            "annotate", "--overwrite", kind, name, "-n", namespace, f"{REQUESTED_AT}={token}"
        )
        return token

    def ready_at(self, kind: str, name: str, sha: str, namespace: str = NAMESPACE) -> bool:
        """Ready=True with `sha` applied (Kustomization) or fetched (GitRepository)."""
        obj = self.get(kind, name, namespace)
        status = obj.get("status", {})
        revision = status.get("lastAppliedRevision") or status.get("artifact", {}).get(
            "revision", ""
        )
        return (
            revision == f"main@sha1:{sha}"
            and status.get("observedGeneration") == obj["metadata"]["generation"]
            and condition(obj, "Ready") == "True"
        )

    def diagnosis(self) -> str:
        """Every Flux object's Ready condition and each controller's last log lines."""
        got = self.cluster.run_kubectl(
            "get", "gitrepositories,helmcharts,kustomizations,helmreleases", "-A", "-o", "json",
            check=False,
        )  # fmt: skip
        parts = []
        for obj in json.loads(got.stdout or '{"items": []}')["items"]:
            ready = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
            parts.append(f"{obj['kind']} {obj['metadata']['name']}: {ready}")
        for proc in self.processes:
            parts.append(f"--- {proc.name} log:\n{proc.log_tail(12)}")
        return "\n".join(parts)

    def wait_for(self, what: str, check: Any, *, timeout: float) -> Any:
        try:
            return wait_for(what, check, timeout=timeout, interval=0.5)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return str(c["status"])
    return None


def start_flux(cluster: LocalCluster, home: Path, workdir: Path, git_root: Path) -> Flux:
    """Flux's CRDs, namespace and three controllers, and the Git server for `git_root`."""
    assert cluster.sandbox is not None, "Flux runs beside a real node (its network namespace)"
    cluster.run_kubectl("apply", "--server-side", "-f", str(home / "crds"))
    cluster.run_kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "-f", str(home / "crds")
    )
    apply(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    git_port, storage_port = free_port(), free_port()
    flux = Flux(cluster, f"http://127.0.0.1:{git_port}/leadops.git")
    flux.processes.append(
        cluster.spawn(
            "git-http",
            ["env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "tests.e2e.git_http",
             "--root", str(git_root), "--port", str(git_port)],
            logs,
        )
    )  # fmt: skip
    env = ["env", f"KUBECONFIG={cluster.kubeconfig}", f"RUNTIME_NAMESPACE={NAMESPACE}"]
    for name in CONTROLLERS:
        args = [
            "--watch-all-namespaces",
            "--log-level=info",
            f"--metrics-addr=127.0.0.1:{free_port()}",
            f"--health-addr=127.0.0.1:{free_port()}",
            f"--requeue-dependency={REQUEUE_DEPENDENCY}",
        ]
        if name == "source-controller":
            storage = workdir / "storage"
            storage.mkdir(exist_ok=True)
            args += [
                f"--storage-path={storage}",
                f"--storage-addr=127.0.0.1:{storage_port}",
                # Where the other two fetch artifacts: the same namespace, so loopback.
                f"--storage-adv-addr=127.0.0.1:{storage_port}",
            ]
        flux.processes.append(cluster.spawn(name, [*env, str(home / "bin" / name), *args], logs))

    def started() -> bool:
        for proc in flux.processes:
            if not proc.running():
                raise AssertionError(f"{proc.name} exited:\n{proc.log_tail()}")
        text = {p.name: p.log_path.read_text(errors="replace") for p in flux.processes}
        return "ready" in text["git-http"] and all(
            "Starting workers" in text[name] for name in CONTROLLERS
        )

    flux.wait_for("Flux's controllers and the Git server started", started, timeout=120)
    return flux
