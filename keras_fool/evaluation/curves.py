"""Error-vs-distortion curves (Uličný, Lundström & Byttner) and reading values off them.

A robustness curve is a model's test error on ``L`` perturbed copies of a test set at increasing
noise strength (``eps`` for gradient-sign noise, ``sigma`` for Gaussian noise), plotted against
the distortion each copy really has (the paper's eq. 2). :func:`robustness_curves` computes them
for any set of models and both noise types; :meth:`RobustnessCurves.error_at` reads the error at
given distortions off each curve by linear interpolation (Table 2's columns). A curve set can
carry the worst case of the same models at a few distortions
(:class:`~keras_fool.evaluation.worst_case.WorstCaseResult`, attached with :meth:`with_worst_case`),
which Table 2 shows beside the FGSM column. Tables, CSV files and figures of curves are in
:mod:`keras_fool.experiments.robustness`.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import keras
import numpy as np
import tensorflow as tf

from keras_fool.attacks import loss_gradient
from keras_fool.attacks.base import as_keras_model
from keras_fool.validation import check_images, check_int, check_labels, check_number, check_seed

__all__ = [
    "DEFAULT_MAX_STRENGTH",
    "NOISE_TITLES",
    "NOISE_TYPES",
    "RobustnessCurves",
    "robustness_curves",
]

NOISE_TYPES = ("gradient_sign", "gaussian")
NOISE_TITLES = {"gradient_sign": "Gradient-sign noise (FGSM)", "gaussian": "Gaussian noise"}
# Strengths up to these give distortions up to about 0.3 on MNIST, beyond the paper's 0.2.
DEFAULT_MAX_STRENGTH = {"gradient_sign": 0.6, "gaussian": 0.9}


@dataclasses.dataclass
class RobustnessCurves:
    """Error and distortion of M models under T noise types at L strengths.

    Attributes:
        models: the M model names.
        noise_types: the T noise types (from :data:`NOISE_TYPES`).
        strengths: float array (T, L): ``eps`` or ``sigma`` of each level.
        distortion: float array (M, T, L): the measured eq. 2 distortion of each perturbed set.
        error: float array (M, T, L): the error rate (fraction, not %) on each perturbed set.
        num_images: the number of test images behind every point.
        worst_case: None, or the :class:`~keras_fool.evaluation.worst_case.WorstCaseResult` of
            (some of) the same models: per-image errors under a set of attacks at a few distortions.
    """

    models: tuple
    noise_types: tuple
    strengths: np.ndarray
    distortion: np.ndarray
    error: np.ndarray
    num_images: int
    worst_case: object = None

    def with_worst_case(self, worst_case):
        """The same curves carrying ``worst_case`` (a ``WorstCaseResult`` of models among :attr:`models`).

        Raises:
            ValueError: it holds a model these curves do not.
        """
        unknown = sorted(set(worst_case.models) - set(self.models))
        if unknown:
            raise ValueError(f"worst_case must be of models among the curves' {list(self.models)}. "
                             f"Received: {unknown}")
        return dataclasses.replace(self, worst_case=worst_case)

    def worst_case_error_at(self, distortions):
        """Each model's worst-case error at the given distortions: float array (M, D), NaN where not evaluated."""
        result = np.full((len(self.models), len(distortions)), np.nan)
        if self.worst_case is not None:
            values = self.worst_case.error_at(distortions)
            for i, name in enumerate(self.worst_case.models):
                result[self.models.index(name)] = values[i]
        return result

    def error_at(self, distortions, noise_type="gradient_sign"):
        """Each model's error at the given distortions, interpolated linearly along its curve.

        Args:
            distortions: sequence of D distortion values.
            noise_type: which curves to read.

        Returns:
            float array (M, D); NaN where a curve does not reach the distortion.

        Raises:
            ValueError: an unknown noise type.
        """
        if noise_type not in self.noise_types:
            raise ValueError(f"noise_type must be one of {self.noise_types}. Received: noise_type={noise_type!r}")
        t = self.noise_types.index(noise_type)
        targets = np.asarray(distortions, dtype=np.float64)
        result = np.full((len(self.models), len(targets)), np.nan)
        for m in range(len(self.models)):
            dist, error = self.distortion[m, t], self.error[m, t]
            order = np.argsort(dist, kind="stable")
            dist, error = dist[order], error[order]
            dist, first = np.unique(dist, return_index=True)  # ties: keep the weakest level's error
            error = error[first]
            inside = (targets >= dist[0] - 1e-12) & (targets <= dist[-1] + 1e-12)
            result[m, inside] = np.interp(targets[inside], dist, error)
        return result


