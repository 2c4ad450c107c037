"""NES, the query-only gradient-estimate search: on the real LeNet, over pixels and over CPPN weights."""

import io

import numpy as np
import pytest
import tensorflow as tf

from keras_fool.encodings import CPPNEncoding, DirectEncoding
from keras_fool.errors import ResumeError
from keras_fool.evolution import NES
from keras_fool.evolution.callbacks import ProgressBar
from keras_fool.evolution.nes import generations_within
from keras_fool.evolution.outputs import load_archive, write_outputs
from keras_fool.target import BaseTarget, Target


@pytest.fixture(scope="module")
def lenet():
    return Target("lenet_mnist")


def test_pixel_nes_raises_every_class_from_grey_and_counts_its_queries(lenet):
    nes = NES(lenet, DirectEncoding((28, 28, 1)), seed=0, resolution=7, samples=10, class_target=1.0)
    nes.trace()  # generation 0: the grey image
    start = nes.archive.confidences.copy()
    nes.run(8)
    assert nes.evaluations == 1 + 8 * 10 * 11  # one grey image, then 10 classes x (10 candidates + the point)
    assert generations_within(nes, nes.evaluations) == 8 and generations_within(nes, nes.evaluations - 1) == 7
    assert generations_within(nes, 1) == 0
    assert np.all(nes.archive.confidences > start)  # every class gained on its grey start
    assert np.median(nes.archive.confidences) > 0.9
    # The elites are the images whose probabilities the archive records.
    scored = lenet.predict(nes.images())[np.arange(10), nes.archive.labels]
    np.testing.assert_allclose(scored, nes.archive.confidences, atol=1e-5)
    assert nes.images().shape == (10, 28, 28, 1) and 0.0 <= nes.images().min() and nes.images().max() <= 1.0


def test_cppn_nes_searches_the_weights_of_grown_topologies_only(lenet):
    nes = NES(lenet, CPPNEncoding((28, 28, 1)), classes=[0, 1, 2], seed=1, samples=6, pool=12, grow=6)
    nes.trace()
    topology = {k: v.numpy() for k, v in nes.topology.items()}
    assert topology["alive"].sum(axis=1).max() > 4 + 1  # grown: hidden nodes beyond the inputs and the output
    before = nes.theta.numpy()
    nes.run(3)
    after = nes.theta.numpy()
    moved = np.abs(after - before) > 0
    assert moved.any() and not moved[~topology["connected"]].any()  # only existing connections' weights move
    nes.encoding.validate({k: v.numpy() for k, v in nes.archive.genomes.items()})
    assert nes.evaluations == 12 + 3 * 3 * 7


def _resumes_exactly(lenet, options, stop, end, folder, before_load=None):
    """A search stopped at ``stop``, checkpointed and resumed to ``end`` equals one run straight to ``end``; a search
    with other ``options`` refuses the checkpoint. Returns the first half's search."""
    straight = NES(lenet, DirectEncoding((28, 28, 1)), **options)
    straight.run(end)
    first = NES(lenet, DirectEncoding((28, 28, 1)), **options)
    first.run(stop)
    first.save_checkpoint(folder / "checkpoint.npz")
    resumed = NES(lenet, DirectEncoding((28, 28, 1)), **options)
    if before_load is not None:
        before_load(resumed)
    resumed.load_checkpoint(folder / "checkpoint.npz")
    assert resumed.generation == stop and resumed.evaluations == first.evaluations
    resumed.run(end)
    np.testing.assert_allclose(resumed.theta.numpy(), straight.theta.numpy(), atol=1e-5)
    np.testing.assert_allclose(resumed.archive.fitness.numpy(), straight.archive.fitness.numpy(), atol=1e-6)
    return first


def test_a_resumed_search_equals_an_uninterrupted_one(lenet, tmp_path):
    options = dict(classes=[3, 5], seed=4, resolution=7, samples=4)
    _resumes_exactly(lenet, options, 3, 6, tmp_path)
    other = NES(lenet, DirectEncoding((28, 28, 1)), **{**options, "samples": 6})
    with pytest.raises(ResumeError, match="different samples"):
        other.load_checkpoint(tmp_path / "checkpoint.npz")


def test_outputs_are_evolves_format(lenet, tmp_path):
    nes = NES(lenet, DirectEncoding((28, 28, 1)), classes=[7], seed=0, resolution=4, samples=2)
    nes.run(2)
    summary = write_outputs(nes, tmp_path)
    assert summary["config"]["method"] == "nes" and summary["evaluations"] == 1 + 2 * 3
    archive = load_archive(tmp_path / "archive.npz")
    np.testing.assert_allclose(archive["confidences"], nes.archive.confidences)


