"""CMA-ME over low-resolution pixels: the sep-CMA-ES update, improvement ranking, restarts, resuming, the CLI."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_fool.encodings import CPPNEncoding, DirectEncoding
from keras_fool.errors import ResumeError
from keras_fool.evolution.archive import EMPTY
from keras_fool.evolution.cma_me import (CMAME, anneal_thresholds, generations_within, improvement_values, log_weights,
                                         sep_cma_update, threshold_values)
from keras_fool.evolution.nes import low_resolution_images
from keras_fool.target import Target


@pytest.fixture(scope="module")
def lenet():
    return Target("lenet_mnist")


def _minimise(f, mean, sigma, generations, samples=10, seed=0):
    """sep-CMA-ES on ``f`` (rows of x -> values) with the module's update: the final state and sigma's history."""
    rng = np.random.default_rng(seed)
    n = len(mean)
    mu = samples // 2
    state = {"mean": tf.constant([mean], tf.float32), "sigma": tf.constant([sigma], tf.float32),
             "cov": tf.ones((1, n)), "p_sigma": tf.zeros((1, n)), "p_c": tf.zeros((1, n)),
             "age": tf.zeros((1,), tf.int32)}
    sigmas = []
    weights = log_weights(tf.constant([mu]), mu)
    update = tf.function(sep_cma_update)
    for _ in range(generations):
        z = rng.standard_normal((samples, n)).astype(np.float32)
        x = state["mean"].numpy() + state["sigma"].numpy()[:, None] * np.sqrt(state["cov"].numpy()) * z
        order = np.argsort(f(x), kind="stable")[:mu]
        state = update(state, tf.constant(z[order][None]), weights)
        sigmas.append(float(state["sigma"][0]))
    return state, sigmas


def test_sep_cma_es_solves_an_ellipsoid_learning_its_axes_and_its_step_size():
    scales = np.array([1.0, 10.0, 100.0, 1000.0], np.float32)
    ellipsoid = lambda x: (scales * x**2).sum(axis=1)  # noqa: E731
    state, sigmas = _minimise(ellipsoid, [1.0, 1.0, 1.0, 1.0], 0.5, 400)
    assert ellipsoid(state["mean"].numpy())[0] < 1e-10
    assert sigmas[-1] < 1e-3 * 0.5  # sigma shrank as the optimum neared
    cov = state["cov"].numpy()[0]
    assert cov[0] / cov[3] > 30  # the diagonal learned the axes' scales (ideal: 1000)
    # On a slope, sigma grows (cumulative step-size adaptation).
    _, sigmas = _minimise(lambda x: x[:, 0], [0.0] * 4, 0.01, 40)
    assert sigmas[-1] > 10 * 0.01


def test_log_weights_are_the_usual_ones_over_the_parents_there_are():
    w = log_weights(tf.constant([3, 1, 0]), 3).numpy()
    expected = np.log(3.5) - np.log([1.0, 2.0, 3.0])
    np.testing.assert_allclose(w[0], expected / expected.sum(), rtol=1e-6)
    np.testing.assert_allclose(w[1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(w[2], [0.0, 0.0, 0.0])


def test_improvement_ranks_new_cells_first_then_by_log_improvement_and_leaves_out_the_rest():
    elite = tf.constant([EMPTY, 0.1, 0.5, 1e-20, 0.2], tf.float32)
    open_cells = tf.constant([True, True, True, True, False])
    scores = tf.constant([
        [0.01, 0.0, 0.0, 0.0, 0.0],  # a new cell at 1%
        [0.2, 0.0, 0.0, 0.0, 0.0],  # a new cell at 20%: before the one at 1%
        [-2.0, 0.3, 0.0, 0.0, 0.0],  # 10% -> 30%: log 3 (the -2 only keeps it off the empty cell)
        [-2.0, 0.0, 0.6, 0.0, 0.0],  # 50% -> 60%: log 1.2
        [-2.0, 0.0, 0.0, 1e-18, 0.0],  # 1e-20 -> 1e-18: log 100, however small
        [-2.0, 0.05, 0.4, 0.0, 0.9],  # nothing: the only cell it beats is closed
    ], tf.float32)
    values, improving = improvement_values(scores, elite, open_cells)
    assert improving.numpy().tolist() == [True, True, True, True, True, False]
    order = np.argsort(-values.numpy(), kind="stable")
    assert order.tolist()[:5] == [1, 0, 4, 2, 3]
    np.testing.assert_allclose(values.numpy()[[2, 3, 4]], np.log([3.0, 1.2, 100.0]), rtol=1e-4)
    assert values.numpy()[5] == -np.inf


def _constant_model():
    inputs = keras.Input((28, 28, 1))
    logits = keras.layers.Dense(10, kernel_initializer="zeros")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Softmax()(logits))


def test_an_emitter_restarts_from_an_elite_after_its_patience_or_when_sigma_collapses():
    search = CMAME(Target(_constant_model()), DirectEncoding((28, 28, 1)), classes=[0, 1, 2], resolution=4, samples=4,
                   patience=3)
    search.run(0)  # generation 0: grey everywhere, and nothing can beat it on a constant model
    cells = search.archive.cells
    search.theta = tf.reshape(tf.repeat(tf.range(1.0, cells + 1), 16), (cells, 4, 4, 1))  # tell the elites apart
    state = dict(search.emitter_state)
    state["mean"] = tf.fill(state["mean"].shape, 7.0)
    state["sigma"] = tf.constant([0.3, 0.3, 1e-9])
    state["stall"] = tf.constant([2, 0, 0])
    search.emitter_state = state
    search.run(1)
    after = {k: v.numpy() for k, v in search.emitter_state.items()}
    assert after["stall"].tolist() == [0, 1, 0]  # patience 3 reached by emitter 0; emitter 2's sigma collapsed
    for restarted in (0, 2):
        assert np.unique(after["mean"][restarted]).size == 1 and after["mean"][restarted].flat[0] in (1.0, 2.0, 3.0)
        assert after["sigma"][restarted] == 0.5 and np.all(after["cov"][restarted] == 1.0)
        assert np.all(after["p_sigma"][restarted] == 0.0) and after["age"][restarted] == 0
    assert np.all(after["mean"][1] == 7.0) and after["sigma"][1] == pytest.approx(0.3)  # no improver: unchanged


def test_cma_me_raises_every_class_and_keeps_each_elites_low_resolution_point(lenet):
    search = CMAME(lenet, DirectEncoding((28, 28, 1)), seed=0, resolution=7, samples=10, class_target=1.0)
    search.run(0)
    start = search.archive.confidences.copy()
    search.run(6)
    assert search.emitters == 10 and search.evaluations == 1 + 6 * 10 * 10
    assert generations_within(search, search.evaluations) == 6
    assert generations_within(search, search.evaluations - 1) == 5
    assert np.median(search.archive.confidences) > np.median(start)
    scored = lenet.predict(search.images())[np.arange(10), search.archive.labels]
    np.testing.assert_allclose(scored, search.archive.confidences, atol=1e-5)
    # Each cell's low-resolution point decodes to its elite.
    np.testing.assert_allclose(low_resolution_images(search.theta, (28, 28, 1)).numpy(), search.images(), atol=1e-6)


def test_a_resumed_search_equals_an_uninterrupted_one_and_grouping_changes_nothing(lenet, tmp_path):
    options = dict(classes=[3, 5, 8], seed=4, resolution=7, samples=6)
    straight = CMAME(lenet, DirectEncoding((28, 28, 1)), **options)
    straight.run(6)
    apart = CMAME(lenet, DirectEncoding((28, 28, 1)), eval_batch_size=6, **options)  # one emitter per call
    assert apart.group_size == 1
    first = CMAME(lenet, DirectEncoding((28, 28, 1)), **options)
    first.run(3)
    first.save_checkpoint(tmp_path / "checkpoint.npz")
    resumed = CMAME(lenet, DirectEncoding((28, 28, 1)), **options).load_checkpoint(tmp_path / "checkpoint.npz")
    assert resumed.generation == 3 and resumed.evaluations == first.evaluations == 1 + 3 * 3 * 6
    resumed.run(6)
    apart.run(6)
    for other in (resumed, apart):
        for key, value in straight.emitter_state.items():
            np.testing.assert_allclose(other.emitter_state[key].numpy(), value.numpy(), atol=1e-5, err_msg=key)
        np.testing.assert_allclose(other.theta.numpy(), straight.theta.numpy(), atol=1e-5)
        np.testing.assert_allclose(other.archive.fitness.numpy(), straight.archive.fitness.numpy(), atol=1e-6)
    with pytest.raises(ResumeError, match="different samples"):
        CMAME(lenet, DirectEncoding((28, 28, 1)), **{**options, "samples": 8}).load_checkpoint(
            tmp_path / "checkpoint.npz")


def test_class_ranking_moves_each_emitter_up_its_own_class_only(lenet):
    search = CMAME(lenet, DirectEncoding((28, 28, 1)), classes=[2, 7], seed=1, resolution=7, samples=10,
                   ranking="class", class_target=1.0)
    search.run(0)
    grey = search.archive.confidences.copy()
    search.run(8)
    assert search.get_config()["ranking"] == "class"
    # Emitter e climbs class e's log-probability: its mean's image gains on its own class.
    means = lenet.predict(low_resolution_images(search.emitter_state["mean"], (28, 28, 1)).numpy())
    own = means[[0, 1], [2, 7]]
    assert own[0] > grey[0] and own[1] > grey[1]
    assert means[0, 2] > means[1, 2] and means[1, 7] > means[0, 7]
    assert (search.emitter_state["stall"].numpy() == 0).all()  # every candidate counts: no emitter stalls


def test_bad_options_are_refused(lenet):
    with pytest.raises(ValueError, match="ranking must be one of 'improvement', 'class', 'mae'. Received: "
                                         "ranking='own'"):
        CMAME(lenet, DirectEncoding((28, 28, 1)), ranking="own")
    with pytest.raises(TypeError, match="CMA-ME searches pixels: the encoding must be a DirectEncoding"):
        CMAME(lenet, CPPNEncoding((28, 28, 1)))
    with pytest.raises(ValueError, match="samples"):
        CMAME(lenet, DirectEncoding((28, 28, 1)), samples=1)
    with pytest.raises(ValueError, match="resolution"):
        CMAME(lenet, DirectEncoding((28, 28, 1)), resolution=29)
    with pytest.raises(ValueError, match="archive_learning_rate"):
        CMAME(lenet, DirectEncoding((28, 28, 1)), ranking="mae", archive_learning_rate=0.0)


def test_cma_mae_thresholds_rank_against_each_cell_and_follow_the_best_candidate_part_of_the_way():
    scores = tf.constant([[0.5, 0.01], [0.05, 0.2], [0.001, 0.001]])
    thresholds = tf.math.log(tf.constant([0.1, 0.1]))
    values, improving = threshold_values(scores, thresholds, tf.constant([True, True]))
    np.testing.assert_allclose(values.numpy(), [np.log(5.0), np.log(2.0), np.log(0.01)], rtol=1e-5)
    assert improving.numpy().tolist() == [True, True, False]
    values, _ = threshold_values(scores, thresholds, tf.constant([False, True]))  # a closed cell ranks nothing
    np.testing.assert_allclose(values.numpy(), [np.log(0.1), np.log(2.0), np.log(0.01)], rtol=1e-5)
    best = tf.math.log(tf.constant([0.5, 0.05]))
    annealed = anneal_thresholds(thresholds, best, 0.25).numpy()
    np.testing.assert_allclose(annealed, [0.75 * np.log(0.1) + 0.25 * np.log(0.5), np.log(0.1)], rtol=1e-5)


def test_cma_mae_at_rate_one_is_cma_me_and_resumes_exactly(lenet, tmp_path):
    options = dict(classes=[1, 6, 9], seed=2, resolution=7, samples=6)
    cma_me = CMAME(lenet, DirectEncoding((28, 28, 1)), **options)
    at_one = CMAME(lenet, DirectEncoding((28, 28, 1)), ranking="mae", archive_learning_rate=1.0, **options)
    cma_me.run(4)
    at_one.run(4)
    np.testing.assert_allclose(at_one.archive.fitness.numpy(), cma_me.archive.fitness.numpy(), atol=1e-6)
    np.testing.assert_allclose(at_one.emitter_state["mean"].numpy(), cma_me.emitter_state["mean"].numpy(), atol=1e-5)
    # The thresholds are then the elites' log-probabilities.
    np.testing.assert_allclose(at_one.thresholds.numpy(), np.log(at_one.archive.fitness.numpy()), atol=1e-5)

    options = {**options, "ranking": "mae", "archive_learning_rate": 0.1}
    straight = CMAME(lenet, DirectEncoding((28, 28, 1)), **options)
    straight.run(5)
    first = CMAME(lenet, DirectEncoding((28, 28, 1)), **options)
    first.run(2)
    first.save_checkpoint(tmp_path / "mae.npz")
    resumed = CMAME(lenet, DirectEncoding((28, 28, 1)), **options).load_checkpoint(tmp_path / "mae.npz")
    resumed.run(5)
    np.testing.assert_allclose(resumed.thresholds.numpy(), straight.thresholds.numpy(), atol=1e-5)
    np.testing.assert_allclose(resumed.archive.fitness.numpy(), straight.archive.fitness.numpy(), atol=1e-6)
    # Below rate 1 the thresholds trail the elites.
    assert np.all(straight.thresholds.numpy() <= np.log(straight.archive.fitness.numpy()) + 1e-6)
    assert np.any(straight.thresholds.numpy() < np.log(straight.archive.fitness.numpy()) - 1e-3)
    assert straight.get_config()["archive_learning_rate"] == 0.1 and "archive_learning_rate" not in cma_me.get_config()


@pytest.mark.slow
def test_cli_search_cma_me_writes_evolves_outputs_resumes_and_refuses_map_elites_options(tmp_path):
    from click.testing import CliRunner

    from keras_fool.cli import main

    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    out = tmp_path / "run"
    result = run("evolve", "--search", "cma-me", "--classes", "0,1", "--generations", 2, "--out", out, "--quiet",
                 "--checkpoint-every", 1)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["archive.npz", "checkpoint.npz", "montage.png", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["method"] == "cma-me" and summary["generations"] == 2
    assert summary["evaluations"] == 1 + 2 * 2 * 20  # grey, then 2 emitters x 20 candidates a generation
    assert summary["config"]["ranking"] == "class"  # the ranking measured stronger, not CMA-ME's own
    result = run("evolve", "--out", out, "--resume", "--generations", 3, "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["generations"] == 3

    # A run started with CMA-ME's own ranking resumes with it.
    from keras_fool.target import Target
    own = tmp_path / "own"
    own.mkdir()
    first = CMAME(Target("lenet_mnist"), DirectEncoding((28, 28, 1)), classes=[0, 1], ranking="improvement")
    first.run(1)
    first.save_checkpoint(own / "checkpoint.npz")
    result = run("evolve", "--out", own, "--resume", "--generations", 2, "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((own / "summary.json").read_text())["config"]["ranking"] == "improvement"
    mae = tmp_path / "mae"  # and one with CMA-MAE's ranking, its learning rate and thresholds
    mae.mkdir()
    first = CMAME(Target("lenet_mnist"), DirectEncoding((28, 28, 1)), classes=[0, 1], ranking="mae",
                  archive_learning_rate=0.2)
    first.run(1)
    first.save_checkpoint(mae / "checkpoint.npz")
    result = run("evolve", "--out", mae, "--resume", "--generations", 2, "--quiet")
    assert result.exit_code == 0, result.output
    config = json.loads((mae / "summary.json").read_text())["config"]
    assert config["ranking"] == "mae" and config["archive_learning_rate"] == 0.2

    for args, says in [(("--population", 8), "population is a MAP-Elites option, and this run uses CMA-ME"),
                       (("--paper",), "cannot be combined with search='cma-me'")]:
        refused = run("evolve", "--search", "cma-me", *args, "--out", tmp_path / "refused")
        assert refused.exit_code == 2, refused.output
        assert says in refused.stderr.strip().splitlines()[-1] and "Traceback" not in refused.output
        assert not (tmp_path / "refused").exists()


def test_a_damaged_checkpoint_is_refused_naming_the_array(lenet, tmp_path):
    from keras_fool.evolution import CMAME as exported
    from keras_fool.io import load_npz, save_npz

    assert exported is CMAME
    search = CMAME(lenet, DirectEncoding((28, 28, 1)), classes=[2, 6], resolution=4, samples=4)
    search.run(1)
    search.save_checkpoint(tmp_path / "good.npz")
    arrays = dict(load_npz(tmp_path / "good.npz"))
    for says, change in {
        "'emitter/sigma' and 'emitter/cov' must be positive": {"emitter/sigma": -arrays["emitter/sigma"]},
        "'theta' must be float32 of shape (2, 4, 4, 1)": {"theta": arrays["theta"][:1]},
        "'evaluations' (8) does not fit 1 generations of 2 emitters x 4": {"evaluations": np.array(8)},
        "lacks the array 'emitter/p_c'": {"emitter/p_c": None},
    }.items():
        damaged = {k: v for k, v in {**arrays, **change}.items() if v is not None}
        save_npz(tmp_path / "bad.npz", **damaged)
        with pytest.raises(ResumeError, match=re.escape(says)):
            CMAME(lenet, DirectEncoding((28, 28, 1)), classes=[2, 6], resolution=4, samples=4).load_checkpoint(
                tmp_path / "bad.npz")


def test_one_parent_whose_weight_rounds_above_one_keeps_the_step_size_finite():
    # Compiled, the weights of a single parent may sum to a hair over 1, so mu_eff falls a hair below 1.
    state = {"mean": tf.zeros((1, 3)), "sigma": tf.constant([0.5]), "cov": tf.ones((1, 3)), "p_sigma": tf.zeros((1, 3)),
             "p_c": tf.zeros((1, 3)), "age": tf.zeros((1,), tf.int32)}
    new = sep_cma_update(state, tf.ones((1, 2, 3)), tf.constant([[1.0000001, 0.0]]))
    assert all(np.isfinite(v.numpy()).all() for v in new.values())
