"""spec.retention on the real control plane: the apiserver defaults it, the operator passes it
to the scorer's env, and a retention below the longest window that reads leads is refused as
Ready=False/InvalidSpec with a Warning Event, the scorer left as it was."""

from __future__ import annotations

import pytest
from kopf.testing import KopfRunner

from leadops.operator import kube
from tests.integration.test_operator import (
    NAME,
    api,  # noqa: F401 (fixture)
    condition,
    crd_installed,  # noqa: F401 (fixture)
    events,
    get_lm,
    leadmodel,
    running,  # noqa: F401 (fixture)
    scorer_env,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


def test_retention_reaches_the_scorer_and_too_short_a_retention_is_refused(
    api: kube.Kube,  # noqa: F811 (fixture)
    k8s_namespace: str,
    running: KopfRunner,  # noqa: F811 (fixture)
) -> None:
    ns = k8s_namespace
    api.create(leadmodel(ns))
    env = wait_for(lambda: scorer_env(api, ns), what="scorer Deployment")
    assert (env["LEADOPS_RETENTION_DAYS"], env["LEADOPS_OUTCOME_RETENTION_DAYS"]) == ("90", "365")
    assert get_lm(api, ns)["spec"]["retention"] == {"leadDays": 90, "outcomeDays": 365}

    api.patch("LeadModel", ns, NAME, {"spec": {"retention": {"leadDays": 30, "outcomeDays": 400}}})
    wait_for(
        lambda: scorer_env(api, ns).get("LEADOPS_RETENTION_DAYS") == "30",
        what="the new retention in the scorer env",
    )
    assert scorer_env(api, ns)["LEADOPS_OUTCOME_RETENTION_DAYS"] == "400"

    # Below outcomes.windowDays (21 here): InvalidSpec, the scorer keeps its retention.
    api.patch(
        "LeadModel",
        ns,
        NAME,
        {"spec": {"outcomes": {"windowDays": 21}, "retention": {"leadDays": 7}}},
    )
    ready = wait_for(
        lambda: (c := condition(api, ns, "Ready")).get("reason") == "InvalidSpec" and c,
        what="InvalidSpec",
    )
    assert "retention.leadDays 7 is below 21" in ready["message"]
    assert "outcomes.windowDays" in ready["message"]
    assert ready["observedGeneration"] == get_lm(api, ns)["metadata"]["generation"]
    (event, *_) = wait_for(lambda: events(api, ns, "InvalidSpec"), what="Warning Event")
    assert event["type"] == "Warning"
    assert "retention.leadDays" in event["message"]
    assert scorer_env(api, ns)["LEADOPS_RETENTION_DAYS"] == "30"
