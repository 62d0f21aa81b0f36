"""The operator's access to artifacts in object storage (spec.artifacts.s3): download a version
to judge it, delete a version's object when the registry lets it go, and a deleted LeadModel's
objects when it goes.

Credentials are the Secret's AWS credentials file, read through the Kubernetes API and handed
to the client in memory: never an env value, never logged.
"""

from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from leadops import objectstore
from leadops.contract import artifact as contract
from leadops.operator import kube as kubemod
from leadops.operator import spec

logger = logging.getLogger(__name__)


class Bucket:
    """The LeadModel's bucket as the operator reaches it (endpoint, region, credentials)."""

    def __init__(self, store: objectstore.Store, client: Any) -> None:
        self.store = store
        self._client = client

    @classmethod
    def of(cls, kube: kubemod.Kube, namespace: str, s3: spec.S3Artifacts) -> Bucket:
        """StoreError when the credentials Secret or key is missing or unusable."""
        ref = s3.credentials_secret_ref
        secret = kube.get("Secret", namespace, ref.name)
        raw = ((secret or {}).get("data") or {}).get(ref.key)
        if not raw:
            raise objectstore.StoreError(
                objectstore.StoreError.UNREACHABLE,
                f"Secret {namespace}/{ref.name} has no key {ref.key!r} "
                "(spec.artifacts.s3.credentialsSecretRef)",
            )
        store = s3.store()
        return cls(store, objectstore.client(store, credentials=base64.b64decode(raw)))

    def _where(self, url: str) -> tuple[objectstore.Store, str]:
        bucket, key = objectstore.split_url(url)
        return objectstore.Store(
            bucket=bucket, endpoint=self.store.endpoint, region=self.store.region
        ), key

    def artifact(self, url: str) -> bytes:
        """The artifact JSON in object `url`, downloaded and unpacked, both bounded."""
        where, key = self._where(url)
        packed = objectstore.get(self._client, where, key, limit=contract.MAX_UNPACKED_BYTES)
        return contract.gunzip_bounded(packed)

    def delete(self, url: str) -> None:
        where, key = self._where(url)
        objectstore.delete(self._client, where, key)
        logger.info("Deleted model artifact %s", url)

    def delete_leadmodel(
        self,
        *,
        namespace: str,
        leadmodel: str,
        owner_uid: str,
        written_before: datetime.datetime,
    ) -> list[str]:
        """A deleted LeadModel's objects in this bucket (see objectstore.delete_leadmodel)."""
        return objectstore.delete_leadmodel(
            self._client,
            self.store,
            namespace=namespace,
            leadmodel=leadmodel,
            owner_uid=owner_uid,
            written_before=written_before,
        )


def leadmodel_deleted(kube: kubemod.Kube, body: Mapping[str, Any]) -> list[str]:
    """Remove the objects of a LeadModel that is gone; returns their keys.

    Best effort, by design: no finalizer holds the LeadModel (with one, it could not be deleted
    while the operator is away). A LeadModel deleted while no operator runs, or whose credentials
    Secret went first (its namespace deleted), leaves its objects: logged with their prefix.
    """
    meta = body.get("metadata") or {}
    namespace, name, uid = str(meta.get("namespace")), str(meta.get("name")), str(meta.get("uid"))
    try:
        s3 = spec.Artifacts.model_validate((body.get("spec") or {}).get("artifacts") or {}).s3
    except ValidationError:
        return []  # never valid: nothing was published to a bucket under it
    if s3 is None:
        return []
    where = s3.store()
    prefix = where.url(where.leadmodel_prefix(namespace=namespace, leadmodel=name))
    try:
        removed = Bucket.of(kube, namespace, s3).delete_leadmodel(
            namespace=namespace,
            leadmodel=name,
            owner_uid=uid,
            written_before=datetime.datetime.now(datetime.UTC),
        )
    except (objectstore.StoreError, kubemod.KubeError) as exc:
        logger.warning(
            "LeadModel %s/%s deleted; its artifacts under %s stay: %s (remove them yourself or "
            "give the bucket a lifecycle rule)",
            namespace,
            name,
            prefix,
            exc,
        )
        return []
    logger.info(
        "LeadModel %s/%s deleted; removed %d artifact objects under %s",
        namespace,
        name,
        len(removed),
        prefix,
    )
    return removed
