"""`leadops unpack-model`: the scorer's init container turns a registry ConfigMap's gzip (or
the version's object, `s3://bucket/key`, when spec.artifacts is s3) into the `model.json` the
scorer loads, and refuses any bytes but the ones the operator validated.

Decompression is bounded (ArtifactTooLarge before holding more than the limit), and the
artifact must carry the digest the Pod template names (DigestMismatch otherwise), so
replacing the ConfigMap (or the object in the bucket) behind a name cannot change what a new
Pod serves: its init container fails, the rollout stalls and the old Pods keep serving.
"""

from __future__ import annotations

import os
from pathlib import Path

from leadops import cliutil, objectstore
from leadops.contract import artifact as contract

# The ConfigMap store holds at most 900 KiB of gzip per version; anything bigger is not ours.
MAX_PACKED_BYTES = 1024 * 1024
# An object in S3 is gzip of at most MAX_UNPACKED_BYTES of JSON, so never larger than that.
MAX_OBJECT_BYTES = contract.MAX_UNPACKED_BYTES


def unpack(source: Path, *, digest: str, limit: int = contract.MAX_UNPACKED_BYTES) -> bytes:
    """The artifact bytes in gzip file `source`, if they are the artifact with `digest`."""
    try:
        size = source.stat().st_size
        if size > MAX_PACKED_BYTES:
            raise contract.ArtifactError(
                contract.ArtifactError.TOO_LARGE, f"{source} is {size} bytes of gzip"
            )
        packed = source.read_bytes()
    except FileNotFoundError as exc:
        raise contract.ArtifactError(contract.ArtifactError.NOT_FOUND, f"no {source}") from exc
    return _checked(packed, digest=digest, limit=limit)


def _checked(packed: bytes, *, digest: str, limit: int) -> bytes:
    data = contract.gunzip_bounded(packed, limit=limit)
    contract.load_artifact(data, expect_digest=digest)
    return data


def unpack_object(
    url: str, store: objectstore.Store, *, digest: str, limit: int = contract.MAX_UNPACKED_BYTES
) -> bytes:
    """The artifact in object `url` (s3://bucket/key), downloaded, if it has `digest`."""
    bucket, key = objectstore.split_url(url)
    where = objectstore.Store(bucket=bucket, endpoint=store.endpoint, region=store.region)
    try:
        packed = objectstore.get(objectstore.client(where), where, key, limit=MAX_OBJECT_BYTES)
    except objectstore.StoreError as exc:
        raise contract.ArtifactError(exc.reason, exc.message) from exc
    return _checked(packed, digest=digest, limit=limit)


def main(argv: list[str]) -> int:
    parser = cliutil.ArgumentParser(prog="leadops unpack-model", description=__doc__)
    parser.add_argument(
        "source",
        help="gzipped artifact: a file (the registry ConfigMap key) or s3://bucket/key",
    )
    parser.add_argument("target", type=Path, help="where to write model.json")
    parser.add_argument(
        "--digest",
        default=os.environ.get(contract.ENV_MODEL_DIGEST, ""),
        help=f"the validated sha256: digest (default ${contract.ENV_MODEL_DIGEST})",
    )
    parser.add_argument(
        "--s3-endpoint", default="", help="the S3 endpoint URL of an s3:// source (default AWS)"
    )
    parser.add_argument("--s3-region", default="", help="the bucket's region (s3:// sources)")
    args = parser.parse_args(argv)
    if not args.digest:
        raise cliutil.UsageError(f"no --digest (or ${contract.ENV_MODEL_DIGEST}) to check against")
    try:
        if args.source.startswith(objectstore.SCHEME):
            store = objectstore.Store(bucket="", endpoint=args.s3_endpoint, region=args.s3_region)
            data = unpack_object(args.source, store, digest=args.digest)
        else:
            data = unpack(Path(args.source), digest=args.digest)
    except ValueError as exc:
        raise cliutil.UsageError(str(exc)) from exc
    except contract.ArtifactError as exc:
        raise cliutil.UsageError(str(exc)) from exc
    tmp = args.target.with_name(args.target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, args.target)
    print(f"unpacked {args.digest[:23]} to {args.target}")
    return 0