def _curve_function(model, noise_type, from_logits, gradient_model=None):
    """A tf.function (x, y, strengths, seed) -> (wrong counts (L,), summed |change| (L,)) for one batch.

    The gradient-sign direction comes from ``gradient_model`` if given (a gray-box attack), else
    from ``model`` itself.
    """
    @functools.partial(tf.function, autograph=False)
    def counts(x, y, strengths, seed):
        if noise_type == "gradient_sign":
            direction = tf.sign(loss_gradient(gradient_model or model, x, y, from_logits))
        else:
            direction = tf.random.stateless_normal(tf.shape(x), seed=seed)

        def one_level(strength):
            perturbed = tf.clip_by_value(x + strength * direction, 0.0, 1.0)
            predicted = tf.argmax(model(perturbed, training=False), axis=-1, output_type=tf.int32)
            wrong = tf.reduce_sum(tf.cast(predicted != y, tf.int32))
            return wrong, tf.reduce_sum(tf.abs(perturbed - x))

        return tf.map_fn(one_level, strengths, fn_output_signature=(tf.int32, tf.float32))

    return counts


def _check_models(models):
    if isinstance(models, keras.Model):
        models = [models]
    if isinstance(models, dict):
        items = list(models.items())
    elif isinstance(models, (list, tuple)):
        items = [(getattr(m, "name", str(i)), m) for i, m in enumerate(models)]
    else:
        raise TypeError(
            f"models must be a dict of name -> keras.Model or a list of models. Received: {type(models).__name__}"
        )
    if not items:
        raise ValueError("models must hold at least one model. Received: no model")
    names = [name for name, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique. Received: {names}")
    for name, model in items:
        if not isinstance(model, keras.Model) and not callable(getattr(model, "keras_model", None)):
            raise TypeError(f"models[{name!r}] must be a keras.Model or a target. Received: {type(model).__name__}")
    return [(name, as_keras_model(model)) for name, model in items]  # a target gives its keras_model()


def _check_levels(noise_types, num_levels, max_strength, levels):
    if isinstance(noise_types, str):
        noise_types = (noise_types,)
    noise_types = tuple(noise_types)
    unknown = [n for n in noise_types if n not in NOISE_TYPES]
    if not noise_types or unknown:
        raise ValueError(
            f"noise_types must be a non-empty subset of {NOISE_TYPES}. Received: noise_types={noise_types}"
        )
    if levels is not None:
        rows = [np.asarray(levels[n] if isinstance(levels, dict) else levels, np.float64) for n in noise_types]
        if len({r.shape for r in rows}) != 1 or rows[0].ndim != 1 or rows[0].size == 0:
            raise ValueError("levels must give a non-empty 1-D array of the same length for every noise type.")
        for n, r in zip(noise_types, rows):
            if not np.all(np.isfinite(r)) or r.min() < 0:
                raise ValueError(
                    f"levels must be finite and non-negative. Received: levels[{n!r}] in [{r.min()}, {r.max()}]"
                )
        return noise_types, np.stack(rows)
    num_levels = check_int("num_levels", num_levels, minimum=2)
    max_strength = {**DEFAULT_MAX_STRENGTH, **(max_strength or {})}
    rows = [np.linspace(0.0, check_number(f"max_strength[{n!r}]", max_strength[n], strict=True), num_levels)
            for n in noise_types]
    return noise_types, np.stack(rows)


def robustness_curves(models, x, y, noise_types=NOISE_TYPES, num_levels=100, max_strength=None, levels=None,
                      seed=0, batch_size=500, from_logits=False, progress=None, gradient_models=None):
    """Error-vs-distortion curves of every model under every noise type.

    For each batch of test images the perturbation direction is computed once — the gradient
    sign of the model under attack (white box: a committee or a stacked defense is attacked as a
    whole) or a standard normal draw (the same for every model, from ``seed``) — and every level
    is ``clip(x + strength * direction, 0, 1)``, evaluated inside one ``tf.function``.

    Args:
        models: dict of name -> ``keras.Model`` or target (a target is attacked through its
            ``keras_model()``), or a list of models named by ``model.name``; each returns class
            probabilities (or logits with ``from_logits``).
        x: test images (N, H, W, C) in [0, 1].
        y: their labels (N,).
        noise_types: any of ``"gradient_sign"`` and ``"gaussian"``.
        num_levels: levels per noise type, evenly spaced from 0 (the paper: 100).
        max_strength: dict noise type -> largest strength; :data:`DEFAULT_MAX_STRENGTH` otherwise.
        levels: explicit strengths instead: a 1-D array, or a dict noise type -> 1-D array.
        seed: seed of the Gaussian noise.
        batch_size: images per batch.
        from_logits: the models output logits.
        progress: optional callable ``progress(model_name, noise_type, seconds)`` after each curve.
        gradient_models: optional dict name -> model whose loss gradient gives the gradient-sign
            direction for the model of that name (a gray-box attack, e.g. the classifier behind a
            pre-processing defense); the other models are attacked through their own gradient.

    Returns:
        A :class:`RobustnessCurves`.

    Raises:
        TypeError, ValueError: bad models, images, labels or levels.
    """
    items = _check_models(models)
    gradient_models = dict(gradient_models or {})
    unknown = sorted(set(gradient_models) - {name for name, _ in items})
    if unknown:
        raise ValueError(f"gradient_models names models that are not in models: {unknown}")
    x = check_images(x)
    y = check_labels(y, len(x))
    noise_types, strengths = _check_levels(noise_types, num_levels, max_strength, levels)
    seed = check_seed(seed)
    batch_size = check_int("batch_size", batch_size)
    for name, model in items:
        if tuple(model.input_shape[1:]) != x.shape[1:]:
            raise ValueError(
                f"models[{name!r}] takes inputs of shape {model.input_shape[1:]}. Received: images {x.shape[1:]}"
            )
        if y.max(initial=0) >= model.output_shape[-1]:
            raise ValueError(f"labels must be classes of models[{name!r}] (0..{model.output_shape[-1] - 1}). "
                             f"Received: labels up to {y.max()}")

    shape = (len(items), len(noise_types), strengths.shape[1])
    wrong, changed = np.zeros(shape, np.int64), np.zeros(shape, np.float64)
    for m, (name, model) in enumerate(items):
        for t, noise_type in enumerate(noise_types):
            start = time.perf_counter()
            function = _curve_function(model, noise_type, from_logits, gradient_models.get(name))
            levels_t = tf.constant(strengths[t], tf.float32)
            for i, begin in enumerate(range(0, len(x), batch_size)):
                xb, yb = tf.constant(x[begin : begin + batch_size]), tf.constant(y[begin : begin + batch_size])
                batch_wrong, batch_changed = function(xb, yb, levels_t, tf.constant([seed, i], tf.int32))
                wrong[m, t] += batch_wrong.numpy()
                changed[m, t] += batch_changed.numpy()
            if progress is not None:
                progress(name, noise_type, time.perf_counter() - start)
    return RobustnessCurves(
        models=tuple(name for name, _ in items),
        noise_types=noise_types,
        strengths=strengths,
        distortion=changed / x.size,
        error=wrong / len(x),
        num_images=len(x),
    )
