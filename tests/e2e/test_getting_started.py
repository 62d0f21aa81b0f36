"""docs/getting-started.md on the real node: every command of the guide, verbatim and in
order, from `helm install` to a scorer Pod answering a lead with the bootstrap model, and an
uninstall that leaves nothing behind (issue #15). Here nothing is done in the test's
process: the chart's operator Pod, the bootstrap Job's container and the scorer Pods are
the images built by hack/images/build.sh.

One thing happens between the guide's blocks, as the guide tells its reader to: the Redis
Secret is pointed at a Redis the reader runs (a Redis Pod here). This file runs first in
the session (file order): the guide's release watches every namespace and its uninstall
deletes the CRD, which the later e2e tests' releases install again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.pods import get_json, start_redis
from tests.fixtures.control_plane import LocalCluster
from tests.integration.guide import GETTING_STARTED, bash_blocks

ROOT = Path(__file__).resolve().parents[2]
NS, NAME = "acme", "acme"
TIMEOUT = 900  # the guide's own waits are the bound (`kubectl wait ... --timeout=15m`)


def _sh(block: str, *, env: dict[str, str], cwd: Path) -> str:
    # A background job (the port-forward) ends with the shell, as when a reader closes the
    # terminal; otherwise it would hold the output pipe open.
    script = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + block
    done = subprocess.run(
        ["/bin/bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, f"guide block failed:\n{block}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_getting_started_guide_serves_a_lead_on_the_real_node_and_uninstalls_clean(
    real_cluster: LocalCluster, tmp_path: Path
) -> None:
    work = tmp_path / "checkout"
    work.mkdir()
    for part in ("charts", "examples"):
        (work / part).symlink_to(ROOT / part)
    path = os.pathsep.join(
        [
            str(Path(sys.executable).parent),
            str(real_cluster.kubectl.parent),
            str(real_cluster.helm.parent),
            os.environ.get("PATH", ""),
        ]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADOPS_")}
    env |= {"PATH": path, "KUBECONFIG": str(real_cluster.kubeconfig), "HOME": str(tmp_path)}

    def run(section: str) -> str:
        # A section's blocks in one shell, as a reader types them in one terminal.
        return _sh("\n".join(bash_blocks(section, doc=GETTING_STARTED)), env=env, cwd=work)

    run("Install the operator")
    (operator,) = get_json(real_cluster, "pods", "-n", "leadops-system", "-l",
                           "app.kubernetes.io/name=leadops")["items"][:1]  # fmt: skip
    assert operator["spec"]["containers"][0]["image"] == "docker.io/leadops/operator:0.1.0"

    run("The namespace and its Secrets")
    # "Put your own Redis URL in the first Secret": the reader's Redis is a Pod here.
    start_redis(real_cluster, NS)
    real_cluster.run_kubectl(
        "-n", NS, "patch", "secret", "redis", "--type=merge",
        "-p", json.dumps({"stringData": {"url": f"redis://redis.{NS}.svc:6379/0"}}),
    )  # fmt: skip

    run("Give it a first model")
    status = run("Watch it start")  # ends with `leadops status` once Ready
    lm = get_json(real_cluster, "leadmodel", NAME, "-n", NS)
    version = lm["status"]["servingVersion"]
    assert version
    assert version in status
    bootstrap = get_json(real_cluster, "job", f"{NAME}-bootstrap", "-n", NS)
    assert bootstrap["status"].get("succeeded") == 1
    # The chart's jobs image ("leadops/jobs", Docker Hub implied), run by the real node.
    jobs_image = bootstrap["spec"]["template"]["spec"]["containers"][0]["image"]
    assert jobs_image.removeprefix("docker.io/") == "leadops/jobs:0.1.0"

    # The guide's lead, through `kubectl port-forward` to the scorer Service's real Pod.
    lead, _ = json.JSONDecoder().raw_decode(run("Send a lead"))  # the outcome's answer follows
    assert lead["stored"] is True
    assert lead["health"] != "no_model"
    assert str(lead["model_version"]) == str(version)
    assert 0.0 <= lead["score"] <= 1.0

    run("Upgrade")
    lm = get_json(real_cluster, "leadmodel", NAME, "-n", NS)
    assert lm["status"]["servingVersion"] == version

    run("Uninstall")
    namespaces = {n["metadata"]["name"] for n in get_json(real_cluster, "namespaces")["items"]}
    assert not namespaces & {NS, "leadops-system"}
    crds = real_cluster.run_kubectl("get", "crd", "-o", "name").stdout
    assert "leadmodels.leadops.io" not in crds
    leftovers = [
        r["metadata"]["name"]
        for kind in ("clusterroles", "clusterrolebindings")
        for r in get_json(real_cluster, kind, "-l", "app.kubernetes.io/instance=leadops")["items"]
    ]
    assert leftovers == []
