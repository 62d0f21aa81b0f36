"""The CLI's pure parts: the status table and Jobs made from CronJobs."""

from __future__ import annotations

from typing import Any

from leadops.operator import builders, cli

from .test_builders import FULL, OWNER


def test_status_table_columns_line_up() -> None:
    items: list[dict[str, Any]] = [
        {
            "metadata": {"namespace": "sales", "name": "acme"},
            "spec": {"modelVersion": "1730483820"},
            "status": {
                "awaitingPromotion": "1730490000",
                "servingVersion": "1730483820",
                "auc": "0.78",
                "health": "ok",
                "driftScore": "1.2",
                "lastRollout": "2026-11-26T12:00:00Z",
                "conditions": [{"type": "Ready", "status": "True", "reason": "Serving"}],
            },
        },
        {"metadata": {"namespace": "sales", "name": "b"}, "status": {}},
    ]
    lines = cli.render_table(cli.status_rows(items)).splitlines()
    assert lines[0].split() == [*cli.COLUMNS[:9], "LAST", "ROLLOUT"]
    assert lines[1].split() == [
        "sales", "acme", "1730483820", "0.78", "ok", "1.2", "True/Serving", "1730483820",
        "1730490000", "2026-11-26T12:00:00Z",
    ]  # fmt: skip
    assert lines[2].split() == ["sales", "b", "-", "-", "-", "-", "-", "-", "-", "-"]
    assert lines[0].index("SERVING") == lines[1].index("1730483820")


def test_job_from_cronjob_is_owned_and_dry_run_adds_the_flag() -> None:
    cron = builders.backfill_cronjob(OWNER, FULL.model_copy(update={}))
    cron["metadata"]["uid"] = "cron-uid"
    job = builders.job_from_cronjob(cron, dry_run=True)
    assert "name" not in job["metadata"]
    assert job["metadata"]["generateName"] == "acme-pii-backfill-manual-"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "cron-uid"
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args.count("--dry-run") == 1  # FULL already runs dry; never twice
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == args
    train = builders.training_cronjob(OWNER, FULL)
    train["metadata"]["uid"] = "u"
    plain = builders.job_from_cronjob(train, dry_run=False)
    assert "args" not in plain["spec"]["template"]["spec"]["containers"][0]
