"""Every condition type and CamelCase reason the operator uses, in one place.

Event reasons are the same strings as the condition reasons they accompany, so
`kubectl get events --field-selector reason=AucBelowThreshold` finds what `kubectl describe` shows.
"""

from __future__ import annotations

from typing import Final

# Condition types
READY: Final = "Ready"
TRAINED: Final = "Trained"
VALIDATED: Final = "Validated"
ROLLED_OUT: Final = "RolledOut"
DEGRADED: Final = "Degraded"
EXPERIMENT: Final = "Experiment"
PII_COMPLIANT: Final = "PiiCompliant"
REPLAYED: Final = "Replayed"
CONDITION_TYPES: Final = (
    READY,
    TRAINED,
    VALIDATED,
    ROLLED_OUT,
    DEGRADED,
    PII_COMPLIANT,
    REPLAYED,
    EXPERIMENT,
)

# Experiment (True while it runs); Events: Experiment<Phase> on every new verdict.
EXPERIMENT_RUNNING: Final = "Running"
EXPERIMENT_NOT_YET_EVALUATED: Final = "NotYetEvaluated"
EXPERIMENT_PINNED: Final = "Pinned"
EXPERIMENT_ABORTED_BY_USER: Final = "AbortedByUser"
EXPERIMENT_PROMOTED_BY_USER: Final = "PromotedByUser"
EXPERIMENT_UNKNOWN_VARIANT_MODEL: Final = "UnknownVariantModel"
EXPERIMENT_VARIANT_MODEL_REJECTED: Final = "VariantModelRejected"

# Ready
SERVING: Final = "Serving"
INVALID_SPEC: Final = "InvalidSpec"
# A Secret (or its key) the spec names does not exist: nothing is rolled out until it does.
MISSING_SECRET: Final = "MissingSecret"  # noqa: S105 (a reason, not a secret)
UNKNOWN_MODEL_VERSION: Final = "UnknownModelVersion"
NO_MODEL: Final = "NoModel"
AWAITING_PROMOTION: Final = "AwaitingPromotion"
COLD_START: Final = "ColdStart"  # no model yet; the scorer stores leads unscored
PINNED_VERSION_ROLLED_BACK: Final = "PinnedVersionRolledBack"
PINNED_VERSION_REJECTED: Final = "PinnedVersionRejected"
# A child's name is taken by an object this LeadModel does not control: nothing is touched.
NAME_CONFLICT: Final = "NameConflict"
# The API refused a child (its message is in the condition): nothing of that pass is applied.
APPLY_FAILED: Final = "ApplyFailed"
# The scorer's Pods cannot be created or placed: the namespace's fault, never rolled back.
PODS_FORBIDDEN: Final = "PodsForbidden"
QUOTA_EXCEEDED: Final = "QuotaExceeded"
UNSCHEDULABLE: Final = "Unschedulable"
NAMESPACE_FAULTS: Final = frozenset({PODS_FORBIDDEN, QUOTA_EXCEEDED, UNSCHEDULABLE})
# A stuck rollout none of whose Pods a kubelet took up: the control plane's or the node's fault
# (a lagging kube-controller-manager after an API server outage), never rolled back either.
PODS_NOT_STARTED: Final = "PodsNotStarted"
# A completed rollout whose Pods are not all available now.
SCORER_UNAVAILABLE: Final = "ScorerUnavailable"

# Trained
ARTIFACT_PUBLISHED: Final = "ArtifactPublished"
NO_ARTIFACT: Final = "NoArtifact"
BOOTSTRAPPING: Final = "Bootstrapping"  # the bootstrap Job trains the first model
BOOTSTRAP_FAILED: Final = "BootstrapFailed"

# Validated: the gate chain, in order
GATES_PASSED: Final = "GatesPassed"
DIGEST_MISMATCH: Final = "DigestMismatch"
SIGNATURE_INVALID: Final = "SignatureInvalid"
SIGNATURE_MISSING: Final = "SignatureMissing"
CORRUPT_ARTIFACT: Final = "CorruptArtifact"
ARTIFACT_TOO_LARGE: Final = "ArtifactTooLarge"
UNSUPPORTED_FORMAT: Final = "UnsupportedFormat"
FEATURE_SPEC_INCOMPATIBLE: Final = "FeatureSpecIncompatible"
AUC_BELOW_THRESHOLD: Final = "AucBelowThreshold"
TOO_FEW_TRAIN_SAMPLES: Final = "TooFewTrainSamples"
POSITIVE_RATE_TOO_HIGH: Final = "PositiveRateTooHigh"
ARTIFACT_TOO_OLD: Final = "ArtifactTooOld"
NO_CANDIDATE: Final = "NoCandidate"

