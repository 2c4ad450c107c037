"""benchmarks/deployed_study.py: the statistics it reports are right on tiny inputs."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "deployed_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("deployed_study", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_agreement_counts_top1_against_keras_and_labels_and_the_largest_difference(study):
    keras = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    twin = np.array([[1.0, 0.0], [0.2, 0.8], [0.4, 0.6]])  # the third image flips
    rows = study.agreement({"Keras": keras, "twin": twin}, [0, {1}, {0, 1}])
    assert rows["Keras"]["top1_agreement_pct"] == 100.0 and rows["Keras"]["max_abs_diff"] == 0.0
    assert rows["twin"]["top1_agreement_pct"] == pytest.approx(200 / 3)
    assert rows["twin"]["max_abs_diff"] == pytest.approx(0.2)
    assert rows["twin"]["median_abs_diff"] == pytest.approx(0.1)
    assert rows["twin"]["zero_share_pct"] == pytest.approx(100 / 6) and rows["Keras"]["zero_share_pct"] == 0.0
    assert rows["twin"]["accuracy_pct"] == 100.0 and rows["Keras"]["accuracy_pct"] == 100.0


def test_first_generation_is_the_first_at_or_over_the_bar_and_none_when_never(study):
    history = [(1, 0.5), (2, 0.99), (3, 0.98), (4, 0.9999)]
    assert study.first_generation(history, 0.99) == 2
    assert study.first_generation(history, 0.9999) == 4
    assert study.first_generation(history, 0.99999) is None
    assert study._g([64, None, 73]) == "68.5 (64-73), 1 not reached"
    assert study._g([None]) == "not reached"
