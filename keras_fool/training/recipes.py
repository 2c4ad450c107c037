"""Train zoo presets with their recorded recipe."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from keras_fool import zoo
from keras_fool.data import load_mnist
from keras_fool.evaluation.metrics import accuracy
from keras_fool.io import ensure_writable_dir, save_json, sha256_file
from keras_fool.schedules import CaffeInverseDecay
from keras_fool.training.robust_models import train_preset_with_trainer
from keras_fool.validation import check_int, check_number

__all__ = ["compile_with_recipe", "train_preset", "EpochTimer"]


class EpochTimer(keras.callbacks.Callback):
    """Records wall seconds per epoch in ``self.seconds``."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def compile_with_recipe(model, recipe):
    """Compile ``model`` with the SGD + momentum + Caffe ``inv`` schedule of ``recipe``.

    The loss is the cross-entropy of integer labels; a recipe's ``label_smoothing`` (0 when absent)
    trains towards ``1 - s + s / K`` on the label and ``s / K`` on each of the other ``K - 1`` classes.
    """
    if recipe.get("optimizer") != "sgd" or recipe.get("lr_policy") != "inv":
        raise ValueError(f"Only the SGD/inv recipe is implemented. Received: recipe={dict(recipe)}")
    smoothing = check_number("label_smoothing", recipe.get("label_smoothing", 0), maximum=1.0)
    schedule = CaffeInverseDecay(recipe["learning_rate"], recipe["lr_gamma"], recipe["lr_power"])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=recipe["momentum"]),
        loss=_smoothed_sparse_crossentropy(smoothing) if smoothing else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _smoothed_sparse_crossentropy(smoothing):
    """Cross-entropy of integer labels against their one-hot targets smoothed by ``smoothing``
    (Keras smooths one-hot targets only)."""
    def smoothed_sparse_categorical_crossentropy(y_true, y_pred):
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        targets = keras.ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(targets, y_pred, label_smoothing=smoothing)

    return smoothed_sparse_categorical_crossentropy


def train_preset(name, epochs=None, seed=None, out=None, max_steps=None, verbose=1):
    """Train a zoo preset from scratch with its recipe and write its weights.

    Args:
        name: a preset name (see ``keras_fool.zoo.list_presets()``).
        epochs: passes over the 60k training images; the recipe's count by default.
        seed: random seed (weights init and shuffling); the preset's own by default.
        out: folder for ``<name>.weights.npz`` and ``<name>.json``; the zoo cache by default.
        max_steps: stop after this many SGD iterations (for quick trials and tests).
        verbose: Keras progress output (0, 1 or 2).

    Returns:
        A dict report: path, SHA-256, test accuracy and error, seconds per epoch, iterations.
    """
    preset = zoo.get_preset(name)
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps)
    if preset.dataset != "mnist" or preset.converter:
        raise ValueError(f"Preset {preset.name!r} is not trained here: its weights are converted from a published "
                         f"checkpoint on first use. Training is implemented for MNIST presets only.")
    if preset.trainer or preset.members:
        return _train_composite_preset(preset, epochs, seed, out, max_steps, verbose)
    recipe = dict(preset.recipe)
    epochs = recipe["epochs"] if epochs is None else epochs
    seed = preset.seed if seed is None else seed
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer. Received: epochs={epochs!r}")
    out_dir = Path(out) if out is not None else zoo.trained_weights_path(preset).parent
    ensure_writable_dir(out_dir)

    (x_train, y_train), (x_test, y_test) = load_mnist()
    keras.utils.set_random_seed(seed)
    model = zoo.build_model(preset, weight_decay=recipe["weight_decay"])
    compile_with_recipe(model, recipe)
    batch = recipe["batch_size"]
    steps_per_epoch = int(np.ceil(len(x_train) / batch))
    if max_steps is not None and max_steps < steps_per_epoch * epochs:
        # A short run trains on the first max_steps batches of one shuffled pass.
        rng = np.random.default_rng(seed)
        keep = rng.permutation(len(x_train))[: max_steps * batch]
        x_train, y_train, epochs = x_train[keep], y_train[keep], 1
    timer = EpochTimer()
    model.fit(x_train, y_train, batch_size=batch, epochs=epochs, shuffle=True, verbose=verbose, callbacks=[timer])

    test_accuracy = accuracy(model, x_test, y_test)
    weights_path = out_dir / f"{preset.name}.weights.npz"
    zoo.save_weights(model, weights_path)
    report = {
        "preset": preset.name,
        "weights": str(weights_path),
        "weights_sha256": sha256_file(weights_path),
        "test_accuracy": test_accuracy,
        "test_error": 1.0 - test_accuracy,
        "seed": seed,
        "epochs": epochs,
        "iterations": int(model.optimizer.iterations.numpy()),
        "seconds_per_epoch": timer.seconds,
    }
    save_json(out_dir / f"{preset.name}.json", report)
    return report


def _train_composite_preset(preset, epochs, seed, out, max_steps, verbose):
    """``train_preset`` for the robustness suite's presets: a trainer's recipe, or a committee of presets."""
    if epochs is not None:
        raise ValueError(f"Preset {preset.name!r} is not trained in epochs; use max_steps to shorten it.")
    seed = preset.seed if seed is None else seed
    out_dir = ensure_writable_dir(Path(out) if out is not None else zoo.trained_weights_path(preset).parent)
    _, (x_test, y_test) = load_mnist()
    start = time.perf_counter()
    report = {"preset": preset.name, "seed": seed}
    if preset.members:
        # A committee of other presets: train (into the zoo cache) the members that have no weights yet.
        trained = []
        for member in preset.members:
            try:
                zoo.load_model(member)
            except FileNotFoundError:
                train_preset(member, max_steps=max_steps, verbose=verbose)
                trained.append(member)
        model = zoo.load_model(preset.name)
        report.update(members=list(preset.members), trained_members=trained)
    else:
        model = train_preset_with_trainer(preset, seed, max_steps=max_steps, verbose=verbose)
        path = zoo.save_preset_model(preset, model, out_dir / f"{preset.name}{preset.file_suffix}")
        report.update(weights=str(path), weights_sha256=sha256_file(path))
    report["seconds"] = time.perf_counter() - start
    if preset.is_classifier:
        report["test_accuracy"] = accuracy(model, x_test, y_test)
        report["test_error"] = 1.0 - report["test_accuracy"]
    else:  # the DAE: how well it reconstructs clean test images
        reconstruction = model.predict(x_test, batch_size=1000, verbose=0)
        report["test_reconstruction_mse"] = float(np.mean((reconstruction - x_test) ** 2))
    if "weights" in report:
        save_json(out_dir / f"{preset.name}.json", report)
    return report