class _Queried(BaseTarget):
    """A query-only view of a target that counts the images it scores eagerly (generation 0 runs eagerly)."""

    def __init__(self, inner):
        self.inner, self.scored = inner, 0
        self.image_shape, self.num_classes, self.class_names = inner.image_shape, inner.num_classes, inner.class_names

    def __call__(self, images):
        if tf.executing_eagerly():
            self.scored += int(images.shape[0])
        return self.inner(images)

    def get_config(self):
        return {"queried": self.inner.get_config()}


def test_a_surrogate_gives_each_class_its_start_and_the_target_is_only_queried(lenet):
    surrogate = Target("lenet_mnist_b")  # another LeNet trained on MNIST: same images and classes
    options = dict(seed=0, resolution=7, samples=4, class_target=1.0)
    grey = NES(lenet, DirectEncoding((28, 28, 1)), **options)
    grey.trace()
    queried = _Queried(lenet)
    nes = NES(queried, DirectEncoding((28, 28, 1)), surrogate=surrogate, surrogate_steps=10, **options)
    nes.trace()
    # Generation 0 scores one start per class on the target; the 10 climbing steps only query the surrogate.
    assert queried.scored == nes.evaluations == nes.first_evaluations == 10
    assert generations_within(nes, 10 + 2 * 10 * 5) == 2
    start = nes.archive.confidences
    assert np.median(grey.archive.confidences) < 0.1 and np.median(start) > 0.9  # the starts transfer
    np.testing.assert_allclose(nes.theta.numpy(), nes.surrogate_start().numpy(), atol=1e-5)  # each class its own climb
    labels = nes.archive.labels
    assert np.all(surrogate.predict(nes.images())[np.arange(10), labels] > 0.99)  # the surrogate was climbed
    np.testing.assert_allclose(lenet.predict(nes.images())[np.arange(10), labels], start, atol=1e-5)
    assert nes.get_config()["surrogate"]["models"] == [{"preset": "lenet_mnist_b"}]


def test_a_resumed_search_with_a_surrogate_equals_an_uninterrupted_one_without_climbing_again(lenet, tmp_path):
    options = dict(classes=[2, 6], seed=3, resolution=7, samples=4, class_target=1.0,
                   surrogate=Target("lenet_mnist_b"), surrogate_steps=3)

    def no_climb(resumed):
        resumed.surrogate_start = lambda: pytest.fail("a restored search climbed the surrogate again")

    first = _resumes_exactly(lenet, options, 2, 4, tmp_path, before_load=no_climb)
    assert first.evaluations == 2 + 2 * 2 * 5  # each class's start, then 2 generations of 2 x (4 + 1)
    other = NES(lenet, DirectEncoding((28, 28, 1)), **{**options, "surrogate_steps": 4})
    with pytest.raises(ResumeError, match="surrogate_steps"):
        other.load_checkpoint(tmp_path / "checkpoint.npz")


def test_the_surrogates_jitter_shifts_its_images_by_the_seed_and_the_step(lenet):
    surrogate = Target("lenet_mnist_b")

    def start(seed, jitter):
        nes = NES(lenet, DirectEncoding((28, 28, 1)), classes=[4, 9], seed=seed, resolution=7, surrogate=surrogate,
                  surrogate_steps=3, surrogate_jitter=jitter)
        return nes.surrogate_start().numpy()

    still, jittered = start(0, 0), start(0, 3)
    assert not np.allclose(still, jittered, atol=1e-4)  # the shifted images give other gradients
    np.testing.assert_array_equal(jittered, start(0, 3))  # the same seed, the same shifts
    assert not np.allclose(jittered, start(1, 3), atol=1e-4)
    np.testing.assert_array_equal(still, start(1, 0))  # without jitter the start does not depend on the seed
    with pytest.raises(ValueError, match="surrogate_jitter"):
        NES(lenet, DirectEncoding((28, 28, 1)), surrogate=surrogate, surrogate_jitter=-1)


def test_a_surrogate_that_cannot_serve_is_refused(lenet):
    import keras

    with pytest.raises(ValueError, match="NES over CPPN weights takes none"):
        NES(lenet, CPPNEncoding((28, 28, 1)), surrogate=Target("lenet_mnist_b"))
    with pytest.raises(ValueError, match="answers queries only"):
        NES(lenet, DirectEncoding((28, 28, 1)), surrogate=_Queried(Target("lenet_mnist_b")))
    inputs = keras.Input((28, 28, 1))
    five = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="5 classes and 1 channels, the target 10 and 1"):
        NES(lenet, DirectEncoding((28, 28, 1)), surrogate=Target(five))
    with pytest.raises(TypeError, match="surrogate must be a keras_fool target"):
        NES(lenet, DirectEncoding((28, 28, 1)), surrogate="lenet_mnist_b")


