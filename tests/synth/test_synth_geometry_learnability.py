"""The learnability check: view-invariant features, and classes separable on unseen bodies."""

from __future__ import annotations

import numpy as np
import pytest

from pcsep_cli.synth import learnability as L


def test_features_ignore_where_the_sensor_stood() -> None:
    rng = np.random.default_rng(0)
    cloud = rng.normal(0, [0.2, 0.1, 0.4], (2000, 3)) + [0, 0, 1.0]
    a = np.deg2rad(70)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    moved = cloud @ rot.T + [3.0, -2.0, 0.0]
    np.testing.assert_allclose(L.features(cloud), L.features(moved), atol=1e-9)
    taller = cloud * [1, 1, 1.5]
    assert not np.allclose(L.features(cloud), L.features(taller))
    with pytest.raises(ValueError, match=r"\[N>=10, 3\]"):
        L.features(cloud[:5])


def test_classes_separate_on_held_out_bodies() -> None:
    # 5 scans per class to train, 2 to test: the full check (`python -m
    # pcsep_cli.synth.learnability`, 40/15) reaches about 0.76 against a chance of 0.09.
    result = L.run(n_train=5, n_test=2, seed=0)
    assert result.confusion.shape == (11, 11)
    assert result.confusion.sum() == 22
    assert result.accuracy > 3 / len(L.LABELS)
    assert "accuracy" in result.report() and "double_bass" in result.report()
