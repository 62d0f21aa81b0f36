"""A person's rollback as a table: which version `leadops rollback` goes to, and the mark it
leaves (the plan's side, that a marked version stays out until allowed, is in test_plan)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from leadops.operator import plan, reasons, registry, rollbacks
from leadops.operator.actions import MarkVersion, RollOut

from .worlds import NOW, V1, V2, V3, deployed, entry, spec, world

V0 = V1 - 3600


def marked(version: int) -> registry.Entry:
    return replace(entry(version, rolled_back="2026-11-26T11:00:00Z"), rollback_reason="X")


# (name, entries, serving, previous, --to, expected version or words of the refusal)
TABLE = [
    ("previous by default", [entry(V1), entry(V2)], V2, V1, None, V1),
    (
        "a rolled-back previous is skipped: the newest older unmarked instead",
        [entry(V0), marked(V1), entry(V2)], V2, V1, None, V0,
    ),
    (
        "twice in a row never flips back to the version the first one left",
        [entry(V0), entry(V1), marked(V2)], V1, V2, None, V0,
    ),
    (
        "nothing older that was not rolled back: refused",
        [entry(V1), marked(V2)], V1, V2, None, "no older version",
    ),
    ("--to an unmarked version", [entry(V0), entry(V1), entry(V2)], V2, V1, V0, V0),
    (
        "--to a rolled-back version: refused, naming the way to allow it",
        [entry(V1), marked(V2), entry(V3)], V3, V2, V2, f"leadops allow lm {V2}",
    ),
    ("--to a version not in the registry", [entry(V1)], V1, None, 42, "not in the registry"),
    ("--to the serving version", [entry(V1), entry(V2)], V2, V1, V2, "already serving"),
]  # fmt: skip


Row = tuple[str, list[registry.Entry], int, int | None, int | None, int | str]


@pytest.mark.parametrize("row", TABLE, ids=[t[0] for t in TABLE])
def test_rollback_target(row: Row) -> None:
    _, entries, serving, previous, wanted, want = row

    def choose() -> int:
        return rollbacks.target(
            entries, leadmodel="lm", serving=serving, previous=previous, wanted=wanted
        )

    if isinstance(want, int):
        assert choose() == want
    else:
        with pytest.raises(rollbacks.Refused, match=want):
            choose()


def test_the_mark_says_who_and_why_on_one_line_and_allow_removes_all_of_it() -> None:
    mark = rollbacks.mark(who="alice", why="  bad\nscores  for acme ", now="2026-11-26T12:00:00Z")
    assert mark == {
        registry.ANN_ROLLED_BACK_AT: "2026-11-26T12:00:00Z",
        registry.ANN_ROLLBACK_REASON: reasons.MANUAL_ROLLBACK,
        registry.ANN_ROLLED_BACK_BY: "alice",
        registry.ANN_ROLLBACK_MESSAGE: "bad scores for acme",
    }
    assert rollbacks.mark(who="a", why="", now="t")[registry.ANN_ROLLBACK_MESSAGE] == (
        rollbacks.NO_REASON
    )
    assert set(rollbacks.unmark()) == set(mark)
    assert set(rollbacks.unmark().values()) == {None}


def _person_marked(version: int) -> registry.Entry:
    cm = registry.entry_of(
        {
            "metadata": {
                "name": registry.configmap_name("lm", version),
                "labels": {registry.MODEL_VERSION: str(version)},
                "annotations": rollbacks.mark(
                    who="alice", why="bad scores", now="2026-11-26T11:30:00Z"
                )
                | {registry.ANN_PROMOTED_AT: "2026-11-26T10:00:00Z"},
            }
        }
    )
    return replace(cm, facts=entry(version).facts, created_at=entry(version).created_at)


def test_after_rollback_and_unpin_the_marked_version_stays_out_and_history_says_who_and_why() -> (
    None
):
    # Rolled back by a person from V2 to V1, then unpinned: V2 must not come back.
    obs = world(
        entry(V1, promoted="2026-11-26T11:30:00Z"),
        _person_marked(V2),
        deployment=deployed(V1, previous=V2),
    )
    p = plan.plan(spec(), obs, NOW)
    assert not p.of(RollOut)
    assert p.status.serving_version == str(V1)
    (left,) = [h for h in p.status.history if h.version == str(V2)]
    assert (left.reason, left.rolled_back_by, left.message) == (
        reasons.MANUAL_ROLLBACK, "alice", "bad scores",
    )  # fmt: skip
    # Under Manual promotion it is no candidate awaiting promotion either.
    assert plan.plan(spec(promotion="Manual"), obs, NOW).status.awaiting_promotion == ""
    # Allowed again (mark removed): it is the newest passing version, and rolls out.
    allowed = world(
        entry(V1, promoted="2026-11-26T11:30:00Z"),
        entry(V2, promoted="2026-11-26T10:00:00Z"),
        deployment=deployed(V1, previous=V2),
    )
    again = plan.plan(spec(), allowed, NOW)
    assert [(a.version, a.previous) for a in again.of(RollOut)] == [(V2, V1)]


def test_a_plain_pin_marks_nothing_so_an_unpin_rolls_forward_again() -> None:
    pinned = world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1))
    p = plan.plan(spec(modelVersion=str(V1)), pinned, NOW)
    marks = p.of(MarkVersion)
    assert all(registry.ANN_ROLLED_BACK_AT not in m.annotations for m in marks)
    unpinned = world(entry(V1), entry(V2), deployment=deployed(V1, previous=V2))
    back = plan.plan(spec(), unpinned, NOW)
    assert [a.version for a in back.of(RollOut)] == [V2]


def test_an_automatic_rollback_says_the_operator_did_it_and_why() -> None:
    obs = world(entry(V1), entry(V2), deployment=deployed(V2, previous=V1, deadline=True))
    p = plan.plan(spec(), obs, NOW)
    (mark,) = p.of(MarkVersion)
    assert mark.annotations[registry.ANN_ROLLED_BACK_BY] == plan.OPERATOR_NAME
    assert f"version {V2}" in mark.annotations[registry.ANN_ROLLBACK_MESSAGE]
