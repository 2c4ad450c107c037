"""The LeNets people are compared with (imports TensorFlow).

The paper compares people with 20 LeNets. The zoo ships six, same architecture and recipe,
different seeds (``lenet_mnist``, ``lenet_mnist_b`` ... ``lenet_mnist_f``); more are trained on
demand with the zoo's LeNet recipe and seeds 101, 102, ... and cached in
``$KERAS_FOOL_HOME/human_study/lenets/`` (about 5 minutes each on two CPU cores).

Each LeNet is scored two ways on the image set, per condition:

- ``shown``: the very images people see (8-bit). The FGSM ones were made against the study's
  LeNet (``lenet_mnist``), so for the other LeNets they are a transfer attack.
- ``own_fgsm``: FGSM at the same eps on the same clean digits, but against the LeNet being
  scored (white box, the setting of the paper's robustness experiments), rounded to 8 bits the
  same way. On clean and Gaussian images it equals ``shown``.
"""

from __future__ import annotations

import numpy as np

from keras_fool.validation import check_int

__all__ = ["ZOO_LENETS", "EXTRA_SEED_BASE", "lenet_models", "lenet_accuracies"]

ZOO_LENETS = ("lenet_mnist", "lenet_mnist_b", "lenet_mnist_c", "lenet_mnist_d", "lenet_mnist_e", "lenet_mnist_f")
EXTRA_SEED_BASE = 100
MAX_LENETS = 20


def lenet_models(count=len(ZOO_LENETS), train_steps=None, verbose=False):
    """``count`` LeNets: the zoo's six first, then extra seeds trained on demand and cached.

    Args:
        count: 1 to 20 (the paper used 20).
        train_steps: train the extra LeNets for only this many SGD steps (for tests; cached
            separately from fully trained ones). None trains with the full recipe.
        verbose: print a line per extra LeNet trained.

    Returns:
        A list of ``(name, keras.Model)``.
    """
    from keras_fool import zoo
    from keras_fool.data import cache_dir

    count = check_int("lenets", count, minimum=1, maximum=MAX_LENETS)
    if train_steps is not None:
        train_steps = check_int("train_steps", train_steps)
    models = [(name, zoo.load_model(name)) for name in ZOO_LENETS[:count]]
    for k in range(count - len(models)):
        seed = EXTRA_SEED_BASE + k + 1
        folder = cache_dir() / "human_study" / "lenets" / (
            f"seed-{seed}" if train_steps is None else f"seed-{seed}-steps-{train_steps}")
        weights = folder / "lenet_mnist.weights.npz"
        if not weights.is_file():
            from keras_fool.training import train_preset

            if verbose:
                print(f"Training an extra LeNet (seed {seed}) into {folder} ...", flush=True)
            train_preset("lenet_mnist", seed=seed, out=folder, max_steps=train_steps, verbose=0)
        model = zoo.load_weights(zoo.build_model("lenet_mnist"), weights)
        models.append((f"lenet_mnist@seed{seed}" + ("" if train_steps is None else f"({train_steps} steps)"), model))
    return models


def _predict(model, x, batch_size=1000):
    import tensorflow as tf

    parts = [np.asarray(model(tf.constant(x[i:i + batch_size]), training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).argmax(axis=1)


def lenet_accuracies(image_set, models):
    """Accuracy of each LeNet on each condition of the image set, both ways (see the module docstring).

    Returns:
        A list of dicts ``model``, ``condition_index``, ``shown``, ``own_fgsm``, one per model and condition.
    """
    from keras_fool.attacks import FastGradientSign
    from keras_fool.human_study.images import quantize, quiet_retracing

    clean = image_set.floats(image_set.noise.index("clean"))
    labels = image_set.labels
    rows = []
    with quiet_retracing():
        for name, model in models:
            for k, (noise, level) in enumerate(zip(image_set.noise, image_set.levels)):
                shown = float(np.mean(_predict(model, image_set.floats(k)) == labels))
                own = shown
                if noise == "fgsm":
                    attacked = quantize(FastGradientSign(level).generate(model, clean, labels))
                    own = float(np.mean(_predict(model, attacked[..., None].astype(np.float32) / 255.0) == labels))
                rows.append({"model": name, "condition_index": k, "shown": shown, "own_fgsm": own})
    return rows
