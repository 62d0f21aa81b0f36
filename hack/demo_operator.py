"""The operator stage of `make demo`: a LeadModel's lifecycle on the real local control plane.

Start the cluster (`python -m tests.fixtures.control_plane up`, what `make cluster-up` runs),
apply the CRD, run `leadops operator`, `kubectl apply -k` the acme tenant, publish model versions
the way the training Job does, watch one promoted, one refused with its Event, roll back by
spec edit; then stop the operator and the cluster, also when a step fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures.processes import terminate

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "sales"
NAME = "acme"
TIMEOUT = 60.0

Say = Callable[[str], None]


def _indent(text: str, prefix: str = "          ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def _shown(args: list[str]) -> str:
    return " ".join(shlex.quote(a.replace(str(ROOT) + "/", "")) for a in args)


def tenant_secrets() -> dict[tuple[str, str], str]:
    """(Secret, key) -> value for every Secret the acme example's LeadModel names."""
    return {
        # The scorer Pods run on kwok's fake node here, so nothing dials this URL.
        ("acme-redis", "url"): "redis://redis.sales.svc:6379/0",
        ("acme-scorer-api-key", "key"): secrets.token_urlsafe(24),
        ("acme-key-salt", "salt"): secrets.token_hex(32),
    }


class OperatorStage:
    """Owns the cluster and operator processes so `close()` can always stop them."""

    def __init__(self, *, out: Path, say: Say) -> None:
        self.out = out
        self.say = say
        self.run_dir = out / "cluster"
        self.env = dict(os.environ)
        self.operator: subprocess.Popen[bytes] | None = None
        self.cluster_started = False

    # -- commands a user would type ------------------------------------------------

    def run(self, *args: str, check: bool = True, quiet: bool = False) -> str:
        if not quiet:
            print(f"          $ {_shown(list(args))}", flush=True)
        argv = list(args)
        if argv[0] == "leadops":
            argv = [sys.executable, "-m", "leadops.cli", *argv[1:]]
        done = subprocess.run(
            argv, capture_output=True, text=True, env=self.env, cwd=ROOT, check=False
        )
        if check and done.returncode != 0:
            raise SystemExit(
                f"demo: {_shown(list(args[:2]))} failed (exit {done.returncode}): "
                f"{done.stderr.strip()}"
            )
        return done.stdout if done.returncode == 0 else done.stderr

    def show(self, *args: str) -> None:
        print(_indent(self.run(*args)), flush=True)

    def _crd_established(self) -> bool:
        found = self.run(
            "kubectl", "get", "crd", "leadmodels.leadops.io", "-o",
            'jsonpath={.status.conditions[?(@.type=="Established")].status}',
            check=False, quiet=True,
        )  # fmt: skip
        return found.strip() == "True"

    def leadmodel(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            self.run("kubectl", "get", "lm", NAME, "-n", NAMESPACE, "-o", "json", quiet=True)
        )
        return found

    def condition(self, type_: str) -> dict[str, Any]:
        for cond in (self.leadmodel().get("status") or {}).get("conditions") or []:
            if cond.get("type") == type_:
                return dict(cond)
        return {}

    def events(self, selector: str) -> list[dict[str, Any]]:
        args = ["get", "events", "-n", NAMESPACE, "--field-selector", selector, "-o", "json"]
        items: list[dict[str, Any]] = json.loads(self.run("kubectl", *args, quiet=True))["items"]
        return items

    def wait_for(self, check: Callable[[], Any], *, what: str) -> Any:
        """Poll until `check()` is truthy; fail with one line naming what never happened."""
        started = time.monotonic()
        while time.monotonic() < started + TIMEOUT:
            if self.operator is not None and self.operator.poll() is not None:
                raise SystemExit(
                    f"demo: leadops operator exited ({self.operator.returncode}); "
                    f"see {self.out.relative_to(ROOT)}/operator.log"
                )
            found = check()
            if found:
                self.say(f"  ... {what} after {time.monotonic() - started:.1f}s")
                return found
            time.sleep(0.3)
        raise SystemExit(f"demo: timed out after {TIMEOUT:.0f}s waiting for {what}{self._ready()}")

    def _ready(self) -> str:
        """The LeadModel's Ready condition, to say where a wait stopped (or "" before it exists)."""
        found = self.run("kubectl", "get", "lm", NAME, "-n", NAMESPACE, "-o", "json",
                         check=False, quiet=True)  # fmt: skip
        try:
            conditions = (json.loads(found).get("status") or {}).get("conditions") or []
        except json.JSONDecodeError:
            return ""
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is None:
            return "; the LeadModel has no Ready condition yet"
        return f"; Ready={ready.get('status')}/{ready.get('reason')}: {ready.get('message')}"

    def serving(self, version: int) -> bool:
        status = self.leadmodel().get("status") or {}
        rolled = self.condition("RolledOut")
        return status.get("servingVersion") == str(version) and rolled.get("status") == "True"

    def _candidate_rejected(self, version: int) -> bool:
        candidate = (self.leadmodel().get("status") or {}).get("candidate") or {}
        return bool(
            candidate.get("version") == str(version) and candidate.get("verdict") == "Rejected"
        )

    # -- the timeline -------------------------------------------------------------------

    def start_cluster(self) -> None:
        self.say("Start the local control plane (etcd, kube-apiserver, controllers, kwok nodes)")
        args = [sys.executable, "-m", "tests.fixtures.control_plane"]
        opts = ["--run-dir", str(self.run_dir), "--nodes", "1"]
        print(f"          $ python -m tests.fixtures.control_plane up {_shown(opts)}", flush=True)
        # A cluster left by an interrupted run is removed first, so every run starts clean.
        subprocess.run([*args, "down", *opts[:2]], capture_output=True, cwd=ROOT, check=False)
        self.cluster_started = True  # `down` is safe on a partial start
        done = subprocess.run(
            [*args, "up", *opts], capture_output=True, text=True, cwd=ROOT, check=False
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"demo: the local control plane could not start: {last}")
        for line in done.stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            if key == "KUBECONFIG":
                self.env["KUBECONFIG"] = value
            elif key == "PATH":
                self.env["PATH"] = value.replace("$PATH", os.environ.get("PATH", ""))
        ready = [line for line in done.stderr.splitlines() if "ready in" in line]
        self.say("  " + (ready[-1].removeprefix("cluster: ") if ready else "control plane up"))

    def install(self) -> None:
        self.say("Install the LeadModel CRD and start the operator for the namespace 'sales'")
        self.show("kubectl", "apply", "-f", str(ROOT / "crds" / "leadmodel.yaml"))
        # Polled, not `kubectl wait --for=condition=Established`: that fails outright when it
        # reads the CRD before the API server wrote any status (seen on a loaded machine).
        self.wait_for(self._crd_established, what="the LeadModel CRD Established")
        args = ["--namespace", NAMESPACE, "--metrics-port", "0", "--health-address", ""]
        print(f"          $ leadops operator {_shown(args)} &", flush=True)
        log = (self.out / "operator.log").open("wb")
        self.operator = subprocess.Popen(
            [sys.executable, "-m", "leadops.cli", "operator", *args],
            # Resync every 2 s so rollouts are noticed quickly in a demo.
            env={**self.env, "LEADOPS_RESYNC_SECONDS": "2"},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def create_secrets(self) -> None:
        """The acme example's Secrets, made out of band as its comments say: the LeadModel
        refuses to start (Ready=False/MissingSecret) without them."""
        self.say("Create the tenant's Secrets out of band and let the LeadModel 'acme' use them")
        tenant = ROOT / "examples" / "tenants" / "acme"
        self.show("kubectl", "apply", "-f", str(tenant / "namespace.yaml"))
        values = tenant_secrets()
        for (name, key), value in values.items():
            self.run("kubectl", "-n", NAMESPACE, "create", "secret", "generic", name,
                     f"--from-literal={key}={value}", quiet=True)  # fmt: skip
            print(f"          $ kubectl -n {NAMESPACE} create secret generic {name} "
                  f"--from-literal={key}=...", flush=True)  # fmt: skip
        names = [name for name, _ in values]
        self.show("kubectl", "-n", NAMESPACE, "annotate", "secret", *names,
                  f"leadops.io/usable-by={NAME}")  # fmt: skip

    def apply_tenant(self) -> None:
        self.say("Apply the acme tenant as GitOps would; the operator creates its children")
        self.show("kubectl", "apply", "-k", str(ROOT / "examples" / "tenants" / "acme"))
        self.wait_for(
            lambda: self.condition("Ready").get("reason") == "NoModel",
            what="Ready=False/NoModel (children created, no model yet)",
        )
        self.show("kubectl", "get", "cronjobs,deployments,services", "-n", NAMESPACE)
        self.show("kubectl", "get", "lm", "-n", NAMESPACE)

    def publish(self, artifact: Path) -> int:
        version: int = json.loads(artifact.read_text())["version"]
        self.run(
            "leadops", "publish", "--artifact", str(artifact),
            "--leadmodel", NAME, "--namespace", NAMESPACE,
        )  # fmt: skip
        return version

    def promote(self, artifact: Path, *, why: str) -> int:
        self.say(why)
        version = self.publish(artifact)
        self.wait_for(
            lambda: self.serving(version), what=f"version {version} validated and rolled out"
        )
        self.show("leadops", "status", NAME, "-n", NAMESPACE)
        self.show("kubectl", "get", "lm", "-n", NAMESPACE)
        return version

    def reject(self, artifact: Path, *, serving: int) -> None:
        auc = json.loads(artifact.read_text())["metrics"]["auc"]
        self.say(f"Publish a bad model (AUC {auc:.3f} < minAuc 0.70): refused, the old one serves")
        version = self.publish(artifact)
        self.wait_for(
            lambda: self._candidate_rejected(version),
            what=f"version {version} refused",
        )
        refused = self.condition("Validated")
        self.say(f"  condition Validated=False reason={refused['reason']}: {refused['message']}")
        selector = f"reason={refused['reason']},involvedObject.name={NAME}"
        self.wait_for(lambda: self.events(selector), what=f"the Warning Event {refused['reason']}")
        self.show("kubectl", "get", "events", "-n", NAMESPACE, "--field-selector", selector)
        still = (self.leadmodel().get("status") or {}).get("servingVersion")
        if still != str(serving):
            raise SystemExit(f"demo: serving {still} after the refusal, expected {serving}")
        self.say(f"  status.servingVersion is still {still}: the refused model never served")

    def rollback(self, *, to: int) -> None:
        self.say("Roll back by editing the spec: `leadops rollback` pins status.previousVersion")
        self.show("leadops", "rollback", NAME, "-n", NAMESPACE)
        self.wait_for(lambda: self.serving(to), what=f"rollback to {to} rolled out")
        self.show("leadops", "status", NAME, "-n", NAMESPACE)
        self.show("kubectl", "get", "lm", "-n", NAMESPACE)

    def close(self) -> None:
        if self.operator is not None:
            self.say("Stop the operator and the local control plane")
            terminate(self.operator, timeout=20)
            self.operator = None
        if self.cluster_started:
            print("          $ python -m tests.fixtures.control_plane down", flush=True)
            subprocess.run(
                [sys.executable, "-m", "tests.fixtures.control_plane", "down",
                 "--run-dir", str(self.run_dir)],
                capture_output=True, cwd=ROOT, check=False,
            )  # fmt: skip
            self.cluster_started = False


def run(*, out: Path, say: Say, good: Path, newer: Path, bad: Path) -> None:
    """The whole stage; the cluster and operator are stopped whatever happens."""
    missing = [str(p.relative_to(ROOT)) for p in (good, newer, bad) if not p.exists()]
    if missing:
        raise SystemExit(f"demo: the operator stage needs the earlier steps' {', '.join(missing)}")
    stage = OperatorStage(out=out, say=say)
    try:
        stage.start_cluster()
        stage.install()
        stage.create_secrets()
        stage.apply_tenant()
        first = stage.promote(
            good, why="Publish the trained model as the training Job does: validated, promoted"
        )
        second = stage.promote(newer, why="Publish the retrained model: it replaces the first")
        stage.reject(bad, serving=second)
        stage.rollback(to=first)
    finally:
        stage.close()
