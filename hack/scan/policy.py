"""Run checkov over what LeadOps deploys and hold its failures to one accepted list.

What is scanned: `helm template` of the chart with each values profile in
hack/scan/profiles/, and the operator's children as the golden files have them
(tests/unit/golden/). Every check that still fails must match an entry of
hack/scan/accepted.yaml, which says why it does not apply; an entry nothing matches any more
fails too, so the list never outlives its reason.

    .venv/bin/python -m hack.scan.policy --checkov .venv-tools/checkov/bin/checkov

(`make scan` creates that tool environment with the pinned checkov and runs this.)
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "leadops"
PROFILES = Path(__file__).resolve().parent / "profiles"
ACCEPTED = Path(__file__).resolve().parent / "accepted.yaml"
GOLDEN = ROOT / "tests" / "unit" / "golden"


@dataclass(frozen=True)
class Failure:
    check: str
    resource: str  # Kind.namespace.name as checkov names it
    source: str  # "chart:<profile>" or "golden:<file>"
    title: str


@dataclass(frozen=True)
class Accepted:
    check: str
    resources: tuple[str, ...]  # fnmatch patterns over Failure.resource (any may match)
    sources: tuple[str, ...]  # fnmatch patterns over Failure.source (any may match)
    reason: str

    def covers(self, failure: Failure) -> bool:
        return (
            self.check == failure.check
            and any(fnmatch.fnmatchcase(failure.resource, p) for p in self.resources)
            and any(fnmatch.fnmatchcase(failure.source, p) for p in self.sources)
        )


def load_accepted(path: Path = ACCEPTED) -> list[Accepted]:
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    out = []
    for entry in entries:
        reason = str(entry.get("reason") or "").strip()
        if not reason:
            raise ValueError(f"{path}: {entry.get('check')}: every accepted check needs a reason")
        out.append(
            Accepted(
                check=str(entry["check"]),
                resources=_patterns(entry.get("resources", "*")),
                sources=_patterns(entry.get("sources", "*")),
                reason=reason,
            )
        )
    return out


def _patterns(value: object) -> tuple[str, ...]:
    return tuple(map(str, value)) if isinstance(value, list) else (str(value),)


def judge(
    failures: Iterable[Failure], accepted: Sequence[Accepted]
) -> tuple[list[Failure], list[Accepted]]:
    """(failures no entry accepts, entries that accept no failure)."""
    unaccepted: list[Failure] = []
    used: set[int] = set()
    for failure in failures:
        matches = [i for i, entry in enumerate(accepted) if entry.covers(failure)]
        if matches:
            used.update(matches)
        else:
            unaccepted.append(failure)
    stale = [entry for i, entry in enumerate(accepted) if i not in used]
    return unaccepted, stale


def golden_documents(directory: Path = GOLDEN) -> dict[str, str]:
    """Each golden file as plain multi-document YAML (the `items:` lists split)."""
    out = {}
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        out[path.name] = yaml.safe_dump_all(doc.get("items", [doc]), sort_keys=False)
    return out


def chart_documents(helm: str, profiles: Path = PROFILES) -> dict[str, str]:
    out = {}
    for profile in sorted(profiles.glob("*.yaml")):
        command = [helm, "template", "leadops", str(CHART), "--namespace", "leadops-system"]
        done = subprocess.run(
            [*command, "--values", str(profile)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"helm template with {profile.name}: {done.stderr.strip()}")
        out[f"chart-{profile.stem}.yaml"] = done.stdout
    return out


def failures_of(report: Any) -> list[Failure]:
    """The failed checks of checkov's JSON report (one framework: a dict; several: a list)."""
    out = []
    for part in report if isinstance(report, list) else [report]:
        for failed in (part.get("results") or {}).get("failed_checks") or []:
            name = Path(str(failed["file_path"])).name
            source = f"chart:{name[6:-5]}" if name.startswith("chart-") else f"golden:{name}"
            # A Pod resource id carries its labels after the name: keep Kind.namespace.name.
            resource = ".".join(str(failed["resource"]).split(".")[:3])
            out.append(Failure(failed["check_id"], resource, source, failed["check_name"]))
    return out


def scan(checkov: str, helm: str) -> list[Failure]:
    with tempfile.TemporaryDirectory(prefix="leadops-scan-") as tmp:
        for name, text in {**chart_documents(helm), **golden_documents()}.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        command = [checkov, "--directory", tmp, "--framework", "kubernetes", "--output", "json"]
        done = subprocess.run(
            [*command, "--quiet", "--compact", "--skip-download"],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"checkov failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return failures_of(json.loads(done.stdout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.scan.policy")
    parser.add_argument("--checkov", required=True, help="the checkov program")
    parser.add_argument("--helm", default="helm", help="the helm program")
    args = parser.parse_args(argv)
    failures = scan(args.checkov, args.helm)
    unaccepted, stale = judge(failures, load_accepted())
    for failure in unaccepted:
        print(
            f"scan: {failure.check} {failure.resource} ({failure.source}): {failure.title}",
            file=sys.stderr,
        )
    for entry in stale:
        print(
            f"scan: accepted {entry.check} {entry.resources} ({entry.sources}) no longer fails: "
            f"remove it from {ACCEPTED.relative_to(ROOT)}",
            file=sys.stderr,
        )
    sources = len({f.source for f in failures})
    print(
        f"scan: {len(failures)} failed checks, all accepted"
        if not unaccepted and not stale
        else f"scan: {len(unaccepted)} not accepted, {len(stale)} stale entries",
        f"(checkov over the chart's profiles and the golden children, {sources} sources failing)",
    )
    return 1 if unaccepted or stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
