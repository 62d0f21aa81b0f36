"""Trust boundaries, tried as a tenant on the real control plane (issue: trust boundaries).

The chart is installed cluster-wide and the operator runs as the chart's ServiceAccount with
the chart's RBAC. Every LeadModel and registry ConfigMap here is written by a tenant: a
ServiceAccount bound only to LeadModel and ConfigMap rights in its own namespace. The admin
(the test's own credentials) makes the objects a tenant must not be able to take over, and
reads Events and children to check. Each finding is reproduced as it was reported; the
assertions are that nothing of the admin's changes, no unvalidated byte is served, the bomb
is refused within the memory bound, and every refusal is a condition plus a Warning Event.
kwok runs no containers, so the init container's refusal is checked by running the same
`leadops unpack-model` (and the scorer's loader) on the bytes the Pod would mount.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from leadops import cli
from leadops.contract import artifact as contract
from leadops.operator import builders, kube, registry
from leadops.operator.kube import Kube, KubeError
from leadops.operator.publish import configmap_for
from tests.fixtures.chart import (
    install_crd,
    service_account_kubeconfig,
    start_chart_operator,
)
from tests.fixtures.control_plane import KubeCluster
from tests.fixtures.model_artifact import make_artifact

pytestmark = [pytest.mark.k8s, pytest.mark.slow]
logger = logging.getLogger(__name__)

TIMEOUT = 120.0
# The operator's peak resident memory must stay under this while it refuses a gzip bomb.
RSS_BOUND_BYTES = 200 * 1024 * 1024
SIGNING_SECRET = b"tenant-cannot-read-this-hmac-key"
TENANT_RULES = [
    {
        "apiGroups": ["leadops.io"],
        "resources": ["leadmodels"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
]


@dataclass(frozen=True)
class World:
    admin: Kube
    tenant: Kube
    ns: str
    operator: subprocess.Popen[bytes]
    log: Path


def wait_for(check: Callable[[], Any], *, what: str, world: World) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while True:
        assert world.operator.poll() is None, world.log.read_text()[-4000:]
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; log:\n{world.log.read_text()}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def world(k8s_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("trust")
    admin = Kube(k8s_cluster.api_client)
    install_crd(k8s_cluster)
    ns = f"tenant-{secrets.token_hex(3)}"
    k8s_cluster.run_kubectl("create", "namespace", ns)
    k8s_cluster.run_kubectl("create", "serviceaccount", "tenant", "-n", ns)
    admin.create(_role(ns, "tenant", TENANT_RULES))
    admin.create(_binding(ns, "tenant", role="tenant", subject_sa="tenant"))
    # The Redis URL Secret the admin shares with every LeadModel of the namespace.
    admin.create(_secret(ns, "redis", {"url": b"redis://redis:6379/0"}, usable_by="*"))
    operator = start_chart_operator(
        k8s_cluster,
        release=f"tr-{secrets.token_hex(3)}",
        namespace=ns,
        values=["--set", "operator.resyncSeconds=5"],
        workdir=tmp,
    )
    try:
        assert "--all-namespaces" in operator.args, "the operator runs cluster-wide"
        tenant_config = service_account_kubeconfig(
            k8s_cluster, tmp / "tenant.kubeconfig", ns, "tenant"
        )
        tenant = Kube(kube.load_api_client(kubeconfig=str(tenant_config)))
        yield World(admin=admin, tenant=tenant, ns=ns, operator=operator.process, log=operator.log)
    finally:
        operator.stop()
        k8s_cluster.run_helm("uninstall", operator.release, "-n", ns)
        k8s_cluster.run_kubectl("delete", "namespace", ns, "--wait=false")


# --- objects -------------------------------------------------------------------------------


def _role(ns: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": ns},
        "rules": rules,
    }


def _binding(
    ns: str, name: str, *, role: str, subject_sa: str = "", user: str = "", kind: str = "Role"
) -> dict[str, Any]:
    subject = (
        {"kind": "ServiceAccount", "name": subject_sa, "namespace": ns}
        if subject_sa
        else {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}
    )
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [subject],
    }


def _secret(ns: str, name: str, data: dict[str, bytes], *, usable_by: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if usable_by:
        meta["annotations"] = {"leadops.io/usable-by": usable_by}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def _leadmodel(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "leadops.io/v1alpha1",
        "kind": "LeadModel",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"redis": {"urlSecretRef": {"name": "redis", "key": "url"}}, **spec},
    }


def _condition(world: World, name: str, type_: str) -> dict[str, Any]:
    found = world.tenant.get("LeadModel", world.ns, name) or {}
    for cond in (found.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def _refused(world: World, name: str, reason: str) -> dict[str, Any]:
    """Ready=False with `reason`, and the Warning Event that goes with it."""
    ready = wait_for(
        lambda: (c := _condition(world, name, "Ready")).get("reason") == reason and c,
        what=f"{name} Ready=False/{reason}",
        world=world,
    )
    assert ready["status"] == "False"
    event = _warning(world, name, reason)
    assert event["message"] == ready["message"][:1024]
    return dict(ready)


def _warning(world: World, name: str, reason: str) -> dict[str, Any]:
    """The Warning Event with `reason` about LeadModel `name`."""
    found = wait_for(
        lambda: [
            e
            for e in world.admin.list("Event", world.ns)
            if e.get("reason") == reason
            and e["involvedObject"].get("name") == name
            and e["involvedObject"].get("kind") == "LeadModel"
        ],
        what=f"{reason} Event for {name}",
        world=world,
    )
    assert found[0]["type"] == "Warning"
    return dict(found[0])


def _candidate(world: World, name: str, reason: str) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        status = (world.tenant.get("LeadModel", world.ns, name) or {}).get("status") or {}
        cand = status.get("candidate") or {}
        return status if cand.get("reason") == reason else None

    found: dict[str, Any] = wait_for(seen, what=f"{name} candidate {reason}", world=world)
    return found


def _sealed(version: int, *, auc: float = 0.99, key: bytes | None = None) -> bytes:
    art = make_artifact(n=200, version=version)
    art = art.model_copy(update={"metrics": art.metrics.model_copy(update={"auc": auc})})
    signer = None if key is None else contract.SigningKey.from_bytes(key)
    return contract.dumps(contract.seal(art, key=signer))


def _children(world: World, name: str) -> dict[str, dict[str, Any] | None]:
    own = builders.names(name)
    return {
        f"{kind}/{child}": world.admin.get(kind, world.ns, child)
        for kind, child in [
            ("ServiceAccount", own["jobs"]),
            ("Role", own["jobs"]),
            ("RoleBinding", own["jobs"]),
            ("Service", own["scorer"]),
            ("Deployment", own["scorer"]),
            ("CronJob", own["train"]),
            ("CronJob", own["backfill"]),
        ]
    }


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


# --- findings ------------------------------------------------------------------------------


def test_never_adopts_the_admins_serviceaccount_role_or_rolebinding(world: World) -> None:
    ns, admin = world.ns, world.admin
    admin.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "ci-jobs", "namespace": ns},
        }
    )
    admin.create(
        _binding(ns, "ci-jobs-admin", role="admin", subject_sa="ci-jobs", kind="ClusterRole")
    )
    admin.create(_role(ns, "ops-jobs", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]))
    admin.create(_binding(ns, "ops-jobs", role="ops-jobs", user="on-call"))
    before = {
        key: admin.get(kind, ns, name)
        for key, (kind, name) in {
            "sa": ("ServiceAccount", "ci-jobs"),
            "role": ("Role", "ops-jobs"),
            "binding": ("RoleBinding", "ops-jobs"),
        }.items()
    }
    # Training and backfill images the tenant picks would run as that ServiceAccount.
    world.tenant.create(_leadmodel(ns, "ci"))
    world.tenant.create(_leadmodel(ns, "ops"))
    ci = _refused(world, "ci", "NameConflict")
    assert f"ServiceAccount {ns}/ci-jobs" in ci["message"]
    assert "not made by LeadOps" in ci["message"]
    ops = _refused(world, "ops", "NameConflict")
    assert f"{ns}/ops-jobs" in ops["message"]
    # Touch nothing: no child of either LeadModel was made, nothing of the admin's changed.
    admins = {"ServiceAccount/ci-jobs", "Role/ops-jobs", "RoleBinding/ops-jobs"}
    for lm in ("ci", "ops"):
        made = {k for k, v in _children(world, lm).items() if v is not None}
        assert made <= admins, (lm, made - admins)
    for key, obj in before.items():
        assert obj is not None
        now = admin.get(obj["kind"], ns, obj["metadata"]["name"])
        assert now is not None, key
        assert now["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"], key
        assert not now["metadata"].get("ownerReferences"), key
    # Deleting the LeadModels lets the garbage collector remove nothing of the admin's.
    world.tenant.delete("LeadModel", ns, "ci")
    world.tenant.delete("LeadModel", ns, "ops")
    wait_for(
        lambda: not any(world.tenant.get("LeadModel", ns, n) for n in ("ci", "ops")),
        what="LeadModels gone",
        world=world,
    )
    for obj in before.values():
        assert obj is not None
        assert admin.get(obj["kind"], ns, obj["metadata"]["name"]) is not None
    role = admin.get("Role", ns, "ops-jobs")
    assert role is not None
    assert role["rules"][0]["verbs"] == ["*"]
    binding = admin.get("RoleBinding", ns, "ops-jobs")
    assert binding is not None
    assert binding["subjects"][0]["name"] == "on-call"


def test_a_gzip_bomb_is_refused_within_the_memory_bound(world: World) -> None:
    ns = world.ns
    world.tenant.create(_leadmodel(ns, "bomb"))
    wait_for(lambda: _condition(world, "bomb", "Ready"), what="bomb reconciled", world=world)
    # 600 MiB of zeros as ~590 KiB of gzip, built in chunks (the test holds no 600 MiB either).
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1024 * 1024)
    packed = b"".join(packer.compress(zeros) for _ in range(600)) + packer.flush()
    assert len(packed) < registry.MAX_COMPRESSED_BYTES
    version = int(time.time()) - 300
    world.tenant.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": registry.configmap_name("bomb", version),
                "namespace": ns,
                "labels": {
                    registry.LABEL_LEADMODEL: "bomb",
                    registry.LABEL_COMPONENT: registry.COMPONENT_MODEL,
                    registry.MODEL_VERSION: str(version),
                },
            },
            "binaryData": {registry.DATA_KEY: base64.b64encode(packed).decode()},
        }
    )
    status = _candidate(world, "bomb", "ArtifactTooLarge")
    assert status["candidate"]["verdict"] == "Rejected"
    assert str(version) in _warning(world, "bomb", "ArtifactTooLarge")["message"]
    assert _condition(world, "bomb", "Validated")["status"] == "False"
    peak = _peak_rss(world.operator.pid)
    logger.info("operator peak RSS after the bomb: %.1f MiB", peak / 2**20)
    print(f"\noperator peak RSS (VmHWM) after a 600 MiB gzip bomb: {peak / 2**20:.1f} MiB")
    assert peak < RSS_BOUND_BYTES
    assert world.operator.poll() is None


def test_without_a_key_anyone_who_writes_configmaps_can_publish_and_status_says_so(
    world: World,
) -> None:
    ns = world.ns
    world.tenant.create(_leadmodel(ns, "open"))
    uid = (world.tenant.get("LeadModel", ns, "open") or {})["metadata"]["uid"]
    data = _sealed(int(time.time()) - 600, auc=0.99)  # an AUC the tenant wrote
    world.tenant.create(configmap_for(data, leadmodel="open", namespace=ns, owner_uid=uid))
    _candidate(world, "open", "GatesPassed")
    validated = _condition(world, "open", "Validated")
    assert "anyone who can write ConfigMaps in this namespace can publish" in validated["message"]


def test_with_a_key_only_signed_validated_bytes_are_served(world: World, tmp_path: Path) -> None:
    ns, tenant = world.ns, world.tenant
    world.admin.create(_secret(ns, "signing", {"key": SIGNING_SECRET}, usable_by="signed"))
    # The default policy (IfSigned): with a key configured it must still refuse unsigned ones.
    tenant.create(
        _leadmodel(ns, "signed", signing={"keySecretRef": {"name": "signing", "key": "key"}})
    )
    uid = (tenant.get("LeadModel", ns, "signed") or {})["metadata"]["uid"]
    base = int(time.time()) - 900

    def publish(data: bytes) -> None:
        tenant.create(configmap_for(data, leadmodel="signed", namespace=ns, owner_uid=uid))

    publish(_sealed(base + 1))  # untrained, unsigned, AUC 0.99 written by the tenant
    _candidate(world, "signed", "SignatureMissing")
    _warning(world, "signed", "SignatureMissing")
    publish(_sealed(base + 2, key=b"a-key-the-tenant-made-up-itself"))
    _candidate(world, "signed", "SignatureInvalid")
    _warning(world, "signed", "SignatureInvalid")
    deployment = world.admin.get("Deployment", ns, "signed-scorer")
    assert deployment is not None
    assert registry.MODEL_VERSION not in (deployment["metadata"].get("annotations") or {})

    good = _sealed(base + 3, auc=0.8, key=SIGNING_SECRET)  # what the training Job publishes
    digest = contract.load_artifact(good).digest
    publish(good)
    _candidate(world, "signed", "GatesPassed")

    def template_digest() -> str:
        dep = world.admin.get("Deployment", ns, "signed-scorer") or {}
        ann = dep["spec"]["template"]["metadata"].get("annotations") or {}
        return str(ann.get(builders.ANN_DIGEST, ""))

    wait_for(lambda: template_digest() == digest, what="validated digest rolled out", world=world)
    # The swap: the version's own ConfigMap recreated unsigned, without the component label
    # (what the Pods mount by name) ...
    name = registry.configmap_name("signed", base + 3)
    tenant.delete("ConfigMap", ns, name)
    swapped = registry.encode(_sealed(base + 3, auc=0.99), leadmodel="signed", namespace=ns)
    del swapped["metadata"]["labels"][registry.LABEL_COMPONENT]
    tenant.create(swapped)

    def trained(version: int) -> bool:
        message = str(_condition(world, "signed", "Trained").get("message", ""))
        return message.startswith(f"version {version} ")

    wait_for(lambda: trained(base + 2), what="the operator saw the swap", world=world)
    # ... and a decoy labelled ConfigMap with the signed bytes, which satisfies the operator.
    decoy = registry.encode(good, leadmodel="signed", namespace=ns)
    decoy["metadata"]["name"] = "signed-decoy"
    tenant.create(decoy)
    wait_for(lambda: trained(base + 3), what="the operator saw the decoy", world=world)
    assert template_digest() == digest, "the Pod template still names only the validated bytes"
    # What a new Pod's init container would do with the bytes it now mounts: refuse them.
    mounted = world.admin.get("ConfigMap", ns, name)
    assert mounted is not None
    source = tmp_path / registry.DATA_KEY
    source.write_bytes(base64.b64decode(mounted["binaryData"][registry.DATA_KEY]))
    target = tmp_path / "model.json"
    assert cli.main(["unpack-model", "--digest", digest, str(source), str(target)]) == 2
    assert not target.exists()
    # And the scorer's loader, given those bytes anyway, refuses them too.
    from leadops.scorer.model import ModelRejected, load_serving_model  # noqa: PLC0415

    target.write_bytes(contract.gunzip_bounded(source.read_bytes()))
    with pytest.raises(ModelRejected) as rejected:
        load_serving_model(target, expect_digest=digest)
    assert rejected.value.reason == "DigestMismatch"


def test_images_secrets_and_annotations_beyond_the_author_are_invalid(world: World) -> None:
    ns = world.ns
    world.admin.create(_secret(ns, "admin-token", {"token": b"cluster-admin-token"}))
    world.tenant.create(_leadmodel(ns, "img", training={"image": "evil.example/miner:1"}))
    world.tenant.create(
        _leadmodel(ns, "sec", scorer={"apiKeySecretRef": {"name": "admin-token", "key": "token"}})
    )
    unconfined = {"container.apparmor.security.beta.kubernetes.io/scorer": "unconfined"}
    world.tenant.create(_leadmodel(ns, "aa", scorer={"podAnnotations": unconfined}))
    img = _refused(world, "img", "InvalidSpec")
    assert "spec.training.image 'evil.example/miner:1'" in img["message"]
    sec = _refused(world, "sec", "InvalidSpec")
    assert f"Secret {ns}/admin-token" in sec["message"]
    assert "leadops.io/usable-by" in sec["message"]
    aa = _refused(world, "aa", "InvalidSpec")
    assert "container.apparmor.security.beta.kubernetes.io/scorer" in aa["message"]
    for name in ("img", "sec", "aa"):
        assert all(v is None for v in _children(world, name).values()), name


def test_names_and_sizes_are_checked_up_front(world: World) -> None:
    ns = world.ns
    with pytest.raises(KubeError) as long_name:
        world.tenant.create(_leadmodel(ns, "a" * 45))
    assert long_name.value.status == 422
    assert "at most 39 characters" in str(long_name.value)
    huge = {"prometheus.io/path": "x" * 300_000}
    with pytest.raises(KubeError) as too_big:
        world.tenant.create(_leadmodel(ns, "big", scorer={"podAnnotations": huge}))
    assert too_big.value.status == 422
    many = {f"team{i}": "x" for i in range(33)}
    with pytest.raises(KubeError) as too_many:
        world.tenant.create(_leadmodel(ns, "many", scorer={"podLabels": many}))
    assert too_many.value.status == 422
    # A spec the schema accepts but the API refuses as a child: nothing of the pass is made.
    resources = {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}
    world.tenant.create(_leadmodel(ns, "rsrc", scorer={"resources": resources}))
    failed = _refused(world, "rsrc", "ApplyFailed")
    assert f"Deployment {ns}/rsrc-scorer" in failed["message"]
    assert "less than or equal to memory limit" in failed["message"]
    assert all(v is None for v in _children(world, "rsrc").values())


def test_the_operator_log_shows_no_forbidden_request(world: World) -> None:
    text = world.log.read_text()
    assert "Forbidden" not in text, json.dumps(text[-2000:])


def test_a_missing_secret_or_key_is_reported_and_nothing_rolls_out_until_it_exists(
    world: World,
) -> None:
    ns = world.ns
    api_key = {"apiKeySecretRef": {"name": "nokey-api", "key": "key"}}
    world.tenant.create(_leadmodel(ns, "nokey", scorer=api_key))
    missing = _refused(world, "nokey", "MissingSecret")
    assert f"Secret {ns}/nokey-api (key 'key') does not exist" in missing["message"]
    # Pods that mount it could not start: nothing is made until it exists.
    assert all(v is None for v in _children(world, "nokey").values())

    world.admin.create(_secret(ns, "nokey-api", {"other": b"x"}, usable_by="nokey"))
    wait_for(
        lambda: "has no key 'key'" in _condition(world, "nokey", "Ready").get("message", ""),
        what="Ready names the missing key",
        world=world,
    )
    assert _children(world, "nokey")[f"Deployment/{builders.names('nokey')['scorer']}"] is None

    world.admin.patch("Secret", ns, "nokey-api", {"data": {"key": base64.b64encode(b"k").decode()}})
    wait_for(
        lambda: _children(world, "nokey")[f"Deployment/{builders.names('nokey')['scorer']}"],
        what="the scorer Deployment once the Secret holds its key (no LeadModel edit)",
        world=world,
    )
    wait_for(
        lambda: _condition(world, "nokey", "Ready").get("reason") not in {"MissingSecret", None},
        what="Ready no longer MissingSecret",
        world=world,
    )