def test_bad_options_are_refused(lenet):
    with pytest.raises(ValueError, match="samples must be even"):
        NES(lenet, DirectEncoding((28, 28, 1)), samples=5)
    with pytest.raises(TypeError, match="DirectEncoding or a CPPNEncoding"):
        NES(lenet, "direct")
    with pytest.raises(ValueError, match="encoding makes"):
        NES(lenet, DirectEncoding((32, 32, 1)))
    with pytest.raises(ValueError, match="resolution"):
        NES(lenet, DirectEncoding((28, 28, 1)), resolution=29)


def test_scoring_classes_in_groups_changes_nothing_and_a_class_at_its_target_costs_no_more_queries(lenet):
    options = dict(classes=[1, 2, 8], seed=2, resolution=7, samples=4, class_target=1.0)
    together = NES(lenet, DirectEncoding((28, 28, 1)), eval_batch_size=64, **options)
    apart = NES(lenet, DirectEncoding((28, 28, 1)), eval_batch_size=5, **options)  # one class per call
    assert (together.group_size, apart.group_size) == (12, 1)
    together.run(3)
    apart.run(3)
    np.testing.assert_allclose(apart.theta.numpy(), together.theta.numpy(), atol=1e-5)
    np.testing.assert_allclose(apart.archive.fitness.numpy(), together.archive.fitness.numpy(), atol=1e-6)

    stopping = NES(lenet, DirectEncoding((28, 28, 1)), spend_all=False, **{**options, "class_target": 0.5})
    stopping.run(4)
    reached = stopping.archive.fitness.numpy() >= 0.5
    assert reached.any() and stopping.evaluations < 1 + 4 * 3 * 5  # the classes at 50% were searched no more


def test_spending_all_gives_the_queries_of_stopped_classes_to_the_others_within_the_same_budget(lenet):
    options = dict(classes=[1, 2, 8], seed=2, resolution=7, samples=4, class_target=0.5)
    stopping = NES(lenet, DirectEncoding((28, 28, 1)), spend_all=False, **options)
    stopping.run(4)
    spending = NES(lenet, DirectEncoding((28, 28, 1)), **options)  # spend_all is the default
    assert spending.budget_of(4) == 1 + 4 * 3 * 5
    shown = io.StringIO()
    spending.run(4, callbacks=[ProgressBar(shown)])
    assert "generation 4/4 " in shown.getvalue() and f"generation {spending.generation} (past 4) " in shown.getvalue()
    active = int((spending.archive.fitness.numpy() < 0.5).sum())
    assert spending.generation > 4 and spending.evaluations <= spending.budget_of(4)
    assert active == 0 or spending.evaluations + active * 5 > spending.budget_of(4)  # no further generation fits
    assert np.all(spending.archive.fitness.numpy() >= stopping.archive.fitness.numpy())  # it went on from there
    assert spending.get_config()["spend_all"] is True and "spend_all" not in stopping.get_config()
    with pytest.raises(TypeError, match="spend_all must be True or False"):
        NES(lenet, DirectEncoding((28, 28, 1)), spend_all="yes")


def test_a_runs_stop_confidence_stops_each_class_there_as_the_class_target_does(lenet):
    from keras_fool.evolution.callbacks import EarlyStopping

    options = dict(classes=[1, 2, 8], seed=2, resolution=7, samples=4, spend_all=False)
    by_target = NES(lenet, DirectEncoding((28, 28, 1)), **options, class_target=0.5)
    by_target.run(4)
    by_stop = NES(lenet, DirectEncoding((28, 28, 1)), **options)  # class_target stays 99.99%
    by_stop.run(4, callbacks=[EarlyStopping(0.5)])
    assert by_stop.evaluations == by_target.evaluations < 1 + 4 * 3 * 5  # classes at 50% were searched no more
    np.testing.assert_allclose(by_stop.archive.fitness.numpy(), by_target.archive.fitness.numpy(), atol=1e-6)
    unstopped = NES(lenet, DirectEncoding((28, 28, 1)), **options)
    unstopped.run(by_stop.generation)
    assert unstopped.evaluations == 1 + by_stop.generation * 3 * 5  # without the stop every class goes on
