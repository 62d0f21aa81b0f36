"""`leadops unpack-model`: the scorer's init container turns a registry ConfigMap's gzip into
the `model.json` the scorer loads, and refuses any bytes but the ones the operator validated.

Decompression is bounded (ArtifactTooLarge before holding more than the limit), and the
artifact must carry the digest the Pod template names (DigestMismatch otherwise), so
replacing the ConfigMap behind a name cannot change what a new Pod serves: its init
container fails, the rollout stalls and the old Pods keep serving.
"""

from __future__ import annotations

import os
from pathlib import Path

from leadops import cliutil
from leadops.contract import artifact as contract

# The registry stores at most 900 KiB of gzip per version; anything bigger is not ours.
MAX_PACKED_BYTES = 1024 * 1024


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
    data = contract.gunzip_bounded(packed, limit=limit)
    contract.load_artifact(data, expect_digest=digest)
    return data


def main(argv: list[str]) -> int:
    parser = cliutil.ArgumentParser(prog="leadops unpack-model", description=__doc__)
    parser.add_argument("source", type=Path, help="gzipped artifact (the registry ConfigMap key)")
    parser.add_argument("target", type=Path, help="where to write model.json")
    parser.add_argument(
        "--digest",
        default=os.environ.get(contract.ENV_MODEL_DIGEST, ""),
        help=f"the validated sha256: digest (default ${contract.ENV_MODEL_DIGEST})",
    )
    args = parser.parse_args(argv)
    if not args.digest:
        raise cliutil.UsageError(f"no --digest (or ${contract.ENV_MODEL_DIGEST}) to check against")
    try:
        data = unpack(args.source, digest=args.digest)
    except contract.ArtifactError as exc:
        raise cliutil.UsageError(str(exc)) from exc
    tmp = args.target.with_name(args.target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, args.target)
    print(f"unpacked {args.digest[:23]} to {args.target}")
    return 0
