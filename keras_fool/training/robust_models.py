"""Trainers of the models in Uličný et al.'s Table 2, shared by the zoo and the robustness experiment.

Each trainer takes its step counts explicitly, so that ``keras-fool experiment robustness --quick``
trains small versions of the models into its own cache while the zoo presets (``dae_mnist``,
``lenet_mnist_adversarial_committee``, ``lenet_mnist_pgd``) train the paper-sized ones once with
the numbers of their recorded recipe and keep them in the zoo cache.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_fool import zoo
from keras_fool.attacks import GradientScaledSign, ProjectedGradientDescent
from keras_fool.data import load_mnist
from keras_fool.defenses import build_denoising_autoencoder, compile_denoising_autoencoder
from keras_fool.training.adversarial import train_adversarial_committee
from keras_fool.training.loops import adversarial_slots
from keras_fool.training.outlier_exposure import OutlierExposure

__all__ = [
    "train_adversarial_committee_model",
    "train_dae",
    "train_outlier_exposure_model",
    "train_pgd_model",
    "train_preset_with_trainer",
    "train_steps",
]


def _progress_chunk(steps, most=1000):
    """The largest divisor of ``steps`` up to ``most``, so that long runs report progress every chunk."""
    return max((d for d in range(1, min(steps, most) + 1) if steps % d == 0), default=1)


def train_steps(model, x, y, steps, seed, batch_size=64, verbose=0):
    """``model.fit`` for exactly ``steps`` batches drawn from a seeded, repeated shuffle of (x, y).

    Long runs are cut into "epochs" of up to 1,000 steps (the same batches, one iterator) so that
    ``verbose`` output shows progress.
    """
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat().batch(batch_size)
    chunk = _progress_chunk(steps)
    if chunk < 100:  # an awkward count: one epoch rather than many tiny ones
        chunk = steps
    model.fit(dataset, steps_per_epoch=chunk, epochs=steps // chunk, shuffle=False, verbose=verbose)
    return model


def train_dae(x_train, recipe, seed, verbose=0):
    """The denoising autoencoder of Uličný et al., trained for ``recipe["steps"]`` Nesterov steps."""
    keras.utils.set_random_seed(seed)
    model = build_denoising_autoencoder(corruption=recipe["corruption"], name="dae_mnist")
    compile_denoising_autoencoder(model, learning_rate=recipe["learning_rate"], momentum=recipe["momentum"])
    return train_steps(model, x_train, x_train, recipe["steps"], seed, batch_size=recipe["batch_size"],
                       verbose=verbose)


def _fine_tune_optimizer(recipe):
    """SGD with momentum at ``recipe["learning_rate"]``, times ``decay_factor`` from step ``decay_at`` if given."""
    def make():
        rate = recipe["learning_rate"]
        if recipe.get("decay_at"):
            rate = keras.optimizers.schedules.PiecewiseConstantDecay(
                [recipe["decay_at"]], [rate, rate * recipe["decay_factor"]])
        return keras.optimizers.SGD(learning_rate=rate, momentum=recipe["momentum"])
    return make


def _base_with_weight_decay(recipe):
    """The shipped base LeNet, rebuilt with the L2 weight decay it was trained with."""
    base = zoo.get_preset(recipe["base"])
    model = zoo.build_model(base, weight_decay=base.recipe["weight_decay"])
    return zoo.load_weights(model, zoo.shipped_weights_path(base), base.weights_sha256)


def train_adversarial_committee_model(x_train, y_train, recipe, seed, verbose=0):
    """Adversarial training in stages on eq. 3 examples (Uličný et al.); returns the committee of snapshots.

    The base model is the shipped preset ``recipe["base"]``; its snapshot is the committee's first
    member and the model after the last stage is its last (the "adversarial training" row).
    """
    result = train_adversarial_committee(
        _base_with_weight_decay(recipe), x_train, y_train, stages=recipe["stages"],
        steps_per_stage=recipe["steps_per_stage"], attack=GradientScaledSign(**recipe["attack"]),
        pool_size=recipe["pool_size"], optimizer=_fine_tune_optimizer(recipe), seed=seed, verbose=verbose)
    return result.committee


def train_pgd_model(x_train, y_train, recipe, seed, verbose=0):
    """Madry et al.'s PGD adversarial training, fine-tuning the base preset (beyond the paper).

    Every batch's adversarial share (``recipe["adversarial_fraction"]``, half by default) is made
    from the current weights by ``recipe["attack_steps"]`` steps of PGD of radius ``recipe["eps"]``
    and step ``step_fraction * eps / attack_steps`` from a random start, every step taken (no early
    stop: the strongest examples in the ball, as Madry et al. train on).
    """
    eps, steps = recipe["eps"], recipe["attack_steps"]
    attack = ProjectedGradientDescent(eps=eps, step_size=recipe["step_fraction"] * eps / steps, steps=steps, seed=seed,
                                      early_stop=False)
    result = train_adversarial_committee(
        _base_with_weight_decay(recipe), x_train, y_train, stages=1, steps_per_stage=recipe["steps"], attack=attack,
        online=True, adversarial_fraction=recipe.get("adversarial_fraction", 0.5),
        optimizer=_fine_tune_optimizer(recipe), seed=seed, verbose=verbose)
    return result.snapshots[-1]


def train_outlier_exposure_model(x_train, y_train, recipe, seed, verbose=0):
    """Outlier exposure (Hendrycks et al. 2019) fine-tuning the base preset (beyond the papers).

    A plain ``model.fit`` with :class:`~keras_fool.training.OutlierExposure`: ``recipe["epochs"]``
    epochs of ``recipe["steps_per_epoch"]`` steps; noise outliers from the start and
    ``images_per_round`` fooling images evolved against the current weights after every epoch but the last.
    An epoch is one pass over the natural images of the callback's ``PyDataset`` (``fit`` does not
    start it again within a run), so fewer steps per epoch than a pass over all training images
    train on a seeded subset of them.
    """
    natural = recipe["batch_size"] - adversarial_slots(recipe["batch_size"], recipe["outlier_fraction"])
    if recipe["steps_per_epoch"] * natural < len(x_train):
        keep = np.random.default_rng(seed).permutation(len(x_train))[: recipe["steps_per_epoch"] * natural]
        x_train, y_train = x_train[keep], y_train[keep]
    keras.utils.set_random_seed(seed)
    model = _base_with_weight_decay(recipe)
    model.compile(optimizer=_fine_tune_optimizer(recipe)(), loss="categorical_crossentropy",
                  metrics=["categorical_accuracy"])
    callback = OutlierExposure(
        x_train, y_train, outliers=recipe["outliers"], weight=recipe["weight"], every=1,
        images_per_round=recipe["images_per_round"], encoding=tuple(recipe["encodings"]),
        generations=recipe["generations"],
        population=recipe["population"], noise=recipe["noise"], batch_size=recipe["batch_size"],
        outlier_fraction=recipe["outlier_fraction"], seed=seed, verbose=verbose)
    model.fit(callback.batches, epochs=recipe["epochs"], callbacks=[callback], verbose=verbose)
    return model


_TRAINERS = {
    "dae": lambda x, y, recipe, seed, verbose: train_dae(x, recipe, seed, verbose),
    "adversarial_committee": train_adversarial_committee_model,
    "pgd": train_pgd_model,
    "outlier_exposure": train_outlier_exposure_model,
}


def train_preset_with_trainer(preset, seed, max_steps=None, verbose=0):
    """Train a zoo preset whose recipe names a ``trainer`` (not the plain LeNet recipe).

    Args:
        preset: a :class:`~keras_fool.zoo.Preset` with ``recipe["trainer"]`` in ``dae``,
            ``adversarial_committee``, ``pgd`` or ``outlier_exposure``.
        seed: random seed.
        max_steps: cap every training phase at this many steps (for quick trials and tests).
        verbose: Keras progress output.

    Returns:
        The trained ``keras.Model``.
    """
    recipe = dict(preset.recipe)
    if max_steps is not None:
        for key in ("steps", "steps_per_stage", "steps_per_epoch", "generations"):
            if key in recipe:
                recipe[key] = min(recipe[key], max_steps)
        for key in ("pool_size", "images_per_round", "noise"):  # the extra examples made per stage or round
            if key in recipe:
                recipe[key] = min(recipe[key], 10 * max_steps)
    (x_train, y_train), _ = load_mnist()
    return _TRAINERS[recipe["trainer"]](x_train, y_train, recipe, seed, verbose)
