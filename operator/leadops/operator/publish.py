"""`leadops publish`: put a trained artifact into the LeadModel's registry (one ConfigMap).

Run by the training Job after `leadops train`. Its ServiceAccount may only create
ConfigMaps, so an existing version (same name) counts as already published.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from leadops import cliutil
from leadops.contract import artifact as contract
from leadops.operator import kube, registry, spec

logger = logging.getLogger(__name__)


def configmap_for(
    artifact_bytes: bytes, *, leadmodel: str, namespace: str, owner_uid: str = ""
) -> dict[str, Any]:
    """The registry ConfigMap; refuses an artifact the contract refuses (digest, format)."""
    contract.load_artifact(artifact_bytes)
    owner = None
    if owner_uid:
        owner = {
            "apiVersion": f"{spec.GROUP}/{spec.VERSION}",
            "kind": spec.KIND,
            "name": leadmodel,
            "uid": owner_uid,
            "blockOwnerDeletion": False,
        }
    return registry.encode(artifact_bytes, leadmodel=leadmodel, namespace=namespace, owner=owner)


def create(client: kube.Kube, cm: dict[str, Any]) -> bool:
    """Create the version's ConfigMap; False when that version is already published."""
    try:
        client.create(cm)
    except kube.KubeError as exc:
        if exc.status == 409:
            return False
        raise
    meta = cm["metadata"]
    logger.info("Published model version as ConfigMap %s/%s", meta["namespace"], meta["name"])
    return True


def publish(
    client: kube.Kube,
    artifact_bytes: bytes,
    *,
    leadmodel: str,
    namespace: str,
    owner_uid: str = "",
) -> tuple[str, bool]:
    """Validate, encode and create; returns (ConfigMap name, created)."""
    cm = configmap_for(
        artifact_bytes, leadmodel=leadmodel, namespace=namespace, owner_uid=owner_uid
    )
    return cm["metadata"]["name"], create(client, cm)


def main(argv: list[str]) -> int:
    parser = cliutil.ArgumentParser(prog="leadops publish", description=__doc__)
    parser.add_argument("--artifact", required=True, type=Path, help="model.json to publish")
    parser.add_argument("--leadmodel", required=True, help="LeadModel name")
    parser.add_argument("--namespace", required=True, help="LeadModel namespace")
    parser.add_argument("--owner-uid", default="", help="LeadModel uid (owner reference)")
    args = parser.parse_args(argv)
    try:
        # Bounded before reading: the registry holds at most this much unpacked.
        size = args.artifact.stat().st_size
        if size > contract.MAX_UNPACKED_BYTES:
            raise cliutil.UsageError(
                f"{args.artifact}: ArtifactTooLarge: {size} bytes, over the registry's "
                f"{contract.MAX_UNPACKED_BYTES}"
            )
        data = args.artifact.read_bytes()
    except OSError as exc:
        raise cliutil.UsageError(f"cannot read {args.artifact}: {exc.strerror}") from exc
    try:
        cm = configmap_for(
            data, leadmodel=args.leadmodel, namespace=args.namespace, owner_uid=args.owner_uid
        )
    except (contract.ArtifactError, registry.RegistryError) as exc:
        raise cliutil.UsageError(f"{args.artifact}: {exc}") from exc
    try:
        client = kube.Kube(kube.load_api_client())
    except kube.ConfigError as exc:
        raise cliutil.UsageError(f"no cluster to publish to: {exc}") from exc
    name, created = cm["metadata"]["name"], create(client, cm)
    print(f"{'published' if created else 'already published'}: configmap/{name}")
    return 0
