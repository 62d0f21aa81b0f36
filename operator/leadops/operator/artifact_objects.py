"""The operator's access to artifacts in object storage (spec.artifacts.s3): download a version
to judge it, delete a version's object when the registry lets it go.

Credentials are the Secret's AWS credentials file, read through the Kubernetes API and handed
to the client in memory: never an env value, never logged.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

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
