"""CMA-ME over CPPN weights (class ranking): the masked sep-CMA-ES update, resuming, refusals, the CLI."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_fool.encodings import CPPNEncoding, DirectEncoding
from keras_fool.errors import ResumeError
from keras_fool.evolution import CPPNCMAME
from keras_fool.evolution.cma_me import log_weights, sep_cma_update
from keras_fool.target import Target

OPTIONS = dict(classes=[0, 4, 7], seed=2, samples=6, pool=12, grow=6)


@pytest.fixture(scope="module")
def lenet():
    return Target("lenet_mnist")


def test_each_class_adapts_its_own_step_on_its_own_connections_and_gains(lenet):
    search = CPPNCMAME(lenet, CPPNEncoding((28, 28, 1)), **OPTIONS, class_target=1.0)
    search.trace()  # generation 0: the grown pool, each class's favourite
    start, before = search.archive.confidences.copy(), search.theta.numpy()
    connected = search.topology["connected"].numpy()
    search.run(6)
    assert search.evaluations == 12 + 6 * 3 * 7  # the pool, then 3 classes x (6 candidates + the mean)
    after = search.theta.numpy()
    moved = np.abs(after - before) > 0
    assert moved.any() and not moved[~connected].any()  # only the class's own connections move
    assert 0.0 <= after.min() and after.max() <= 1.0  # means stay among the genes
    sigma = search.cma_state["sigma"].numpy()
    assert not np.allclose(sigma, search.sigma) and np.all(sigma > 0)  # every class adapted its own step
    cov = search.cma_state["cov"].numpy()
    assert np.all(cov[~connected] == 1.0) and not np.all(cov[connected] == 1.0)  # missing connections untouched
    assert np.all(search.archive.confidences >= start) and np.any(search.archive.confidences > start)
    search.encoding.validate({k: v.numpy() for k, v in search.archive.genomes.items()})
    # The elites are the CPPNs whose probabilities the archive records.
    scored = lenet.predict(search.images())[np.arange(3), search.archive.labels]
    np.testing.assert_allclose(scored, search.archive.confidences, atol=1e-5)
    config = search.get_config()
    assert config["method"] == "cma-me" and config["space"] == "cppn-weights" and config["ranking"] == "class"


def test_a_coordinate_count_per_emitter_equals_the_plain_update_where_every_coordinate_is_searched():
    rng = np.random.default_rng(0)
    n, mu = 5, 3
    state = {"mean": tf.constant(rng.random((2, n)), tf.float32), "sigma": tf.constant([0.3, 0.1]),
             "cov": tf.ones((2, n)), "p_sigma": tf.zeros((2, n)), "p_c": tf.zeros((2, n)), "age": tf.zeros(2, tf.int32)}
    z = tf.constant(rng.standard_normal((2, mu, n)), tf.float32)
    weights = log_weights(tf.constant([mu, mu]), mu)
    plain = sep_cma_update(state, z, weights)
    counted = sep_cma_update(state, z, weights, dims=tf.constant([n, n]))
    for key in ("mean", "sigma", "cov", "p_sigma", "p_c"):
        np.testing.assert_allclose(counted[key].numpy(), plain[key].numpy(), rtol=1e-5, atol=1e-7)
    # Fewer searched coordinates: the same draws are a longer path for that dimension, so sigma grows more.
    fewer = sep_cma_update(state, z, weights, dims=tf.constant([2, 2]))
    assert np.all(fewer["sigma"].numpy() > plain["sigma"].numpy())


def test_a_resumed_search_equals_an_uninterrupted_one_and_a_damaged_state_is_named(lenet, tmp_path):
    from keras_fool.io import load_npz, save_npz

    encoding = CPPNEncoding((28, 28, 1))
    straight = CPPNCMAME(lenet, encoding, **OPTIONS)
    straight.run(5)
    first = CPPNCMAME(lenet, encoding, **OPTIONS)
    first.run(2)
    first.save_checkpoint(tmp_path / "checkpoint.npz")
    resumed = CPPNCMAME(lenet, encoding, **OPTIONS)
    resumed.load_checkpoint(tmp_path / "checkpoint.npz")
    assert resumed.generation == 2 and resumed.evaluations == first.evaluations
    resumed.run(5)
    np.testing.assert_allclose(resumed.theta.numpy(), straight.theta.numpy(), atol=1e-5)
    np.testing.assert_allclose(resumed.cma_state["sigma"].numpy(), straight.cma_state["sigma"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(resumed.archive.fitness.numpy(), straight.archive.fitness.numpy(), atol=1e-6)

    other = CPPNCMAME(lenet, encoding, **{**OPTIONS, "sigma": 0.05})
    with pytest.raises(ResumeError, match="different sigma"):
        other.load_checkpoint(tmp_path / "checkpoint.npz")
    arrays = dict(load_npz(tmp_path / "checkpoint.npz"))
    for says, change in {"'cma/sigma' and 'cma/cov' must be positive": {"cma/sigma": -arrays["cma/sigma"]},
                         "'cma/cov' must be float32 of shape (3, ": {"cma/cov": arrays["cma/cov"][:1]},
                         "lacks the array 'cma/p_c'": {"cma/p_c": None}}.items():
        damaged = {k: v for k, v in {**arrays, **change}.items() if v is not None}
        save_npz(tmp_path / "damaged.npz", **damaged)
        with pytest.raises(ResumeError, match=says.replace("(", r"\(")):
            CPPNCMAME(lenet, encoding, **OPTIONS).load_checkpoint(tmp_path / "damaged.npz")


def test_pixels_and_a_step_beyond_half_the_genes_are_refused(lenet):
    with pytest.raises(TypeError, match="must be a CPPNEncoding"):
        CPPNCMAME(lenet, DirectEncoding((28, 28, 1)))
    with pytest.raises(ValueError, match="sigma must be at most 0.5"):
        CPPNCMAME(lenet, CPPNEncoding((28, 28, 1)), sigma=0.8)


@pytest.mark.slow
def test_cli_search_cma_me_with_a_cppn_writes_evolves_outputs_and_resumes(tmp_path):
    from click.testing import CliRunner

    from keras_fool.cli import main

    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    out = tmp_path / "run"
    result = run("evolve", "--search", "cma-me", "--encoding", "cppn", "--classes", "1,8", "--generations", 2,
                 "--out", out, "--quiet", "--checkpoint-every", 1)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["archive.npz", "checkpoint.npz", "montage.png", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["method"] == "cma-me" and summary["config"]["space"] == "cppn-weights"
    assert summary["evaluations"] == 160 + 2 * 2 * 21 and summary["config"]["spend_all"] is True
    result = run("evolve", "--out", out, "--resume", "--generations", 3, "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generations"] == 3 and summary["config"]["space"] == "cppn-weights"
    for args, says in [(("--capacity", "grow"), "grows MAP-Elites' CPPNs, and this run uses CMA-ME"),
                       (("--population", 8), "population is a MAP-Elites option, and this run uses CMA-ME")]:
        refused = run("evolve", "--search", "cma-me", "--encoding", "cppn", *args, "--out", tmp_path / "x")
        assert refused.exit_code == 2 and says in refused.stderr and "Traceback" not in refused.output
        assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("search", [CPPNCMAME, "NES"])
def test_adopting_moves_each_class_to_an_elite_another_class_found(lenet, search):
    from keras_fool.evolution import NES

    search = NES if search == "NES" else search
    options = dict(seed=0, samples=4, pool=12, grow=6, class_target=1.0)
    structure = ("activation", "alive", "position", "connected")

    def others(s):
        """The classes whose elite is not of their own search's structure."""
        elites = s.archive.genomes
        return {int(c) for c in range(s.archive.cells)
                if any(not np.array_equal(elites[k][c].numpy(), s.topology[k][c].numpy()) for k in structure)}

    plain = search(lenet, CPPNEncoding((28, 28, 1)), **options)
    plain.run(4)
    assert others(plain)  # without adopting, some cells hold another class's CPPN (else this test proves nothing)
    adopting = search(lenet, CPPNEncoding((28, 28, 1)), **options, adopt=True)
    adopting.trace()  # generation 0: each class's own pick from the pool
    start = {k: v.numpy() for k, v in adopting.topology.items()}
    adopting.run(4)
    assert not others(adopting)  # every class searches from its elite's network
    connected = adopting.topology["connected"].numpy()
    moved = [c for c in range(10) if not np.array_equal(connected[c], start["connected"][c])]
    assert moved  # and some did move to another class's network
    assert adopting.get_config()["adopt"] is True and "adopt" not in plain.get_config()
    with pytest.raises(ValueError, match="takes CPPN weights only"):
        NES(lenet, DirectEncoding((28, 28, 1)), adopt=True)
