"""Detectors beside a model that answers queries only: a detector asks the model only for what its score reads."""

from __future__ import annotations

import numpy as np
import pytest

from test_audit_query_only import QueriedLeNet


@pytest.fixture(scope="module")
def digits(mnist):
    (_, _), (x, y) = mnist
    return x[:40], y[:40]


def test_the_reconstruction_error_asks_the_model_nothing_and_the_guarded_target_once_per_image(digits):
    from keras_fool.detectors import GuardedTarget, Reconstruction

    x, y = digits
    target = QueriedLeNet()
    detector = Reconstruction(target)
    spent = target.queries
    detector.calibrate(x[:20])
    detector.score(x[20:])
    assert target.queries == spent  # the autoencoder scores the images; the classifier is not asked

    verdict = GuardedTarget(detector).verdict(x[20:], y[20:])
    assert target.queries == spent + 20  # the guarded target needs the classifier's probabilities, once
    np.testing.assert_allclose(verdict["confidence"], target.predict(x[20:])[np.arange(20), y[20:]], rtol=1e-5)
