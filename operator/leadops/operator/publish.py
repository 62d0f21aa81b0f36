"""`leadops publish`: put a trained artifact into the LeadModel's registry (one ConfigMap).

With spec.artifacts.s3 the gzipped bytes go to the bucket first (credentials from the file
AWS_SHARED_CREDENTIALS_FILE names) and the ConfigMap holds the metadata and the object's URL;
a ConfigMap therefore never names an object that was not written.

Run by the training Job after `leadops train`. Its ServiceAccount may only create
ConfigMaps and read its own LeadModel, so an existing version (same name) counts as already
published. A version is published only to a LeadModel that exists, and owned by it: it goes
when the LeadModel goes, and a re-created LeadModel of the same name never serves it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from leadops import cliutil, objectstore
from leadops.contract import artifact as contract
from leadops.operator import kube, registry, settings, spec

logger = logging.getLogger(__name__)


def configmap_for(
    artifact_bytes: bytes,
    *,
    leadmodel: str,
    namespace: str,
    owner_uid: str = "",
    object_url: str = "",
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
            "controller": True,
            # True would need update on leadmodels/finalizers, which the jobs do not hold.
            "blockOwnerDeletion": False,
        }
    return registry.encode(
        artifact_bytes, leadmodel=leadmodel, namespace=namespace, owner=owner, object_url=object_url
    )


def store_of(leadmodel: Mapping[str, Any]) -> objectstore.Store | None:
    """The LeadModel's object store (spec.artifacts.s3), or None for the ConfigMap store."""
    raw = (leadmodel.get("spec") or {}).get("artifacts") or {}
    try:
        return spec.Artifacts.model_validate(raw).store()
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise cliutil.UsageError(f"spec.artifacts.{where} of the LeadModel is invalid") from exc


def stored(
    artifact_bytes: bytes,
    store: objectstore.Store | None,
    *,
    leadmodel: str,
    namespace: str,
    owner_uid: str = "",
    s3: Any = None,
) -> dict[str, Any]:
    """The registry ConfigMap to create; with a store, the object is written first. `s3`: a
    client (default: one from AWS_SHARED_CREDENTIALS_FILE)."""
    if store is None:
        return configmap_for(
            artifact_bytes, leadmodel=leadmodel, namespace=namespace, owner_uid=owner_uid
        )
    version = contract.load_artifact(artifact_bytes).version
    key = store.key(namespace=namespace, leadmodel=leadmodel, version=version)
    cm = configmap_for(
        artifact_bytes,
        leadmodel=leadmodel,
        namespace=namespace,
        owner_uid=owner_uid,
        object_url=store.url(key),
    )
    objectstore.put(
        s3 or objectstore.client(store),
        store,
        key,
        registry.pack(artifact_bytes),
        owner_uid=owner_uid,
    )
    logger.info("Wrote model version %s to %s", version, store.url(key))
    return cm


def owner_uid_of(
    client: kube.Kube, *, leadmodel: str, namespace: str, expected_uid: str = ""
) -> str:
    """The uid of the LeadModel a version is published to (see `leadmodel_of`)."""
    found = leadmodel_of(
        client, leadmodel=leadmodel, namespace=namespace, expected_uid=expected_uid
    )
    return str((found.get("metadata") or {}).get("uid") or "")


def leadmodel_of(
    client: kube.Kube, *, leadmodel: str, namespace: str, expected_uid: str = ""
) -> Mapping[str, Any]:
    """The LeadModel a version is published to; UsageError if it does not exist (or is not
    the one `expected_uid` names: re-created since the Job started)."""
    try:
        found = client.get(spec.KIND, namespace, leadmodel)
    except kube.KubeError as exc:
        raise cliutil.UsageError(f"cannot read LeadModel {namespace}/{leadmodel}: {exc}") from exc
    if found is None:
        raise cliutil.UsageError(
            f"LeadModel {leadmodel!r} not found in namespace {namespace!r}; nothing published"
        )
    uid = str((found.get("metadata") or {}).get("uid") or "")
    if expected_uid and uid != expected_uid:
        raise cliutil.UsageError(
            f"LeadModel {namespace}/{leadmodel} has uid {uid}, not --owner-uid {expected_uid} "
            "(re-created since); nothing published"
        )
    return found


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
    store: objectstore.Store | None = None,
    s3: Any = None,
) -> tuple[str, bool]:
    """Validate, store and create; returns (ConfigMap name, created)."""
    cm = stored(
        artifact_bytes,
        store,
        leadmodel=leadmodel,
        namespace=namespace,
        owner_uid=owner_uid,
        s3=s3,
    )
    return cm["metadata"]["name"], create(client, cm)


def main(argv: list[str]) -> int:
    parser = cliutil.ArgumentParser(
        prog="leadops publish",
        usage="leadops publish NAME -n NAMESPACE --artifact model.json [--kubeconfig FILE]",
        description=__doc__,
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="LeadModel name")
    parser.add_argument("--artifact", required=True, type=Path, help="model.json to publish")
    parser.add_argument(
        "--leadmodel", dest="leadmodel", help="LeadModel name (older spelling of NAME)"
    )
    parser.add_argument(
        "-n",
        "--namespace",
        default=settings.cli_namespace(),
        help="namespace of the LeadModel (default: $LEADOPS_NAMESPACE or 'default')",
    )
    parser.add_argument(
        "--owner-uid",
        default="",
        help="refuse unless the LeadModel has this uid (default: any; the owner is always it)",
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default $KUBECONFIG)")
    args = parser.parse_args(argv)
    if args.name and args.leadmodel and args.name != args.leadmodel:
        parser.error(f"NAME {args.name!r} and --leadmodel {args.leadmodel!r} differ")
    args.leadmodel = args.name or args.leadmodel
    if not args.leadmodel:
        parser.error("give the LeadModel NAME (or --leadmodel NAME)")
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
    try:  # before any cluster call: the store's size limit is checked once the store is known
        contract.load_artifact(data)
    except contract.ArtifactError as exc:
        raise cliutil.UsageError(f"{args.artifact}: {exc}") from exc
    try:
        client = kube.Kube(kube.load_api_client(kubeconfig=args.kubeconfig))
    except kube.ConfigError as exc:
        raise cliutil.UsageError(f"no cluster to publish to: {exc}") from exc
    found = leadmodel_of(
        client, leadmodel=args.leadmodel, namespace=args.namespace, expected_uid=args.owner_uid
    )
    uid = str((found.get("metadata") or {}).get("uid") or "")
    try:
        cm = stored(
            data, store_of(found), leadmodel=args.leadmodel, namespace=args.namespace, owner_uid=uid
        )
    except (contract.ArtifactError, registry.RegistryError) as exc:
        raise cliutil.UsageError(f"{args.artifact}: {exc}") from exc
    except objectstore.StoreError as exc:
        raise cliutil.UsageError(f"{args.artifact}: {exc}") from exc
    name, created = cm["metadata"]["name"], create(client, cm)
    print(f"{'published' if created else 'already published'}: configmap/{name}")
    return 0
