"""Model artifacts in S3-compatible object storage (spec.artifacts.s3): put, bounded get, delete.

The registry ConfigMap keeps a version's metadata and names its object (`s3://bucket/key`); the
bytes live in the bucket. Every reader checks the digest after downloading (unpack-model, the
operator's facts), so a replaced object never serves.

The client is MinIO's Python SDK (`minio`), imported only when an S3 store is used: the scorer
image does not ship it (its init container runs the jobs image when artifacts are in S3).
Credentials come from an AWS shared credentials file (AWS_SHARED_CREDENTIALS_FILE, mounted from
a Secret) or from that file's bytes (the operator reads the Secret); never from env values.
"""

from __future__ import annotations

import configparser
import datetime
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from leadops.reasoned import ReasonedError

if TYPE_CHECKING:
    from minio import Minio

SCHEME: Final = "s3://"
DEFAULT_ENDPOINT: Final = "https://s3.amazonaws.com"
ENV_CREDENTIALS_FILE: Final = "AWS_SHARED_CREDENTIALS_FILE"
_CHUNK: Final = 64 * 1024
# User metadata naming the LeadModel (its uid) an object was written for: its objects can be
# told from those of a LeadModel re-created under the same name, which shares the key prefix.
OWNER_METADATA: Final = "leadmodel-uid"


class StoreError(ReasonedError):
    """An object that cannot be stored, found or read; `reason` is a CamelCase constant."""

    NOT_FOUND: Final = "ArtifactNotFound"
    TOO_LARGE: Final = "ArtifactTooLarge"
    UNREACHABLE: Final = "ArtifactStoreUnavailable"


@dataclass(frozen=True)
class Store:
    """Where a LeadModel's artifacts go: the bucket, a key prefix and how to reach them."""

    bucket: str
    prefix: str = ""
    endpoint: str = ""  # empty: AWS S3
    region: str = ""

    def key(self, *, namespace: str, leadmodel: str, version: int) -> str:
        return f"{self.leadmodel_prefix(namespace=namespace, leadmodel=leadmodel)}{version}.json.gz"

    def leadmodel_prefix(self, *, namespace: str, leadmodel: str) -> str:
        # The trailing slash keeps LeadModel "a" away from "ab"'s objects.
        return f"{self.prefix}{namespace}/{leadmodel}/"

    def url(self, key: str) -> str:
        return f"{SCHEME}{self.bucket}/{key}"


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); ValueError for anything else."""
    if not url.startswith(SCHEME):
        raise ValueError(f"{url[:80]!r} is not an s3://bucket/key URL")
    bucket, _, key = url[len(SCHEME) :].partition("/")
    if not bucket or not key:
        raise ValueError(f"{url[:80]!r} is not an s3://bucket/key URL")
    return bucket, key


def parse_credentials(material: bytes, *, profile: str = "default") -> tuple[str, str, str]:
    """(access key, secret key, session token) from an AWS shared credentials file's bytes."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(material.decode("utf-8"))
    except (UnicodeDecodeError, configparser.Error) as exc:
        raise StoreError(
            StoreError.UNREACHABLE, "the credentials are not an AWS credentials file"
        ) from exc
    access = parser.get(profile, "aws_access_key_id", fallback="")
    secret = parser.get(profile, "aws_secret_access_key", fallback="")
    if not access or not secret:
        raise StoreError(
            StoreError.UNREACHABLE,
            f"the credentials file lacks aws_access_key_id or aws_secret_access_key in [{profile}]",
        )
    return access, secret, parser.get(profile, "aws_session_token", fallback="")


