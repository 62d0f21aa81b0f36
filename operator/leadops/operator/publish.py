"""`leadops publish`: put a trained artifact into the LeadModel's registry (one ConfigMap).

Run by the training Job after `leadops train`. Its ServiceAccount may only create
ConfigMaps, so an existing version (same name) counts as already published.
"""

from __future__ import annotations

import logging
from pathlib import Path

from leadops import cliutil
from leadops.contract import artifact as contract
from leadops.operator import kube, registry, spec

logger = logging.getLogger(__name__)


def publish(
    client: kube.Kube,
    artifact_bytes: bytes,
    *,
    leadmodel: str,
    namespace: str,
    owner_uid: str = "",
) -> tuple[str, bool]:
    """Create the version's ConfigMap; returns (name, created). Refuses a broken artifact."""
    art = contract.load_artifact(artifact_bytes)  # never publish what the gates would refuse unread
    owner = None
    if owner_uid:
        owner = {
            "apiVersion": f"{spec.GROUP}/{spec.VERSION}",
            "kind": spec.KIND,
            "name": leadmodel,
            "uid": owner_uid,
            "blockOwnerDeletion": False,
        }
    cm = registry.encode(artifact_bytes, leadmodel=leadmodel, namespace=namespace, owner=owner)
    try:
        client.create(cm)
    except kube.KubeError as exc:
        if exc.status == 409:
            return cm["metadata"]["name"], False
        raise
    logger.info("Published model version %s as ConfigMap %s/%s", art.version, namespace, leadmodel)
    return cm["metadata"]["name"], True


def main(argv: list[str]) -> int:
    parser = cliutil.ArgumentParser(prog="leadops publish", description=__doc__)
    parser.add_argument("--artifact", required=True, type=Path, help="model.json to publish")
    parser.add_argument("--leadmodel", required=True, help="LeadModel name")
    parser.add_argument("--namespace", required=True, help="LeadModel namespace")
    parser.add_argument("--owner-uid", default="", help="LeadModel uid (owner reference)")
    args = parser.parse_args(argv)
    try:
        data = args.artifact.read_bytes()
    except OSError as exc:
        raise cliutil.UsageError(f"cannot read {args.artifact}: {exc.strerror}") from exc
    try:
        name, created = publish(
            kube.Kube(kube.load_api_client()),
            data,
            leadmodel=args.leadmodel,
            namespace=args.namespace,
            owner_uid=args.owner_uid,
        )
    except contract.ArtifactError as exc:
        raise cliutil.UsageError(f"{args.artifact}: {exc}") from exc
    except registry.RegistryError as exc:
        raise cliutil.UsageError(f"{args.artifact}: {exc}") from exc
    print(f"{'published' if created else 'already published'}: configmap/{name}")
    return 0
