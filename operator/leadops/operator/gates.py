"""The quality bar as a chain of pure checks: facts about a candidate in, a verdict out.

Each gate returns None (pass) or a `Judgement` naming the first problem with a CamelCase reason.
The order is the order a person would check: can we trust the bytes, can the scorer use
the features, is the model good enough, is the data sane, is it fresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from leadops.operator import reasons
from leadops.operator.artifact_facts import ArtifactFacts
from leadops.operator.spec import Gates, SignaturePolicy, Verdict


@dataclass(frozen=True)
class GateInput:
    facts: ArtifactFacts
    gates: Gates
    now: datetime
    signing_key_configured: bool = False


@dataclass(frozen=True)
class Judgement:
    """The chain's answer: the status' `Verdict` (Passed/Rejected) and the reason for it."""

    verdict: Verdict
    reason: str
    message: str

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED


# Said on every pass without a signing key, so nobody mistakes the gates for authentication.
UNSIGNED_WARNING = (
    "no signing key is configured (spec.signing.keySecretRef), so anyone who can write "
    "ConfigMaps in this namespace can publish a version"
)


Gate = Callable[[GateInput], Judgement | None]


def _reject(reason: str, message: str) -> Judgement:
    return Judgement(Verdict.REJECTED, reason, message)


def integrity(inp: GateInput) -> Judgement | None:
    """Digest and signature: a refused load names its own reason (DigestMismatch, ...)."""
    f = inp.facts
    if f.load_error is not None:
        return _reject(f.load_error, f.load_message or f"artifact {f.version} was refused")
    # A configured key means only signed artifacts pass, whatever the policy: otherwise anyone
    # who can write a labelled ConfigMap publishes a version whose metrics they wrote.
    if inp.gates.signature is SignaturePolicy.REQUIRED or inp.signing_key_configured:
        if not f.signed:
            return _reject(reasons.SIGNATURE_MISSING, f"artifact {f.version} is not signed")
        if not inp.signing_key_configured or not f.signature_verified:
            return _reject(
                reasons.SIGNATURE_INVALID, f"artifact {f.version} signature could not be verified"
            )
    return None


def feature_spec(inp: GateInput) -> Judgement | None:
    problem = inp.facts.feature_spec_problem
    if problem is not None:
        return _reject(reasons.FEATURE_SPEC_INCOMPATIBLE, problem)
    return None


def auc(inp: GateInput) -> Judgement | None:
    value, bar = inp.facts.auc, inp.gates.min_auc_value
    if value is None:
        return _reject(reasons.AUC_BELOW_THRESHOLD, "artifact has no AUC")
    if value < bar:
        return _reject(reasons.AUC_BELOW_THRESHOLD, f"AUC {value} is below minAuc {bar}")
    return None


def train_samples(inp: GateInput) -> Judgement | None:
    n, bar = inp.facts.n_train, inp.gates.min_train_samples
    if n < bar:
        return _reject(
            reasons.TOO_FEW_TRAIN_SAMPLES, f"trained on {n} leads, minTrainSamples is {bar}"
        )
    return None


def positive_rate(inp: GateInput) -> Judgement | None:
    rate, bar = inp.facts.positive_rate, inp.gates.max_positive_rate_value
    if rate is not None and rate > bar:
        return _reject(
            reasons.POSITIVE_RATE_TOO_HIGH, f"positive rate {rate} is above maxPositiveRate {bar}"
        )
    return None


def age(inp: GateInput) -> Judgement | None:
    created = inp.facts.created_at or datetime.fromtimestamp(inp.facts.version, tz=UTC)
    hours = Decimal((inp.now - created).total_seconds()) / 3600
    if hours > inp.gates.max_age_hours:
        return _reject(
            reasons.ARTIFACT_TOO_OLD,
            f"artifact is {hours:.1f} h old, maxAgeHours is {inp.gates.max_age_hours}",
        )
    return None


CHAIN: tuple[Gate, ...] = (integrity, feature_spec, auc, train_samples, positive_rate, age)
# A version a person pins (an emergency rollback) may be older than maxAgeHours.
PINNED_CHAIN: tuple[Gate, ...] = (integrity, feature_spec, auc, train_samples, positive_rate)


def evaluate(inp: GateInput, *, chain: tuple[Gate, ...] = CHAIN) -> Judgement:
    """Run the chain; the first failing gate decides."""
    for gate in chain:
        verdict = gate(inp)
        if verdict is not None:
            return verdict
    f = inp.facts
    message = f"version {f.version} passed: AUC {f.auc}, {f.n_train} training leads"
    if not inp.signing_key_configured:
        message += f"; {UNSIGNED_WARNING}"
    return Judgement(Verdict.PASSED, reason=reasons.GATES_PASSED, message=message)