# RolledOut
ROLLOUT_COMPLETE: Final = "RolloutComplete"
ROLLOUT_IN_PROGRESS: Final = "RolloutInProgress"
ROLLED_BACK: Final = "RolledBack"
ROLLBACK_IN_PROGRESS: Final = "RollbackInProgress"

# Degraded
AS_EXPECTED: Final = "AsExpected"
PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
SCORER_UNHEALTHY: Final = "ScorerUnhealthy"
HIGH_DRIFT: Final = "HighDrift"
STALE_MODEL: Final = "StaleModel"
ROLLBACK_NOT_AVAILABLE: Final = "RollbackNotAvailable"
# The AUC expected from recent leads (CBPE) is below spec.gates.minAuc: a warning, no rollback.
ESTIMATED_AUC_LOW: Final = "EstimatedAucLow"
# The serving version's AUC on matured leads is below its predecessor's on the same leads by
# more than spec.guards.maturedAuc.maxDrop (the interval's upper bound): rolled back.
MATURED_AUC_DROP: Final = "MaturedAucDrop"

# PiiCompliant: the PII gate (pii_gate.py). False holds promotions (never rollbacks).
BACKFILL_SUCCEEDED: Final = "BackfillSucceeded"
BACKFILL_FAILED: Final = "BackfillFailed"
BACKFILL_INCOMPLETE: Final = "BackfillIncomplete"
BACKFILL_STALE: Final = "BackfillStale"
NO_BACKFILL_RESULT: Final = "NoBackfillResult"  # none seen, and one is due by now
NOT_YET_DUE: Final = "NotYetDue"  # none seen, the LeadModel is younger than one period
OVERRIDDEN: Final = "Overridden"  # False, but a person's annotation lets promotions pass
# Events: a promotion held by the gate (Warning, the gate's reason) or let through by the
# override annotation (Warning).
PII_GATE_OVERRIDDEN: Final = "PiiGateOverridden"

# Replayed: the replay gate (replay_gate.py). False holds the candidate's promotion.
REPLAY_RUNNING: Final = "ReplayRunning"  # Unknown: its Job runs; the promotion waits
REPLAY_PASSED: Final = "ReplayPassed"
REPLAY_WORSE: Final = "ReplayWorse"  # Fail: worse beyond maxDrop (the stats' own reason)
SCORE_SHIFT: Final = "ScoreShift"  # Fail: scores moved beyond maxScorePsi
REPLAY_INCONCLUSIVE: Final = "ReplayInconclusive"  # True (Promote) or False (Hold)
REPLAY_FAILED: Final = "ReplayFailed"  # the Job failed: no verdict, the promotion waits
REPLAY_SKIPPED: Final = "ReplaySkipped"  # a first model, an experiment's winner, a pin
# Event: a replay Job created.
REPLAYING: Final = "Replaying"

# Events only
ROLLED_OUT_EVENT: Final = "RolledOut"
PROMOTED: Final = "Promoted"
IMAGE_ROLLOUT: Final = "ImageRollout"
GARBAGE_COLLECTED: Final = "GarbageCollected"
CHILD_CREATED: Final = "Created"

# History entry reasons
# A person rolled the version back (`leadops rollback`): out of "newest passing" until allowed.
MANUAL_ROLLBACK: Final = "ManualRollback"
HISTORY_PROMOTED: Final = "Promoted"
HISTORY_PINNED: Final = "Pinned"
HISTORY_SUPERSEDED: Final = "Superseded"

# Reasons a candidate is refused by the gate chain (counted in the operator's metrics).
GATE_REASONS: Final = frozenset(
    {
        DIGEST_MISMATCH,
        SIGNATURE_INVALID,
        SIGNATURE_MISSING,
        CORRUPT_ARTIFACT,
        ARTIFACT_TOO_LARGE,
        UNSUPPORTED_FORMAT,
        FEATURE_SPEC_INCOMPATIBLE,
        AUC_BELOW_THRESHOLD,
        TOO_FEW_TRAIN_SAMPLES,
        POSITIVE_RATE_TOO_HIGH,
        ARTIFACT_TOO_OLD,
    }
)
