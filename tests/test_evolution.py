import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_fool.encodings import DirectEncoding
from keras_fool.errors import NonFiniteError, ResumeError
from keras_fool.evolution import Checkpoint, ClassArchive, EarlyStopping, MapElites
from keras_fool.evolution.archive import update_elites
from keras_fool.target import Target


@pytest.fixture(scope="module")
def target():
    return Target("lenet_mnist")


def test_polynomial_mutation_statistics():
    enc = DirectEncoding((28, 28, 1), rate=0.1, eta=15.0)
    genomes = tf.fill((1000, 28, 28, 1), 0.5)
    mutated = enc.mutate(genomes, tf.constant([3, 4]), 0).numpy()
    delta = (mutated - 0.5).ravel()
    changed = delta != 0
    assert changed.mean() == pytest.approx(0.1, abs=0.003)
    assert np.abs(delta[changed]).mean() == pytest.approx(1 / 17, rel=0.02)
    assert abs(delta[changed].mean()) < 0.002  # symmetric
    assert mutated.min() >= 0.0 and mutated.max() <= 1.0


def test_mutation_rate_halving_schedule():
    enc = DirectEncoding(rate=0.1, rate_halving_every=1000)
    assert [float(enc.rate_at(g)) for g in (0, 999, 1000, 2500)] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    assert float(DirectEncoding(rate=0.1, rate_halving_every=None).rate_at(5000)) == pytest.approx(0.1)


def test_crossover_keeps_genes_both_parents_share():
    enc = DirectEncoding((4, 4, 1))
    a = tf.random.stateless_uniform((50, 4, 4, 1), [1, 2])
    b = tf.where(tf.random.stateless_uniform((50, 4, 4, 1), [3, 4]) < 0.5, a, 1.0 - a)
    child = enc.crossover(a, b, tf.constant([5, 6])).numpy()
    shared = (a.numpy() == b.numpy())
    np.testing.assert_array_equal(child[shared], a.numpy()[shared])  # the original zeroed these
    assert child.min() >= 0 and child.max() <= 1


def test_one_child_can_take_several_cells_and_ties_do_not_replace():
    archive = ClassArchive([0, 1, 2], ["a", "b", "c"], tf.zeros((1, 2)))
    children = tf.constant([[1.0, 1.0], [2.0, 2.0]])
    info = archive.add(children, [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    assert info.count == 3  # empty cells take any child
    np.testing.assert_allclose(archive.confidences, [0.5, 0.3, 0.8])
    # Child 0 beats cells 0 and 1 at once; child 1 only ties cell 2 and must not replace it.
    info = archive.add(tf.constant([[7.0, 7.0], [9.0, 9.0]]), [[0.6, 0.35, 0.05], [0.0, 0.2, 0.8]])
    assert info.replaced.tolist() == [0, 1]
    np.testing.assert_array_equal(archive.genomes.numpy(), [[7, 7], [7, 7], [2, 2]])
    # Among several better children the best wins; among equal best ones, the first.
    new_g, new_f, replaced = update_elites(
        tf.zeros((1, 1)), tf.constant([0.1]), tf.constant([[1.0], [2.0], [3.0]]),
        tf.constant([[0.5], [0.9], [0.9]]), tf.constant([0]),
    )
    assert new_g.numpy().tolist() == [[2.0]] and float(new_f[0]) == pytest.approx(0.9)


def _one_at_a_time(genomes, fitness, children, probabilities, labels):
    """The replacement rule by definition: offer the children in order, each takes every cell it beats."""
    genomes, fitness = {k: v.copy() for k, v in genomes.items()}, fitness.copy()
    for i in range(len(probabilities)):
        for cell, label in enumerate(labels):
            if probabilities[i, label] > fitness[cell]:
                fitness[cell] = probabilities[i, label]
                for k in genomes:
                    genomes[k][cell] = children[k][i]
    return genomes, fitness


@pytest.mark.parametrize("seed", range(6))
def test_batched_update_and_row_lists_equal_adding_children_one_at_a_time(seed, monkeypatch):
    from keras_fool.evolution import archive as archive_module
    from keras_fool.evolution.archive import EMPTY, gather_rows, rows_from_batch, scatter_rows, select_elites, stack_rows

    rng = np.random.default_rng(seed)
    cells, n, classes = 6, 9, 8
    labels = rng.choice(classes, cells, replace=False).astype(np.int32)
    levels = np.array([0.0, 0.25, 0.5, 0.75, 1.0], np.float32)  # few values: many ties
    probabilities = rng.choice(levels, (n, classes)).astype(np.float32)
    probabilities[:, labels[0]] = 0.5  # every child ties on cell 0: the first one wins it
    genomes = {"image": rng.random((cells, 3, 2, 3), dtype=np.float32),
               "alive": rng.random((cells, 4)) < 0.5, "count": rng.integers(0, 9, cells).astype(np.int32)}
    children = {"image": rng.random((n, 3, 2, 3), dtype=np.float32),
                "alive": rng.random((n, 4)) < 0.5, "count": rng.integers(0, 9, n).astype(np.int32)}
    spec = tf.nest.map_structure(lambda a: tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)), genomes)
    # Some cells filled (a few children win), then all empty (every cell is won: shared rows).
    for fitness in (rng.choice(np.append(levels, EMPTY), cells).astype(np.float32), np.full(cells, EMPTY, np.float32)):
        expected_genomes, expected_fitness = _one_at_a_time(genomes, fitness, children, probabilities, labels)
        assert (expected_fitness != fitness).any()

        new_g, new_f, replaced = update_elites(genomes, fitness, children, probabilities, labels)
        np.testing.assert_array_equal(new_f.numpy(), expected_fitness)
        np.testing.assert_array_equal(replaced.numpy(), expected_fitness != fitness)
        for k in genomes:
            np.testing.assert_array_equal(new_g[k].numpy(), expected_genomes[k])

        # The evolver's path: the same rule on row lists, inside a compiled function, with the
        # winners' rows copied in and (every row counting as large) shared between cells.
        for share_bytes in (archive_module.SHARE_ROWS_BYTES, 0):
            monkeypatch.setattr(archive_module, "SHARE_ROWS_BYTES", share_bytes)

            @tf.function
            def on_rows(genomes, fitness, children, probabilities, accept):
                rows = rows_from_batch(genomes)
                picked = gather_rows(rows, tf.constant([2, 0, 2]), spec)
                cells, winners, fitness, _ = select_elites(fitness, probabilities, labels, accept)
                return stack_rows(scatter_rows(rows, cells, winners, children), spec), fitness, picked

            for accept, (want_g, want_f) in ((True, (expected_genomes, expected_fitness)), (False, (genomes, fitness))):
                got_g, got_f, picked = on_rows(genomes, fitness, children, probabilities, tf.constant(accept))
                np.testing.assert_array_equal(got_f.numpy(), want_f)
                for k in genomes:
                    np.testing.assert_array_equal(got_g[k].numpy(), want_g[k])
                    np.testing.assert_array_equal(picked[k].numpy(), genomes[k][[2, 0, 2]])


