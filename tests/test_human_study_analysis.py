"""The study's design and statistics, checked by hand: config, plans, Student t, means and intervals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from keras_fool.human_study.analysis import (
    markdown_table,
    mean_interval,
    participant_accuracies,
    plot_figure8,
    student_t_cdf,
    student_t_quantile,
    summarize,
)
from keras_fool.human_study.config import (
    PAPER_FGSM_EPS,
    PAPER_GAUSSIAN_SIGMAS,
    StudyConfig,
    load_config,
    participant_plan,
)

# --------------------------------------------------------------------------- the design


def test_the_default_design_is_the_papers_without_usps():
    config = StudyConfig()
    assert config.gaussian_sigmas == (0.09, 0.18, 0.27, 0.36, 0.45, 0.54) == PAPER_GAUSSIAN_SIGMAS
    assert config.fgsm_eps == (0.07, 0.14, 0.21, 0.28, 0.34, 0.40) == PAPER_FGSM_EPS
    assert [c.key for c in config.conditions][:3] == ["clean", "gaussian-0.09", "gaussian-0.18"]
    assert [c.count for c in config.conditions] == [15] * 13
    assert config.images_per_participant == 195  # the paper's 205 less its 10 USPS digits
    assert config.model == "lenet_mnist" and not config.ask_age and not config.ask_handedness


@pytest.mark.parametrize("changes, error", [
    ({"images_per_level": -1}, ValueError),
    ({"images_per_level": 2.5}, TypeError),
    ({"clean_images": True}, TypeError),
    ({"gaussian_sigmas": [0.2, 0.1]}, ValueError),
    ({"gaussian_sigmas": [0.0]}, ValueError),
    ({"gaussian_sigmas": "0.1"}, TypeError),
    ({"fgsm_eps": [0.5, 1.5]}, ValueError),
    ({"fgsm_eps": [float("nan")]}, ValueError),
    ({"pool_size": 10001}, ValueError),
    ({"pool_size": 100}, ValueError),  # fewer digits than one participant's 195 distinct ones
    ({"seed": -1}, ValueError),
    ({"ask_age": "yes"}, TypeError),
    ({"model": ""}, TypeError),
    ({"title": "x" * 301}, ValueError),
    ({"clean_images": 0, "images_per_level": 0}, ValueError),
    ({"max_participants": 0}, ValueError),
])
def test_bad_settings_are_refused(changes, error):
    with pytest.raises(error):
        StudyConfig.from_dict(changes)


def test_config_files(tmp_path):
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"images_per_level": 3, "ask_age": True}))
    config = load_config(path)
    assert config.images_per_level == 3 and config.ask_age and config.clean_images == 15
    assert StudyConfig.from_dict(config.to_dict()) == config
    assert load_config(None) == StudyConfig()
    path.write_text('{"images_per_levle": 3}')
    with pytest.raises(ValueError, match="Unknown keys.*images_per_levle"):
        load_config(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid JSON"):
        load_config(path)
    path.write_text("[1, 2]")
    with pytest.raises(TypeError):
        load_config(path)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.json")
    # What decides the images is fingerprinted; consent settings are not.
    assert StudyConfig(ask_age=True).design_fingerprint() == StudyConfig().design_fingerprint()
    assert StudyConfig(seed=1).image_fingerprint() != StudyConfig().image_fingerprint()
    assert StudyConfig(images_per_level=3).image_fingerprint() == StudyConfig().image_fingerprint()
    assert StudyConfig(images_per_level=3).design_fingerprint() != StudyConfig().design_fingerprint()


def test_each_participant_gets_a_reproducible_random_subset_in_random_order():
    config = StudyConfig()
    plan = participant_plan(config, 7)
    assert plan.shape == (195, 2)
    np.testing.assert_array_equal(plan, participant_plan(config, 7))  # seeded per participant
    assert not np.array_equal(plan, participant_plan(config, 8))  # another participant, another plan
    assert np.bincount(plan[:, 0], minlength=13).tolist() == [15] * 13  # 15 per condition
    assert len(set(plan[:, 1].tolist())) == 195  # nobody sees a digit twice, clean and noisy
    assert plan[:, 1].min() >= 0 and plan[:, 1].max() < config.pool_size
    # Shuffled: the conditions are not shown in blocks.
    assert np.count_nonzero(np.diff(plan[:, 0])) > 150
    # Different participants see mostly different digits.
    overlap = len(set(plan[:, 1].tolist()) & set(participant_plan(config, 8)[:, 1].tolist()))
    assert overlap < 80
    with pytest.raises(ValueError):
        participant_plan(config, -1)


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("df, expected", [
    # t(0.975, df) from a printed table (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2).
    (1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (9, 2.262), (10, 2.228), (19, 2.093),
    (30, 2.042), (56, 2.003), (100, 1.984),
])
def test_student_t_quantile_matches_the_printed_table(df, expected):
    assert student_t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


def test_student_t_distribution_basics():
    assert student_t_cdf(0.0, 5) == pytest.approx(0.5)
    assert student_t_cdf(1.0, 1) == pytest.approx(0.75)  # Cauchy: 1/2 + atan(1)/pi
    assert student_t_quantile(0.025, 4) == pytest.approx(-student_t_quantile(0.975, 4))
    assert student_t_quantile(0.995, 3) == pytest.approx(5.841, abs=5e-4)
    assert student_t_quantile(0.975, 1e6) == pytest.approx(1.95996, abs=1e-4)  # the normal's
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError):
            student_t_quantile(bad, 3)
    with pytest.raises(ValueError):
        student_t_quantile(0.9, 0)


def test_mean_interval_by_hand():
    # 1, 0.75, 0.75, 0.5: mean 0.75, squares of deviations 0.0625 + 0 + 0 + 0.0625 = 0.125,
    # sd = sqrt(0.125 / 3) = 0.204124, se = sd / 2 = 0.102062, t(0.975, 3) = 3.182446,
    # half width 0.324808: [0.425192, 1.074808], clipped to [0.425192, 1].
    stats = mean_interval([1.0, 0.75, 0.75, 0.5])
    assert stats["n"] == 4 and stats["mean"] == pytest.approx(0.75)
    assert stats["sd"] == pytest.approx(0.204124, abs=1e-6)
    assert stats["ci_low"] == pytest.approx(0.425192, abs=1e-6)
    assert stats["ci_high"] == 1.0
    raw = mean_interval([1.0, 0.75, 0.75, 0.5], bounds=None)
    assert raw["ci_high"] == pytest.approx(1.074808, abs=1e-6)
    # Two values 0.2 and 0.4: mean 0.3, sd 0.141421, se 0.1, t(0.975, 1) = 12.706205: [-0.970621, 1.570621].
    assert mean_interval([0.2, 0.4], bounds=None)["ci_low"] == pytest.approx(-0.970621, abs=1e-6)
    one = mean_interval([0.6])
    assert one["mean"] == 0.6 and math.isnan(one["ci_low"]) and math.isnan(one["sd"])
    assert mean_interval([])["n"] == 0
    # Equal values: a zero-width interval.
    assert mean_interval([0.5, 0.5, 0.5])["ci_low"] == mean_interval([0.5, 0.5, 0.5])["ci_high"] == 0.5


def _answers(participant, condition, outcomes, simulated=False):
    return [{"participant": participant, "simulated": simulated, "condition_index": condition, "correct": c}
            for c in outcomes]


def test_the_analysis_on_a_fixed_synthetic_answer_set():
    """Three participants, two conditions; every number below is worked out by hand."""
    rows = (
        # condition 0 (clean): 4/4, 3/4, 4/4   condition 1: 2/4, 1/4, 3/4
        _answers("P1", 0, [1, 1, 1, 1]) + _answers("P1", 1, [1, 0, 1, 0])
        + _answers("P2", 0, [1, 1, 0, 1]) + _answers("P2", 1, [0, 0, 1, 0])
        + _answers("P3", 1, [1, 1, 0, 1]) + _answers("P3", 0, [1, 1, 1, 1])
    )
    accuracies = participant_accuracies(rows)
    assert [(a["participant"], a["condition_index"], a["n"], a["correct"]) for a in accuracies] == [
        ("P1", 0, 4, 4), ("P1", 1, 4, 2), ("P2", 0, 4, 3), ("P2", 1, 4, 1), ("P3", 0, 4, 4), ("P3", 1, 4, 3)]
    clean, noisy = summarize(accuracies, 2)
    # clean: 1, 0.75, 1 -> mean 0.916667; deviations 1/12, -1/6, 1/12 -> SS 0.041667, var 0.020833,
    # sd 0.144338, se 0.083333, t(0.975, 2) = 4.302653, half width 0.358554 -> [0.558113, 1.275221] -> high 1.
    assert clean["n"] == 3
    assert clean["mean"] == pytest.approx(0.916667, abs=1e-6)
    assert clean["sd"] == pytest.approx(0.144338, abs=1e-6)
    assert clean["ci_low"] == pytest.approx(0.558113, abs=1e-6) and clean["ci_high"] == 1.0
    # noisy: 0.5, 0.25, 0.75 -> mean 0.5, sd 0.25, se 0.144338, half width 0.621034 -> [-0.121034, 1.121034]
    # -> clipped to [0, 1].
    assert noisy["mean"] == pytest.approx(0.5) and noisy["sd"] == pytest.approx(0.25)
    assert (noisy["ci_low"], noisy["ci_high"]) == (0.0, 1.0)
    # Five people at 0.6, 0.7, 0.8, 0.9, 1.0: mean 0.8, sd 0.158114, se 0.070711, t(0.975, 4) = 2.776445,
    # half width 0.196324 -> [0.603676, 0.996324], no clipping.
    five = summarize([{"condition_index": 0, "accuracy": a} for a in (0.6, 0.7, 0.8, 0.9, 1.0)], 1)[0]
    assert five["ci_low"] == pytest.approx(0.603676, abs=1e-6)
    assert five["ci_high"] == pytest.approx(0.996324, abs=1e-6)


def test_real_and_simulated_participants_never_mix():
    rows = _answers("P1", 0, [1, 0]) + _answers("SIM001", 0, [1, 1], simulated=True)
    accuracies = participant_accuracies(rows)
    assert [(a["participant"], a["simulated"], a["accuracy"]) for a in accuracies] == [
        ("P1", False, 0.5), ("SIM001", True, 1.0)]


def test_table_and_figure_label_simulated_participants():
    config = StudyConfig.from_dict({"clean_images": 1, "images_per_level": 1, "gaussian_sigmas": [0.2],
                                    "fgsm_eps": [0.2], "pool_size": 10})
    stats = [mean_interval([0.9, 1.0, 0.8]), mean_interval([0.7, 0.8]), mean_interval([0.2, 0.3])]
    summaries = {"people": stats, "simulated": stats, "lenets_own_fgsm": stats, "lenets_shown_images": stats}
    sizes = {"people": 3, "simulated": 5, "lenets_own_fgsm": 6, "lenets_shown_images": 6}
    table = markdown_table(config.conditions, [0.0, 0.08, 0.08], summaries, sizes, notes=["a note"])
    assert "SIMULATED" in table.splitlines()[0]
    assert "| clean | 0.000 | 90.0% [65.2, 100.0] |" in table
    assert "SIMULATED participants, not people (n=5)" in table and "* a note" in table
    figure = plot_figure8(config.conditions, summaries, sizes)
    assert "SIMULATED" in figure.get_suptitle()
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert "SIMULATED participants, not people (n=5)" in labels and "people (n=3)" in labels
    del summaries["simulated"], sizes["simulated"]
    assert "SIMULATED" not in markdown_table(config.conditions, [0.0, 0.08, 0.08], summaries, sizes)
    assert "SIMULATED" not in plot_figure8(config.conditions, summaries, sizes).get_suptitle()
