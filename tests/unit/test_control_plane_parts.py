"""The control-plane harness's pure parts: certificates, kubeconfig, version pins, tool choice."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.control_plane import binaries, node
from tests.fixtures.control_plane.kubeconfig import write_kubeconfig
from tests.fixtures.control_plane.pki import KUBERNETES_SERVICE_IP, write_pki


def test_pki_serving_cert_is_signed_by_ca_and_names_loopback(tmp_path: Path) -> None:
    pki = write_pki(tmp_path)
    ca = x509.load_pem_x509_certificate(pki.ca.cert.read_bytes())
    serving = x509.load_pem_x509_certificate(pki.serving.cert.read_bytes())
    serving.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert ips == {"127.0.0.1", KUBERNETES_SERVICE_IP}
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    assert stat.S_IMODE(pki.ca.key.stat().st_mode) == 0o600


def test_pki_admin_is_cluster_admin_and_controllers_are_not(tmp_path: Path) -> None:
    pki = write_pki(tmp_path)

    def groups(name: str) -> list[str]:
        cert = x509.load_pem_x509_certificate(pki.clients[name].cert.read_bytes())
        return [
            str(a.value)
            for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        ]

    assert groups("admin") == ["system:masters"]
    assert groups("controller-manager") == []
    assert groups("scheduler") == []


def test_kubeconfig_embeds_credentials_and_is_private(tmp_path: Path) -> None:
    pki = write_pki(tmp_path / "pki")
    path = write_kubeconfig(
        tmp_path / "kubeconfig",
        server="https://127.0.0.1:6443",
        ca_cert=pki.ca.cert,
        client=pki.clients["admin"],
        user="admin",
    )
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca.cert.read_bytes()
    user = config["users"][0]["user"]
    assert base64.b64decode(user["client-key-data"]) == pki.clients["admin"].key.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "kubeconfig.tmp").exists()


def test_service_account_key_pair_matches(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    pki = write_pki(tmp_path)
    private = serialization.load_pem_private_key(pki.service_account_key.read_bytes(), None)
    public = serialization.load_pem_public_key(pki.service_account_pub.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert private.public_key().public_numbers() == public.public_numbers()


def test_pinned_versions_meet_the_issue() -> None:
    pins = binaries.pinned_versions()
    assert binaries.minor_of(pins["KUBERNETES_VERSION"]) >= (1, 34)
    assert binaries.minor_of(pins["ETCD_VERSION"]) == (3, 6)
    assert pins["KWOK_VERSION"] == "v0.8.0"


@pytest.mark.parametrize(
    ("version", "expected"),
    [("v1.36.3", (1, 36)), ("v1.32.4-dispatcher", (1, 32)), ("1.37.1", (1, 37))],
)
def test_minor_of(version: str, expected: tuple[int, int]) -> None:
    assert binaries.minor_of(version) == expected


def test_minor_of_rejects_garbage() -> None:
    with pytest.raises(binaries.BinariesError, match="version number"):
        binaries.minor_of("dispatcher")


def _fake_kubectl(directory: Path, git_version: str) -> None:
    # Stands in for "some kubectl on PATH": only its reported version matters here.
    directory.mkdir()
    script = directory / "kubectl"
    body = json.dumps({"clientVersion": {"gitVersion": git_version}})
    script.write_text(f"#!/bin/sh\necho '{body}'\n")
    script.chmod(0o755)


def test_kubectl_on_path_within_skew_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_kubectl(tmp_path / "bin", "v1.37.1")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert binaries.find_kubectl(server_version="v1.36.3") == tmp_path / "bin" / "kubectl"


def test_kubectl_on_path_outside_skew_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_kubectl(tmp_path / "bin", "v1.32.4-dispatcher")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    calls: list[str] = []

    def fake_build(*, what: str = "all") -> Path:
        calls.append(what)
        return tmp_path / "cache"

    monkeypatch.setattr(binaries, "build", fake_build)
    assert binaries.find_kubectl(server_version="v1.36.3") == tmp_path / "cache" / "kubectl"
    assert calls == ["tools"]


def test_kwok_stages_cover_every_fault() -> None:
    stages = [d for d in yaml.safe_load_all(binaries.KWOK_STAGES.read_text()) if d]
    names = {s["metadata"]["name"] for s in stages}
    assert {"node-initialize", "pod-ready", "pod-complete", "pod-never-ready", "pod-fail"} <= names
    faults = {
        value
        for s in stages
        for expr in s["spec"]["selector"]["matchExpressions"]
        if expr["key"] == '.metadata.annotations["leadops.io/fault"]'
        for value in expr.get("values", [])
    }
    assert faults == {"never-ready", "fail"}


def test_asking_whether_the_real_node_is_built_builds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo` asks `build.sh node --cached` and `hack/images/build.sh --cached`: an empty
    cache is a one-line answer naming the make target, and nothing is made."""
    monkeypatch.setenv("LEADOPS_CACHE_DIR", str(tmp_path))
    with pytest.raises(binaries.BinariesError, match=r"node is not built yet \(make node\)"):
        binaries.built_for_a_real_node()
    assert list(tmp_path.iterdir()) == []
    node = tmp_path / "node" / "k" / "bin"
    node.mkdir(parents=True)
    monkeypatch.setattr(binaries, "BUILD_SCRIPT", _script(tmp_path, f"echo {node}"))
    with pytest.raises(binaries.BinariesError, match=r"no base image archive .* \(make images\)"):
        binaries.built_for_a_real_node()
    assert not (tmp_path / "images").exists()


