"""QueryTarget, the base of deployed-model targets, with a NumPy model behind it."""

import numpy as np
import pytest
import tensorflow as tf

from keras_fool.backends import QueryTarget
from keras_fool.backends.query import preprocess_numpy
from keras_fool.errors import BackendError, GradientsUnavailableError, NonFiniteError, QueryBudgetError
from keras_fool.target import preprocess_pixels


class LinearModel(QueryTarget):
    """A linear classifier in NumPy; ``answer`` can replace its outputs to act out a broken backend."""

    backend = "numpy"

    def __init__(self, shape=(4, 4, 1), classes=3, logits=True, answer=None, fixed_batch=None, **options):
        self.weights = np.random.default_rng(0).normal(size=(int(np.prod(shape)), classes)).astype(np.float32)
        self.as_probabilities = not logits
        self.answer = answer
        self.fixed_batch = fixed_batch
        self.requests = []
        self._setup(shape, logits=logits, **options)

    def _raw_outputs(self, inputs):
        self.requests.append(len(inputs))
        out = inputs.reshape(len(inputs), -1) @ self.weights
        if self.as_probabilities:
            out = np.exp(out - out.max(1, keepdims=True))
            out /= out.sum(1, keepdims=True)
        return out if self.answer is None else self.answer(out)

    def source(self):
        return {"model": "linear"}


def _images(n, shape=(4, 4, 1), seed=1):
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype(np.float32)


def test_scores_are_the_softmax_of_the_models_logits_and_every_image_is_counted():
    target = LinearModel(batch_size=4)
    images = _images(10)
    probabilities = target(images)
    logits = images.reshape(10, -1) @ target.weights
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5)
    assert target.queries == 8 + 10  # the probe, then the images
    assert target.requests[-3:] == [4, 4, 2]  # at most batch_size at a time
    assert target.num_classes == 3 and target.class_names == ["0", "1", "2"]
    assert not target.has_gradients
    with pytest.raises(GradientsUnavailableError):
        target.keras_model()


def test_inside_a_compiled_function_the_scoring_leaves_the_graph():
    target = LinearModel()

    @tf.function
    def best_class(images):
        return tf.argmax(target(images), axis=1)

    images = _images(5)
    np.testing.assert_array_equal(best_class(tf.constant(images)).numpy(), np.argmax(target(images), axis=1))


def test_a_fixed_batch_model_gets_padded_batches_and_only_the_real_images_count():
    target = LinearModel(fixed_batch=4)
    spent = target.queries
    assert target(_images(6)).shape == (6, 3)
    assert target.requests[-2:] == [4, 4]
    assert target.queries == spent + 6


def test_the_query_budget_refuses_a_call_before_sending_anything():
    target = LinearModel(max_queries=12)
    target(_images(4))
    sent = len(target.requests)
    with pytest.raises(QueryBudgetError, match=r"pass the query budget of 12 \(12 spent\)"):
        target(_images(1))
    assert len(target.requests) == sent and target.queries == 12


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
def test_numpy_preprocessing_matches_the_keras_target(mode):
    pixels = _images(2, (3, 3, 3)) * 255.0
    np.testing.assert_allclose(preprocess_numpy(pixels, mode), preprocess_pixels(pixels, mode).numpy(), rtol=1e-5,
                               atol=1e-4)


def test_bad_answers_are_named():
    broken = {"shape": lambda out: out[:, :1]}
    with pytest.raises(BackendError, match="at least two classes"):
        LinearModel(answer=broken["shape"])
    target = LinearModel()
    target.answer = lambda out: np.full_like(out, np.nan)
    with pytest.raises(NonFiniteError, match="NaN"):
        target(_images(2))
    target.answer = lambda out: out[:1]
    with pytest.raises(BackendError, match="answered 2 images with an array of shape .1, 3."):
        target(_images(2))
    target.answer = lambda out: np.concatenate([out, out], axis=1)
    with pytest.raises(BackendError, match="6 scores per image; it had 3 classes"):
        target(_images(2))


def test_probabilities_and_logits_are_told_apart_on_the_probe():
    with pytest.raises(ValueError, match="pass logits=True"):
        LinearModel(logits=False, answer=lambda out: out + 5.0)
    with pytest.raises(ValueError, match="softmax twice"):
        LinearModel(logits=True, answer=lambda out: np.full_like(out, 1.0 / out.shape[1]))


def test_map_elites_evolves_against_a_query_target():
    from keras_fool.encodings import DirectEncoding
    from keras_fool.evolution import MapElites

    target = LinearModel(shape=(4, 4, 1))
    evolver = MapElites(target, DirectEncoding((4, 4, 1)), population=8, seed=0)
    archive = evolver.run(20)
    assert target.queries == 8 + 8 * 21  # the probe, then generations 0..20
    assert archive.confidences.min() > 1.0 / 3.0


@pytest.mark.parametrize("search", ["map-elites", "nes"])
def test_a_backend_failure_inside_a_search_is_raised_as_itself(search):
    from keras_fool.encodings import DirectEncoding
    from keras_fool.evolution import NES, MapElites

    target = LinearModel(shape=(4, 4, 1))

    def fail(out):
        raise BackendError("the server went away")

    evolver = (MapElites(target, DirectEncoding((4, 4, 1)), population=4) if search == "map-elites"
               else NES(target, DirectEncoding((4, 4, 1)), resolution=2, samples=2))
    evolver.run(1)
    target.answer = fail
    with pytest.raises(BackendError, match="the server went away"):
        evolver.run(3)
