"""`leadops inspect model.json [--json]`: version, metrics, card and digest/signature status.

The digest is always verified (a mismatch is exit 2 with the reason). The signature is verified
when a key is given (`--verify-key-file`, or env LEADOPS_VERIFY_KEY[_FILE]); without one it is
shown as present but unverified.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from leadops import cliutil
from leadops.contract.artifact import Artifact, ArtifactError, load_artifact, verify_keys_from_env


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops inspect", description="Show a model artifact's version, metrics and card."
    )
    parser.add_argument("artifact", help="path to model.json")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--verify-key-file", help="ed25519 public key PEM or HMAC secret file")
    return parser


def _signature_status(artifact: Artifact, *, verified: bool) -> str:
    sig = artifact.signature
    if sig is None:
        return "unsigned"
    who = f" key {sig.key_id}" if sig.key_id else ""
    return f"{sig.algorithm}{who}: " + (
        "verified" if verified else "present, not verified (no key)"
    )


def summary(artifact: Artifact, *, verified: bool) -> dict[str, Any]:
    """What `inspect --json` prints."""
    now = datetime.now(UTC).timestamp()
    return {
        "version": artifact.version,
        "version_date": datetime.fromtimestamp(artifact.version, UTC).isoformat(),
        "age_hours": round((now - artifact.version) / 3600, 2),
        "metrics": artifact.metrics.model_dump(mode="json"),
        "training": artifact.training.model_dump(
            mode="json", include={"window_start", "window_end", "source", "label", "holdout"}
        ),
        "data_digest": artifact.training.data_digest,
        "digest": artifact.digest,
        "digest_status": "ok",
        "signature": _signature_status(artifact, verified=verified),
        "features": len(artifact.features.feature_names),
        "excluded": {e.column: e.reason for e in artifact.features.excluded},
        "card": artifact.card.model_dump(mode="json"),
    }


def render(artifact: Artifact, *, verified: bool) -> str:
    """A readable table."""
    m = artifact.metrics
    t = artifact.training
    when = datetime.fromtimestamp(artifact.version, UTC)
    rows = [
        ("version", f"{artifact.version} ({when:%Y-%m-%d %H:%M:%S}Z)"),
        ("auc", f"{m.auc:.4f}  (95% CI {m.auc_ci95[0]:.4f}-{m.auc_ci95[1]:.4f})"),
        ("logloss", f"{m.logloss:.4f}"),
        ("n_train / n_test", f"{m.n_train} / {m.n_test}"),
        ("positive_rate", f"{m.positive_rate:.3f}"),
        (
            "hold-out",
            f"{t.holdout}" + (f" on {t.timestamp_column!r}" if t.timestamp_column else ""),
        ),
        ("training window", artifact.card.training_window),
        ("label", t.label),
        ("source", t.source),
        ("data digest", t.data_digest),
        ("digest", f"{artifact.digest}  ok"),
        ("signature", _signature_status(artifact, verified=verified)),
        (
            "features",
            f"{len(artifact.features.feature_names)} from {len(artifact.features.columns)} columns",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    if artifact.features.excluded:
        lines.append("")
        lines.append("excluded columns:")
        lines += [f"  {e.column:<30} {e.reason}: {e.detail}" for e in artifact.features.excluded]
    if artifact.card.leakage:
        lines.append("")
        lines.append("possible leaks (columns that look too good):")
        lines += [f"  {s.column:<30} {s.why}" for s in artifact.card.leakage]
    lines.append("")
    lines.append("top features (share of gain):")
    lines += [f"  {f.importance:6.1%}  {f.name}" for f in artifact.card.features[:10]]
    fairness = artifact.card.fairness
    if fairness.segments:
        lines.append("")
        lines.append(f"AUC by {fairness.segment_column!r} (hold-out):")
        for seg in fairness.segments[:12]:
            auc = "   n/a" if seg.auc is None else f"{seg.auc:.4f}"
            lines.append(f"  {auc}  n={seg.n:<6} rate={seg.positive_rate:.3f}  {seg.value}")
    lines.append("")
    lines.append("notes:")
    lines += [f"  - {note}" for note in fairness.notes + artifact.card.limitations]
    lines.append(f"  - intended use: {artifact.card.intended_use}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.verify_key_file:
            keys = verify_keys_from_env({"LEADOPS_VERIFY_KEY_FILE": args.verify_key_file})
        else:
            keys = verify_keys_from_env()
        artifact = load_artifact(args.artifact, keys=keys)
    except ArtifactError as exc:
        return cliutil.fail(f"inspect: {args.artifact}: {exc}")
    verified = keys is not None
    if args.json:
        print(json.dumps(summary(artifact, verified=verified), indent=2))
    else:
        print(render(artifact, verified=verified))
    return cliutil.EXIT_OK
