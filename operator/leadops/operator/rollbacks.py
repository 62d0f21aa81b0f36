"""A person's rollback and allow-again, decided purely (the CLI in `cli.py` does the I/O).

`leadops rollback` pins `spec.modelVersion` to an older version and marks the version it
leaves rolled back: the same mark an automatic rollback sets, so the version stays out of
"newest passing" (an unpin does not bring it back) until `leadops allow` removes the mark.
It never goes to a version that was rolled back. A plain pin (in Git) marks nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from leadops.operator import reasons, registry
from leadops.operator.registry import Entry

# Why, in a person's words, kept to one line of this many characters at most.
MESSAGE_LIMIT = 512
NO_REASON = "no reason given"


class Refused(Exception):
    """The rollback or allow asked for cannot be done; the message says why and what to do."""


def _marked(entry: Entry) -> str:
    by = f" by {entry.rolled_back_by}" if entry.rolled_back_by else ""
    return f"{entry.rollback_reason or 'rolled back'}{by} at {entry.rolled_back_at}"


def target(
    entries: Sequence[Entry],
    *,
    leadmodel: str,
    serving: int | None,
    previous: int | None,
    wanted: int | None,
) -> int:
    """The version to roll back to: `wanted`, else the previous one, else the newest older one;
    never a version that was rolled back, never the serving one."""
    by_version = {e.version: e for e in entries}
    if wanted is not None:
        entry = by_version.get(wanted)
        if entry is None:
            newest = ", ".join(str(v) for v in sorted(by_version, reverse=True)[:5]) or "none"
            raise Refused(f"version {wanted} is not in the registry (newest: {newest})")
        if entry.rolled_back:
            raise Refused(
                f"version {wanted} was rolled back ({_marked(entry)}); allow it again first: "
                f"leadops allow {leadmodel} {wanted}"
            )
        if wanted == serving:
            raise Refused(f"version {wanted} is already serving")
        return wanted
    before = by_version.get(previous) if previous is not None else None
    if before is not None and not before.rolled_back and before.version != serving:
        return before.version
    older = [
        e.version
        for e in entries
        if not e.rolled_back and e.version != serving and (serving is None or e.version < serving)
    ]
    if not older:
        raise Refused(
            "no older version in the registry that was not rolled back; name one with --to VERSION"
        )
    return max(older)


def mark(*, who: str, why: str, now: str) -> dict[str, str]:
    """The rolled-back mark a person's rollback puts on the version it leaves."""
    words = " ".join(why.split())[:MESSAGE_LIMIT] or NO_REASON
    return {
        registry.ANN_ROLLED_BACK_AT: now,
        registry.ANN_ROLLBACK_REASON: reasons.MANUAL_ROLLBACK,
        registry.ANN_ROLLED_BACK_BY: who,
        registry.ANN_ROLLBACK_MESSAGE: words,
    }


def unmark() -> dict[str, None]:
    """A JSON merge patch's annotations that remove the rolled-back mark (`leadops allow`)."""
    return dict.fromkeys(registry.ROLLBACK_MARK)