def test_built_images_are_the_archives_a_real_node_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADOPS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(binaries, "BUILD_SCRIPT", _script(tmp_path, "echo /node/bin"))
    # Where hack/images/build.sh keeps them: images/<key of the IMAGE_ pins>/NAME.tar.
    with pytest.raises(binaries.BinariesError) as missing:
        binaries.built_for_a_real_node()
    images = Path(str(missing.value).split(" in ")[1].split(" (")[0])
    images.mkdir(parents=True)
    for name in ("base", *binaries.NODE_IMAGES):
        (images / f"{name}.tar").write_bytes(b"x")
    assert binaries.built_for_a_real_node() == [images / f"{n}.tar" for n in binaries.NODE_IMAGES]
    assert "jobs" in binaries.NODE_IMAGES


def _script(directory: Path, body: str) -> Path:
    script = directory / "fake-build.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


def test_the_real_node_fits_when_its_images_and_margins_fit(tmp_path: Path) -> None:
    image = tmp_path / "scorer.tar"
    image.write_bytes(b"x" * 4096)
    assert node.disk_shortfall(tmp_path, [image, tmp_path / "not-built.tar"]) == ""


def test_the_real_node_refuses_a_disk_its_images_would_fill(tmp_path: Path) -> None:
    usage = shutil.disk_usage(tmp_path)
    image = tmp_path / "jobs.tar"
    with image.open("wb") as archive:
        archive.truncate(usage.free // 2)  # sparse: its size counts, it takes no room
    said = node.disk_shortfall(tmp_path, [image])
    found = re.fullmatch(
        rf"the real node needs ([0-9.]+) GiB free on the file system of {re.escape(str(tmp_path))}"
        r" \(.*\); ([0-9.]+) GiB are free",
        said,
    )
    assert found, said
    needed = 2 * (usage.free // 2) + usage.total // 100 + node.DISK_HEADROOM_BYTES
    assert float(found[1]) == pytest.approx(needed / node.GIB, abs=0.1)
    assert float(found[2]) == pytest.approx(usage.free / node.GIB, abs=0.1)


def _dead_pid() -> int:
    """A pid no process has: one above the kernel's pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def _node_workdir(parent: Path, name: str) -> Path:
    workdir = parent / name
    images = workdir / node.CONTAINERD_DIR / "root" / "io.containerd.content.v1.content"
    images.mkdir(parents=True)
    (images / "blob").write_bytes(b"layer")
    (workdir / "logs").mkdir()
    return workdir


def test_a_killed_runs_images_are_removed_and_a_live_runs_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A harness killed before it could stop its node left its images (gigabytes) behind: the
    next run removes them, keeps that run's logs, and never touches a live run's node."""
    records = tmp_path / "records"
    records.mkdir()
    monkeypatch.setattr(node, "SANDBOX_RECORDS", records)
    monkeypatch.setattr(node, "NETNS_DIR", tmp_path / "no-netns")
    monkeypatch.setattr(node, "CGROUP_ROOT", tmp_path / "no-cgroups")
    dead = f"{node.SANDBOX_PREFIX}{_dead_pid()}-abc123"
    live = f"{node.SANDBOX_PREFIX}{os.getpid()}-def456"
    for name in (dead, live):
        (records / name).write_text(str(_node_workdir(tmp_path, name)))

    node.remove_stale_sandboxes()

    assert not (tmp_path / dead / node.CONTAINERD_DIR / "root").exists()
    assert (tmp_path / dead / "logs").is_dir()
    assert not (records / dead).exists()
    assert (
        tmp_path / live / node.CONTAINERD_DIR / "root" / "io.containerd.content.v1.content" / "blob"
    ).exists()
    assert (records / live).exists()