@pytest.mark.parametrize("eta", [3.0, 15.0, 10.0])
def test_mutation_is_bit_for_bit_the_polynomial_step_on_every_gene(eta):
    from keras_fool.encodings.direct import polynomial_delta

    enc = DirectEncoding((33, 17, 3), rate=0.2, eta=eta, rate_halving_every=5)
    genomes = tf.random.stateless_uniform((4, 33, 17, 3), [1, 2])
    seed = tf.constant([3, 4])
    u = tf.random.stateless_uniform(tf.shape(genomes), seed)
    rate = enc.rate_at(7)
    delta = polynomial_delta(tf.minimum(u / rate, 1.0 - 1e-7), eta)
    expected = tf.clip_by_value(genomes + tf.where(u < rate, delta, 0.0), 0.0, 1.0).numpy()
    assert enc.mutate(genomes, seed, 7).numpy().tobytes() == expected.tobytes()
    assert tf.function(enc.mutate)(genomes, seed, tf.constant(7)).numpy().tobytes() == expected.tobytes()


def test_archive_checks_its_inputs():
    with pytest.raises(ValueError, match="0..2"):
        ClassArchive([0, 5], ["a", "b", "c"], tf.zeros((1, 2)))
    archive = ClassArchive([0, 1], ["a", "b"], tf.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        archive.add(tf.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(RuntimeError, match="empty"):
        archive.sample(3, [0, 0])


def test_evolution_fools_lenet_and_is_deterministic(target):
    a = MapElites(target, DirectEncoding(), population=50, seed=3)
    a.run(30)
    b = MapElites(target, DirectEncoding(), population=50, seed=3, steps_per_call=7)
    b.run(30)
    np.testing.assert_array_equal(a.archive.genomes.numpy(), b.archive.genomes.numpy())
    np.testing.assert_array_equal(a.archive.fitness.numpy(), b.archive.fitness.numpy())
    assert a.evaluations == 50 * 31
    # Evolution must beat the best of the random initial population by far.
    assert a.history["median"][-1] > a.history["median"][0] + 0.3
    # History is monotone: elites never get worse.
    assert np.all(np.diff(a.history["min"]) >= 0)


def test_resume_equals_an_uninterrupted_run(target, tmp_path):
    straight = MapElites(target, DirectEncoding(), population=40, seed=11, classes=[1, 4, 7])
    straight.run(12)
    first = MapElites(target, DirectEncoding(), population=40, seed=11, classes=[1, 4, 7])
    first.run(6, [Checkpoint(tmp_path / "ck.npz", every=3)])
    resumed = MapElites(target, DirectEncoding(), population=40, seed=11, classes=[1, 4, 7])
    resumed.load_checkpoint(tmp_path / "ck.npz")
    assert resumed.generation == 6
    resumed.run(12)
    np.testing.assert_array_equal(straight.archive.genomes.numpy(), resumed.archive.genomes.numpy())
    np.testing.assert_array_equal(straight.archive.fitness.numpy(), resumed.archive.fitness.numpy())
    assert straight.summary()["classes"] == resumed.summary()["classes"]
    assert straight.history == resumed.history


def test_resume_with_another_config_is_refused(target, tmp_path):
    MapElites(target, DirectEncoding(), population=10, seed=1).run(2, [Checkpoint(tmp_path / "ck.npz", every=1)])
    other = MapElites(target, DirectEncoding(), population=10, seed=2)
    with pytest.raises(ResumeError, match="different seed"):
        other.load_checkpoint(tmp_path / "ck.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ResumeError, match="Cannot resume"):
        other.load_checkpoint(tmp_path / "junk.npz")


def test_early_stopping_stops_at_the_generation_all_classes_reach_the_target(target):
    evolver = MapElites(target, DirectEncoding(), population=50, seed=0, classes=[0])
    stopper = EarlyStopping(0.99)
    evolver.run(100, [stopper])
    assert evolver.generation == stopper.stopped_generation < 100
    assert evolver.archive.confidences[0] >= 0.99
    assert evolver.history["min"][-2] < 0.99  # it did not stop late


def _nan_when_a_pixel_is_one():
    """Probabilities as usual, NaN as soon as any pixel is exactly 1.0 (clipped by mutation)."""
    import keras

    inputs = keras.Input((28, 28, 1))
    probs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    poison = keras.layers.Lambda(lambda x: 0.0 * keras.ops.log(1.0 - keras.ops.max(x, axis=(1, 2, 3))))(inputs)
    outputs = keras.layers.Lambda(lambda t: t[0] + t[1][:, None])([probs, poison])
    return keras.Model(inputs, outputs)


def test_nan_stops_at_once_and_keeps_the_last_good_checkpoint(tmp_path):
    evolver = MapElites(Target(_nan_when_a_pixel_is_one()), DirectEncoding(), population=20, seed=0)
    with pytest.raises(NonFiniteError, match="at generation 1;"):
        evolver.run(10, [Checkpoint(tmp_path / "ck.npz", every=1)])
    assert evolver.generation == 0 and np.isfinite(evolver.archive.fitness.numpy()).all()
    saved = np.load(tmp_path / "ck.npz")
    assert int(saved["generation"]) == 0


def test_target_checks_shapes_and_probabilities():
    import keras

    inputs = keras.Input((28, 28, 1))
    logits_model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="logits=True"):
        Target(logits_model)
    probs = Target(logits_model, logits=True)(tf.zeros((3, 28, 28, 1))).numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(32, 32, 1\)"):
        Target("lenet_mnist", image_shape=(32, 32, 1))
    ensemble = Target(["lenet_mnist", "lenet_mnist_b"])
    x = tf.random.stateless_uniform((4, 28, 28, 1), [1, 1])
    expected = (Target("lenet_mnist")(x) + Target("lenet_mnist_b")(x)) / 2
    np.testing.assert_allclose(ensemble(x).numpy(), expected.numpy(), atol=1e-6)


def test_a_killed_checkpoint_write_leaves_the_previous_one_readable(tmp_path):
    """kill -9 a process that rewrites a large checkpoint in a loop; the file always loads whole."""
    script = (
        "import sys, numpy as np\n"
        "from keras_fool.io import save_npz\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    save_npz(sys.argv[1], generation=np.array(i), genomes=np.full((200, 28, 28, 10), i, np.float32))\n"
        "    print(i, flush=True)\n"
    )
    path = tmp_path / "checkpoint.npz"
    from keras_fool.io import load_npz

    for delay in (0.3, 0.45, 0.6):
        proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "1"  # at least one complete write
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        arrays = load_npz(path, required=("generation", "genomes"))
        assert np.all(arrays["genomes"] == arrays["generation"])  # one complete version, not a mix
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "checkpoint.npz"]
    # A killed writer may leave its temporary file; it never replaces the checkpoint, and the
    # next run's Checkpoint callback clears it away.
    assert all(name.startswith(".checkpoint.npz.") and name.endswith(".tmp") for name in leftovers)
    (tmp_path / ".checkpoint.npz.abc123.tmp").write_bytes(b"half")
    from keras_fool.evolution import Checkpoint

    Checkpoint(path).on_run_begin()
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]
