"""The scorer schedules follow-ups (LEADOPS_FOLLOWUPS_CONFIG): a real `leadops serve` over HTTP
and a real redis-server. A scored lead with a phone or e-mail gets its job on the queue with
its band's channel and delay (or its variant's `followUpDelayMinutes`), its contact sealed in
the vault and nowhere else in Redis, the metrics or the log; a full buffer drops follow-ups,
counted, while every lead is answered 200; the worker then sends one to the twin, and a
signed reply to it shows in the experiment export (a reply as the primary metric)."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from leadops.followups import config as followups_config
from leadops.followups import keys
from leadops.followups.keys import Keys
from leadops.followups.queue import Job
from leadops.followups.vault import Contact
from leadops.followups.webhooks import create_app
from tests.fixtures.artifacts import Built
from tests.fixtures.followups import Stack, WebhookServer, config_data, load_config, tenant_spec
from tests.fixtures.metrics import metric_value
from tests.fixtures.planted import leaks, stored_outside_the_vault
from tests.fixtures.provider_twins import ACCOUNT_SID, Twin
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.scorer import KEY_SALT, ScorerServer, StartScorer

pytestmark = pytest.mark.redis

TENANT = "default"  # the open-ingest tenant
RULES: list[dict[str, Any]] = [
    {"minScore": "0.5", "channel": "sms", "template": "hot", "delayMinutes": 5},
    {"minScore": "0.0", "channel": "email", "template": "warm", "delayMinutes": 720},
]
HOT = {"details": "Hi, price quote demo buy budget for our team please", "source": "referral",
       "attributes": {"visits": 20.0, "plan": "team"}}  # fmt: skip
COLD = {"details": "Hi, browsing later curious for our team please", "source": "ads",
        "attributes": {"visits": 0.0, "plan": "basic"}}  # fmt: skip
KEYS = Keys(KEY_SALT)


def _person(i: int) -> dict[str, str]:
    return {"name": f"Plantedname{i}", "phone": f"+1415555{i:04d}",
            "email": f"planted.person{i}@corpus.example"}  # fmt: skip


def _config(tmp_path: Path, twin: Twin, *, rules: list[dict[str, Any]] = RULES) -> Path:
    path = tmp_path / "followups.json"
    load_config(config_data({TENANT: tenant_spec(tmp_path, twin, name=TENANT, rules=rules)}), path)
    return path


def _jobs(client: redis.Redis) -> dict[str, tuple[Job, float | None]]:
    """Every queued job by lead reference, with its due time when scheduled (None: on the
    stream, due now)."""
    out: dict[str, tuple[Job, float | None]] = {}
    any_client: Any = client  # redis-py's return types are unions of every decode mode
    for member, due in any_client.zrange(keys.SCHEDULED, 0, -1, withscores=True):
        job = Job.decode(member.decode())
        out[job.lead] = (job, due)
    for _id, fields in any_client.xrange(keys.STREAM):
        job = Job.decode(fields[b"job"].decode())
        out[job.lead] = (job, None)
    return out


def _await(condition: Callable[[], bool], *, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _metrics(server: ScorerServer) -> str:
    with server.client() as http:
        return http.get("/metrics").text


def _count(text: str, name: str, **labels: str) -> float:
    try:
        return metric_value(text, name, labels)
    except KeyError:
        return 0.0


def _score(http: httpx.Client, lead: dict[str, Any]) -> dict[str, Any]:
    answer = http.post("/v1/lead", json=lead)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_scored_leads_get_their_bands_follow_up_and_the_contact_only_in_the_vault(
    start_scorer: StartScorer,
    good_model: Built,
    redis_url: str,
    tmp_path: Path,
    provider_twin: Twin,
) -> None:
    config_path = _config(tmp_path, provider_twin)
    server = start_scorer(
        model=good_model.path, redis_url=redis_url, followups_config=str(config_path)
    )
    answers: list[tuple[dict[str, Any], dict[str, str], float]] = []
    with server.client(api_key=None) as http:
        for i in range(8):
            person = _person(i)
            before = time.time()
            answers.append((_score(http, (HOT if i % 2 else COLD) | person), person, before))
        # No contact, no follow-up: counted, nothing queued.
        _score(http, HOT)
    client = redis.Redis.from_url(redis_url)
    _await(lambda: len(_jobs(client)) == len(answers))
    jobs = _jobs(client)
    stack = Stack(client, followups_config.load(config_path), KEYS)
    bands = set()
    for answer, person, before in answers:
        job, due = jobs[KEYS.lead_ref(TENANT, answer["lead_id"])]
        rule = RULES[0] if answer["score"] >= 0.5 else RULES[1]
        bands.add(rule["channel"])
        assert (job.channel, job.template, job.score) == (
            rule["channel"], rule["template"], answer["score"],
        )  # fmt: skip
        assert due is not None
        delay = rule["delayMinutes"] * 60
        assert before + delay - 1 <= due <= time.time() + delay
        # The vault holds the contact as sent, sealed; the lead's record holds none of it.
        sealed = client.get(Keys.contact(TENANT, job.lead))
        assert isinstance(sealed, bytes)
        assert person["phone"].encode() not in sealed
        assert stack.vault.get(TENANT, job.lead) == Contact(
            phone=person["phone"], email=person["email"], name=person["name"]
        )
    assert bands == {"sms", "email"}, "the leads should reach both bands"
    needles = [
        part.encode()
        for _, person, _ in answers
        for part in (person["phone"], person["phone"][-7:], person["email"], person["name"])
    ]
    stored = b"\n".join(stored_outside_the_vault(client))
    text = _metrics(server)
    assert _count(text, "leadops_followups_scheduled_total", channel="sms") == sum(
        1 for answer, _, _ in answers if answer["score"] >= 0.5
    )
    assert _count(text, "leadops_followups_skipped_total", reason="no_contact") == 1
    assert leaks(needles, stored=stored, metrics=text.encode(), log=server.log().encode()) == []


EXPERIMENT = {
    "name": "fast-follow-up",
    "variants": [
        {"name": "control", "weight": 50},
        {"name": "fast", "weight": 50, "flags": {"followUpDelayMinutes": "1"}},
    ],
}


def test_a_variants_follow_up_delay_replaces_the_rules(
    start_scorer: StartScorer,
    good_model: Built,
    redis_url: str,
    tmp_path: Path,
    provider_twin: Twin,
) -> None:
    server = start_scorer(
        model=good_model.path,
        redis_url=redis_url,
        followups_config=str(_config(tmp_path, provider_twin)),
        experiment=json.dumps(EXPERIMENT),
    )
    answers = []
    with server.client(api_key=None) as http:
        for i in range(16):
            answers.append((_score(http, HOT | _person(i)), time.time()))
    client = redis.Redis.from_url(redis_url)
    _await(lambda: len(_jobs(client)) == len(answers))
    jobs = _jobs(client)
    variants = set()
    for answer, after in answers:
        _, due = jobs[KEYS.lead_ref(TENANT, answer["lead_id"])]
        variants.add(answer["experiment"]["variant"])
        flag = answer["experiment"]["flags"].get("followUpDelayMinutes")
        rule = RULES[0] if answer["score"] >= 0.5 else RULES[1]
        minutes = int(flag) if flag is not None else rule["delayMinutes"]
        assert due is not None
        assert after + minutes * 60 - 2 <= due <= after + minutes * 60
    assert variants == {"control", "fast"}, "16 leads should reach both variants"


@pytest.mark.usefixtures("redis_url")  # an empty database
def test_a_full_buffer_drops_follow_ups_counted_and_never_the_lead(
    start_scorer: StartScorer,
    good_model: Built,
    redis_server: RedisServer,
    tmp_path: Path,
    provider_twin: Twin,
) -> None:
    server = start_scorer(
        model=good_model.path,
        redis_url=redis_server.url,
        followups_config=str(_config(tmp_path, provider_twin)),
        followups_queue_capacity="1",
        durability="bestEffort",  # the leads are answered while Redis hangs
    )

    def outcomes() -> tuple[float, float, float]:
        text = _metrics(server)
        scheduled = sum(
            _count(text, "leadops_followups_scheduled_total", channel=c) for c in ("sms", "email")
        )
        return (
            scheduled,
            _count(text, "leadops_followups_dropped_total", reason="store_error"),
            _count(text, "leadops_followups_dropped_total", reason="queue_full"),
        )

    sent = 6
    redis_server.pause()  # the writer's first batch hangs until its timeout; the buffer fills
    try:
        with server.client(api_key=None) as http:
            for i in range(sent):
                _score(http, HOT | _person(i))
        _await(lambda: outcomes()[1] >= 1)  # the hung batch timed out: dropped, counted
    finally:
        redis_server.resume()
    _await(lambda: sum(outcomes()) == sent)
    scheduled, _, queue_full = outcomes()
    assert queue_full >= 1
    assert len(_jobs(redis.Redis.from_url(redis_server.url))) == scheduled


def test_the_worker_sends_what_the_scorer_scheduled(
    start_scorer: StartScorer,
    good_model: Built,
    redis_url: str,
    tmp_path: Path,
    provider_twin: Twin,
) -> None:
    rules = [{"minScore": "0.0", "channel": "sms", "template": "hot"}]  # due at once
    config_path = _config(tmp_path, provider_twin, rules=rules)
    server = start_scorer(
        model=good_model.path, redis_url=redis_url, followups_config=str(config_path)
    )
    with server.client(api_key=None) as http:
        _score(http, HOT | _person(7))
    client = redis.Redis.from_url(redis_url)
    _await(lambda: len(_jobs(client)) == 1)
    stack = Stack(client, followups_config.load(config_path), KEYS)
    stack.drain(until=lambda: provider_twin.accepted, seconds=10)
    [message] = provider_twin.accepted
    assert (message.to, message.body) == (
        _person(7)["phone"],
        "Hi Plantedname7, thanks for your interest!",
    )


# Both variants follow up at once (the fast one by its flag of 0 minutes).
NOW_EXPERIMENT = {
    "name": "follow-up-now",
    "variants": [
        {"name": "control", "weight": 50},
        {"name": "fast", "weight": 50, "flags": {"followUpDelayMinutes": "0"}},
    ],
}


def test_a_reply_to_the_follow_up_shows_in_the_experiment_export(
    start_scorer: StartScorer,
    good_model: Built,
    redis_url: str,
    tmp_path: Path,
    provider_twin: Twin,
) -> None:
    client = redis.Redis.from_url(redis_url)
    app_holder: dict[str, Any] = {}

    async def late_app(scope: Any, receive: Any, send: Any) -> None:
        await app_holder["app"](scope, receive, send)

    with WebhookServer(late_app) as hooks:
        rules = [{"minScore": "0.0", "channel": "sms", "template": "hot"}]  # due at once
        spec = tenant_spec(tmp_path, provider_twin, name=TENANT, rules=rules)
        config_path = tmp_path / "followups.json"
        config = load_config(config_data({TENANT: spec}, statusCallbackBase=hooks.url), config_path)
        app_holder["app"] = create_app(config, client, KEYS)
        server = start_scorer(
            model=good_model.path,
            redis_url=redis_url,
            followups_config=str(config_path),
            experiment=json.dumps(NOW_EXPERIMENT),
        )
        with server.client(api_key=None) as http:
            replying, silent = (_score(http, HOT | _person(i))["lead_id"] for i in (1, 2))
        _await(lambda: len(_jobs(client)) == 2)
        Stack(client, config, KEYS).drain(until=lambda: len(provider_twin.accepted) >= 2)
        assert len(provider_twin.accepted) == 2
        reply = {"AccountSid": ACCOUNT_SID, "From": _person(1)["phone"], "To": "+15005550006",
                 "Body": "Yes, call me tomorrow", "MessageSid": "SM" + "3" * 32,
                 "SmsStatus": "received"}  # fmt: skip
        inbound = f"{hooks.url}/v1/webhooks/twilio/{TENANT}"
        assert provider_twin.post_callbacks([(inbound, reply)]) == [200]
        with server.client() as http:
            export = http.get("/ops/export/experiment.csv")
    assert export.status_code == 200, export.text
    rows = {row["lead_id"]: row for row in csv.DictReader(io.StringIO(export.text))}
    assert float(rows[replying]["replied_at"]) >= float(rows[replying]["scored_at"])
    assert rows[silent]["replied_at"] == ""
