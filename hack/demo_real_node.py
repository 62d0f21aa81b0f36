"""The last stage of `make demo`: the same LeadModel lifecycle on a real node, through the
images built here (`make node images`, as root); skipped, with the reason, otherwise.

One node (containerd + kubelet in a network namespace of its own) joins the local control
plane; the chart installs the operator image; a Pod of the jobs image trains and publishes
the first version; real scorer Pods serve it through their Service; the training CronJob's
Job retrains from the scorer's export and the new version rolls out; a rollout to an image
that cannot be pulled is rolled back to the image that served. Everything is stopped and
the node's namespace, mounts and cgroups removed, also when a step fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.pods import (
    SCORER_IMAGE,
    apply,
    may_publish,
    run_to_completion,
    score_from_a_pod,
    start_redis,
    wait_for,
)
from tests.fixtures.control_plane import LocalCluster
from tests.fixtures.control_plane.binaries import (
    NODE_IMAGES,
    BinariesError,
    build_images,
    built_for_a_real_node,
)
from tests.fixtures.control_plane.node import disk_shortfall, missing_node_programs

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "sales"
OPERATOR_NAMESPACE = "leadops-system"
NAME = "acme"
MISSING_IMAGE = "docker.io/leadops/scorer:0.0.0-missing"
DEADLINE_SECONDS = 20

Say = Callable[[str], None]


def why_not(out: Path) -> str:
    """Empty when the real node can run here now (its files under `out`, an existing
    folder); else why the demo stays on kwok."""
    if os.geteuid() != 0:
        return "a real node needs root (network namespace, cgroups, containerd)"
    missing = missing_node_programs()
    if missing:
        return f"missing {', '.join(missing)} (hack/ensure-system.sh node)"
    try:
        images = built_for_a_real_node()
    except BinariesError as exc:
        return str(exc)
    # The previous run's node goes first (its imported images take gigabytes), as it would.
    shutil.rmtree(node_workdir(out), ignore_errors=True)
    return disk_shortfall(out, images)


def node_workdir(out: Path) -> Path:
    return (out / "real-node").resolve()  # the node mounts need absolute paths


def _indent(text: str) -> str:
    return "\n".join("          " + line for line in text.rstrip().splitlines())


class RealNodeStage:
    def __init__(self, *, out: Path, say: Say) -> None:
        self.say = say
        workdir = node_workdir(out)
        shutil.rmtree(workdir, ignore_errors=True)  # every run starts from a clean cluster
        # The archives are shared by every tree on this machine: rebuild this tree's (buildah's
        # layer cache makes that seconds when they were built before).
        images = build_images()
        self.cluster = LocalCluster(
            workdir, nodes=0, real_node=True, images=[images / f"{n}.tar" for n in NODE_IMAGES]
        )

    def kubectl(self, *args: str, show: bool = True, stdin: str | None = None) -> str:
        if show:
            print(f"          $ kubectl {shlex.join(args)}", flush=True)
        out = self.cluster.run_kubectl(*args, input_text=stdin).stdout
        if show and out.strip():
            print(_indent(out), flush=True)
        return out

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json", show=False))

    def serving(self) -> str:
        return str(self.get("lm", NAME, "-n", NAMESPACE).get("status", {}).get("servingVersion"))

    def timed(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        started = time.monotonic()
        found = wait_for(what, check, timeout=timeout, interval=0.5)
        self.say(f"  ... {what} after {time.monotonic() - started:.1f}s")
        return found

    # -- the timeline -------------------------------------------------------------------

    def start(self) -> None:
        self.say("Start the control plane with a real node: containerd + kubelet, images imported")
        self.cluster.start()
        t = self.cluster.timings
        self.say(
            f"  node Ready in {self.cluster.started_seconds or 0:.1f}s (API server "
            f"{t.get('apiserver_readyz', 0):.1f}s, images imported by "
            f"{t.get('images_imported', 0):.1f}s)"
        )
        self.kubectl("get", "nodes", "-o", "wide")

    def install_chart(self) -> None:
        self.say("helm install the chart: the operator image, only its chart RBAC")
        # The chart binds the operator's Role in the namespace it watches: that comes first.
        self.kubectl("create", "namespace", NAMESPACE)
        args = [
            "install", "leadops", str(ROOT / "charts" / "leadops"), "-n", OPERATOR_NAMESPACE,
            "--create-namespace", "--set", "image.pullPolicy=Never",
            "--set", f"operator.watchNamespaces={{{NAMESPACE}}}",
            "--set", "operator.resyncSeconds=5",
        ]  # fmt: skip
        print(f"          $ helm {shlex.join(args).replace(str(ROOT) + '/', '')}", flush=True)
        done = self.cluster.run_helm(*args, check=False)
        if done.returncode != 0:
            raise SystemExit(f"demo: helm install failed: {done.stderr.strip()}")
        self.timed(
            "the operator Pod Ready",
            lambda: any(
                c["type"] == "Ready" and c["status"] == "True"
                for p in self.get("pods", "-n", OPERATOR_NAMESPACE)["items"]
                for c in p.get("status", {}).get("conditions", [])
            ),
            timeout=180,
        )

    def tenant(self) -> None:
        self.say("The tenant namespace: Redis in a Pod, its Secrets, the LeadModel")
        wait_for(
            "the default ServiceAccount",
            lambda: (
                self.cluster.run_kubectl(
                    "get", "sa", "default", "-n", NAMESPACE, check=False
                ).returncode
                == 0
            ),
            timeout=30,
        )
        url = f"redis://redis.{NAMESPACE}.svc:6379/0"
        for name, key, value in (
            ("acme-redis", "url", url),
            ("acme-api-key", "key", secrets.token_hex(16)),
        ):
            self.kubectl(
                "create", "secret", "generic", name, "-n", NAMESPACE,
                f"--from-literal={key}={value}", show=False,
            )  # fmt: skip
            # A LeadModel may name only Secrets that opt in to it (docs/security.md).
            self.kubectl(
                "annotate", "secret", name, "-n", NAMESPACE, f"leadops.io/usable-by={NAME}"
            )
        start_redis(self.cluster, NAMESPACE)
        apply(self.cluster, _leadmodel())
        print(
            "          $ kubectl apply -f leadmodel.yaml  (acme: the scorer image, Jobs on demand)"
        )
        jobs = f"system:serviceaccount:{NAMESPACE}:{NAME}-jobs"
        self.timed(
            "the operator made the jobs' account, allowed to publish",
            lambda: may_publish(self.cluster, NAMESPACE, jobs),
            timeout=90,
        )
        self.kubectl("get", "cronjobs", "-n", NAMESPACE, "-o", "custom-columns=NAME:.metadata.name,"
                     "IMAGE:.spec.jobTemplate.spec.template.spec.containers[0].image")  # fmt: skip

    def bootstrap(self) -> str:
        self.say("Train and publish a first version from a Pod of the jobs image")
        uid = self.get("lm", NAME, "-n", NAMESPACE)["metadata"]["uid"]
        script = (
            "leadops synth --n 3000 --seed 11 --output /work/outcomes.csv"
            " && leadops train --input /work/outcomes.csv --output /work/model.json"
            f" && leadops publish --artifact /work/model.json --leadmodel {NAME}"
            f" --namespace {NAMESPACE} --owner-uid {uid}"
        )
        print(f"          (Pod) $ {script}", flush=True)
        run_to_completion(
            self.cluster, "bootstrap", NAMESPACE, ["/bin/sh", "-c", script],
            service_account=f"{NAME}-jobs", timeout=300,
        )  # fmt: skip
        first: str = self.timed(
            "published to serving on real scorer Pods (init container unpacks it)",
            lambda: (v := self.serving()) not in ("", "None") and v,
            timeout=240,
        )
        self.kubectl("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=scorer")
        scored = score_from_a_pod(self.cluster, NAMESPACE, NAME, "leads", leads=400, outcomes=True)
        self.say(f"  400 leads and their outcomes through the Service from a Pod: {scored}")
        return first

    def retrain(self, first: str) -> None:
        self.say("Retrain now: a Job from the training CronJob reads the scorer's export")
        self.kubectl("create", "job", "train-now", f"--from=cronjob/{NAME}-train", "-n", NAMESPACE)
        self.timed(
            "the training Job complete",
            lambda: (
                self.get("job", "train-now", "-n", NAMESPACE).get("status", {}).get("succeeded")
                == 1
            ),
            timeout=300,
        )
        self.timed(
            "the retrained version serving",
            lambda: (v := self.serving()) != first and v,
            timeout=240,
        )
        self.kubectl("get", "lm", "-n", NAMESPACE)

    def bad_image(self) -> None:
        self.say(
            f"Roll out an image that cannot be pulled (progressDeadlineSeconds {DEADLINE_SECONDS})"
        )
        patch = {
            "spec": {
                "scorer": {"image": MISSING_IMAGE, "progressDeadlineSeconds": DEADLINE_SECONDS}
            }
        }
        self.kubectl("patch", "lm", NAME, "-n", NAMESPACE, "--type=merge", "-p", json.dumps(patch))
        events: list[dict[str, Any]] = self.timed(
            "ProgressDeadlineExceeded and the automatic rollback",
            self.rollback_events,
            timeout=DEADLINE_SECONDS + 90,
        )
        self.say(f"  Event: {events[0]['message']}")
        deployment = self.get("deployment", f"{NAME}-scorer", "-n", NAMESPACE)
        images = sorted({c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]})
        self.say(f"  the scorer Deployment is back on {', '.join(images)}; old Pods served")
        self.kubectl("get", "lm", "-n", NAMESPACE)

    def rollback_events(self) -> list[dict[str, Any]]:
        selector = "--field-selector=reason=ProgressDeadlineExceeded,type=Warning"
        items = self.get("events", "-n", NAMESPACE, selector)["items"]
        return [e for e in items if e["involvedObject"]["kind"] == "LeadModel"]

    def close(self) -> None:
        self.say("Stop the real node and the control plane (namespace, mounts, cgroups removed)")
        self.cluster.stop()


def _leadmodel() -> dict[str, Any]:
    return {
        "apiVersion": "leadops.io/v1alpha1",
        "kind": "LeadModel",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "promotion": "Automatic",
            "gates": {"minAuc": "0.60", "minTrainSamples": 100, "maxPositiveRate": "0.95"},
            # Both CronJobs run only when the demo starts a Job from them.
            "training": {"schedule": "0 0 1 1 *", "suspend": True},
            "piiBackfill": {"schedule": "0 0 1 1 *", "suspend": True, "keyPattern": "mem:*"},
            "scorer": {
                "replicas": 1,
                "image": SCORER_IMAGE,
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "512Mi"},
                },
                "apiKeySecretRef": {"name": "acme-api-key", "key": "key"},
            },
            "redis": {"urlSecretRef": {"name": "acme-redis", "key": "url"}},
        },
    }


def run(*, out: Path, say: Say) -> None:
    """The whole stage; the cluster and node are stopped whatever happens."""
    stage = RealNodeStage(out=out, say=say)
    try:
        stage.start()
        stage.install_chart()
        stage.tenant()
        first = stage.bootstrap()
        stage.retrain(first)
        stage.bad_image()
    finally:
        stage.close()