def client(store: Store, *, credentials: bytes | None = None) -> Minio:
    """A client for `store`: keys from `credentials` (file bytes) if given, else from the file
    AWS_SHARED_CREDENTIALS_FILE names (minio's AWSConfigProvider reads it)."""
    try:
        from minio import Minio  # noqa: PLC0415 (only where artifacts live in S3)
        from minio.credentials.providers import AWSConfigProvider  # noqa: PLC0415
    except ImportError as exc:
        raise StoreError(
            StoreError.UNREACHABLE,
            "artifacts in S3 need the `minio` package (the jobs and operator images have it)",
        ) from exc
    parts = urlsplit(store.endpoint or DEFAULT_ENDPOINT)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise StoreError(
            StoreError.UNREACHABLE, f"endpoint {store.endpoint[:80]!r} is not an http(s) URL"
        )
    options: dict[str, Any] = {"secure": parts.scheme == "https", "region": store.region or None}
    if credentials is not None:
        access, secret, token = parse_credentials(credentials)
        options |= {"access_key": access, "secret_key": secret, "session_token": token or None}
    else:
        options["credentials"] = AWSConfigProvider()
    return Minio(parts.netloc, **options)


def _failure(exc: Exception, what: str) -> StoreError:
    code = getattr(exc, "code", "")
    if code in {"NoSuchKey", "NoSuchBucket"}:
        return StoreError(StoreError.NOT_FOUND, f"{what}: {code}")
    # The exception's text can carry request ids and URLs, never credentials; keep it short.
    return StoreError(StoreError.UNREACHABLE, f"{what}: {code or type(exc).__name__}")


def _errors() -> tuple[type[Exception], ...]:
    from minio.error import MinioException  # noqa: PLC0415
    from urllib3.exceptions import HTTPError  # noqa: PLC0415

    return (MinioException, HTTPError, OSError, ValueError)


def put(s3: Minio, store: Store, key: str, data: bytes, *, owner_uid: str = "") -> None:
    """Write the object; `owner_uid` (the LeadModel's uid) is kept in its metadata."""
    try:
        s3.put_object(
            store.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type="application/gzip",
            metadata={OWNER_METADATA: owner_uid} if owner_uid else None,
        )
    except _errors() as exc:
        raise _failure(exc, f"cannot write {store.url(key)}") from exc


def get(s3: Minio, store: Store, key: str, *, limit: int) -> bytes:
    """The object's bytes, read as a stream: ArtifactTooLarge before holding over `limit`."""
    url = store.url(key)
    response = None
    try:
        response = s3.get_object(store.bucket, key)
        out = bytearray()
        for chunk in response.stream(_CHUNK):
            out += chunk
            if len(out) > limit:
                raise StoreError(StoreError.TOO_LARGE, f"{url} is over {limit} bytes")
        return bytes(out)
    except _errors() as exc:
        raise _failure(exc, f"cannot read {url}") from exc
    finally:
        if response is not None:
            response.close()
            response.release_conn()


def delete(s3: Minio, store: Store, key: str) -> None:
    """Remove the object (an absent one counts as removed: S3 answers 204 either way)."""
    try:
        s3.remove_object(store.bucket, key)
    except _errors() as exc:
        raise _failure(exc, f"cannot delete {store.url(key)}") from exc


def delete_leadmodel(
    s3: Minio,
    store: Store,
    *,
    namespace: str,
    leadmodel: str,
    owner_uid: str,
    written_before: datetime.datetime,
) -> list[str]:
    """Remove a deleted LeadModel's objects; returns their keys.

    An object is the LeadModel's when its metadata names `owner_uid`, or when it names no owner
    (written by an older release) and is older than `written_before`. An object naming another
    uid belongs to a LeadModel re-created under the same name since, and stays.
    """
    prefix = store.leadmodel_prefix(namespace=namespace, leadmodel=leadmodel)
    removed = []
    try:
        for listed in s3.list_objects(store.bucket, prefix=prefix, recursive=True):
            key = str(listed.object_name)
            stat = s3.stat_object(store.bucket, key)
            owner = (stat.metadata or {}).get(f"x-amz-meta-{OWNER_METADATA}", "")
            old = stat.last_modified is not None and stat.last_modified < written_before
            if owner == owner_uid or (not owner and old):
                s3.remove_object(store.bucket, key)
                removed.append(key)
    except _errors() as exc:
        raise _failure(exc, f"cannot delete under {store.url(prefix)}") from exc
    return removed
