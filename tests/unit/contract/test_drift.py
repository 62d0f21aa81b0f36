"""Drift score on a real trained artifact: stays low without drift at any n, fires on real drift,
not on trivial drift at large n; PSI reported alongside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leadops.contract.artifact import Artifact, load_artifact
from leadops.contract.drift import FeatureStats, drift_report, psi
from leadops.contract.featurize import matrix
from leadops.contract.rows import lead_to_row
from leadops.jobs import synth
from leadops.pii import redact


@pytest.fixture(scope="module")
def artifact(trained_artifact_path: Path) -> Artifact:
    return load_artifact(trained_artifact_path)


def _live(artifact: Artifact, n: int, *, seed: int, drift: float) -> np.ndarray:
    drawn = synth.generate(n, seed=seed, drift=drift)
    return matrix(artifact.features, [lead_to_row(d.lead, redact=redact) for d in drawn])


@pytest.mark.parametrize("n", [30, 300, 3000])
def test_no_drift_stays_well_below_3_at_any_sample_size(artifact: Artifact, n: int) -> None:
    report = drift_report(artifact.feature_stats, _live(artifact, n, seed=100 + n, drift=0.0))
    assert report.n == n
    assert report.score < 1.5


@pytest.mark.parametrize("n", [300, 3000])
def test_real_drift_fires_and_trivial_drift_does_not(artifact: Artifact, n: int) -> None:
    stats = artifact.feature_stats
    drifted = drift_report(stats, _live(artifact, n, seed=7 + n, drift=1.0))
    assert drifted.score > 3.0
    assert drifted.features[0].shift > 3.0
    # A z-test at n=3000 would call this drift; an effect this small must not fire.
    slight = drift_report(stats, _live(artifact, n, seed=9 + n, drift=0.05))
    assert slight.score < 1.5


def test_score_plateaus_with_n_instead_of_growing(artifact: Artifact) -> None:
    stats = artifact.feature_stats
    mid = drift_report(stats, _live(artifact, 400, seed=3, drift=0.5)).score
    big = drift_report(stats, _live(artifact, 4000, seed=4, drift=0.5)).score
    assert 0.7 < big / mid < 1.4  # a sqrt(n) statistic would have grown ~3.2x


def test_psi(artifact: Artifact) -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert 0 < psi([0.5, 0.5], [0.6, 0.4]) < psi([0.5, 0.5], [0.9, 0.1])
    stats = artifact.feature_stats
    calm = drift_report(stats, _live(artifact, 3000, seed=1, drift=0.0))
    moved = drift_report(stats, _live(artifact, 3000, seed=1, drift=1.0))
    assert calm.psi_max < 0.1  # the usual "no shift" reading
    assert moved.psi_max > 0.25  # the usual "major shift" reading


def test_wrong_width_is_refused(artifact: Artifact) -> None:
    with pytest.raises(ValueError, match="features"):
        drift_report(artifact.feature_stats, np.zeros((3, 2), dtype=np.float32))


def test_stats_round_trip_as_json(artifact: Artifact) -> None:
    stats = artifact.feature_stats
    assert FeatureStats.model_validate_json(stats.model_dump_json()) == stats
    assert sum(f.weight for f in stats.features) == pytest.approx(1.0)
    assert len(stats.features) == len(artifact.features.feature_names)
