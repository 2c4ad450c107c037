"""Error-vs-distortion curves and Table 2 of Uličný, Lundström & Byttner.

A robustness curve is a model's test error on ``L`` perturbed copies of a test set at increasing
noise strength (``eps`` for gradient-sign noise, ``sigma`` for Gaussian noise), plotted against
the distortion each copy really has (the paper's eq. 2). :func:`robustness_curves` computes them
for any set of models and both noise types; :func:`write_curves_csv`, :func:`plot_curves` and
:func:`table_markdown` turn them into the paper's figures and Table 2, where the error at
distortion 0, 0.1 and 0.2 is read off each curve by linear interpolation.

:func:`run_robustness_experiment` is the whole experiment behind ``keras-fool experiment
robustness``: it trains (or reloads) every method of Table 2, computes the curves and writes
the table, the CSVs and the plots.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import time

import numpy as np

from keras_fool.attacks import _check_int, _check_number, _check_seed, check_images, check_labels
from keras_fool.io import atomic_write, ensure_writable_dir, save_json, sha256_file

__all__ = [
    "NOISE_TYPES",
    "PAPER_TABLE2",
    "QUICK_BUDGET",
    "FULL_BUDGET",
    "METHODS",
    "ExperimentBudget",
    "RobustnessCurves",
    "plot_curves",
    "robustness_curves",
    "run_robustness_experiment",
    "table_markdown",
    "write_curves_csv",
    "write_table_csv",
]

NOISE_TYPES = ("gradient_sign", "gaussian")
NOISE_TITLES = {"gradient_sign": "Gradient-sign noise (FGSM)", "gaussian": "Gaussian noise"}
STRENGTH_NAMES = {"gradient_sign": "eps", "gaussian": "sigma"}
# Strengths up to these give distortions up to about 0.3 on MNIST, beyond the paper's 0.2.
DEFAULT_MAX_STRENGTH = {"gradient_sign": 0.6, "gaussian": 0.9}
TABLE_DISTORTIONS = (0.0, 0.1, 0.2)

# Table 2 of the paper: error (%) on FGSM examples at dist = 0 / 0.1 / 0.2.
PAPER_TABLE2 = {
    "no_method": ("No method", (0.83, 73.6, 96.1)),
    "dropout": ("Dropout", (0.91, 35.7, 98.1)),
    "low_pass": ("Low-pass filter", (1.38, 52.0, 95.0)),
    "dae": ("DAE", (1.27, 52.4, 93.2)),
    "low_pass_dropout": ("Low-pass filter + dropout", (2.51, 34.8, 88.5)),
    "dae_dropout": ("DAE + dropout", (1.56, 21.4, 90.3)),
    "standard_committee": ("Standard committee", (0.86, 70.9, 97.2)),
    "adversarial_training": ("Adversarial training after 5 stages", (0.87, 44.5, 92.1)),
    "adversarial_committee": ("Committee of models trained on adv. examples", (0.65, 9.8, 36.5)),
}


# --------------------------------------------------------------------------- curves


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
    """

    models: tuple
    noise_types: tuple
    strengths: np.ndarray
    distortion: np.ndarray
    error: np.ndarray
    num_images: int

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
    import tensorflow as tf

    from keras_fool.attacks import loss_gradient

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
    import keras

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
        if not isinstance(model, keras.Model):
            raise TypeError(f"models[{name!r}] must be a keras.Model. Received: {type(model).__name__}")
    return items


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
    num_levels = _check_int("num_levels", num_levels, minimum=2)
    max_strength = {**DEFAULT_MAX_STRENGTH, **(max_strength or {})}
    rows = [np.linspace(0.0, _check_number(f"max_strength[{n!r}]", max_strength[n], strict=True), num_levels)
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
        models: dict of name -> ``keras.Model`` (or a list of models, named by ``model.name``),
            each returning class probabilities (or logits with ``from_logits``).
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
    import tensorflow as tf

    items = _check_models(models)
    gradient_models = dict(gradient_models or {})
    unknown = sorted(set(gradient_models) - {name for name, _ in items})
    if unknown:
        raise ValueError(f"gradient_models names models that are not in models: {unknown}")
    x = check_images(x)
    y = check_labels(y, len(x))
    noise_types, strengths = _check_levels(noise_types, num_levels, max_strength, levels)
    seed = _check_seed(seed)
    batch_size = _check_int("batch_size", batch_size)
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


# --------------------------------------------------------------------------- files


def write_curves_csv(curves, path):
    """Write every point of the curves as CSV, atomically.

    Columns: ``model, noise_type, level, strength, distortion, error`` (error as a fraction),
    one row per model, noise type and level (M * T * L rows).
    """
    with atomic_write(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["model", "noise_type", "level", "strength", "distortion", "error"])
        for m, model in enumerate(curves.models):
            for t, noise_type in enumerate(curves.noise_types):
                for level, strength in enumerate(curves.strengths[t]):
                    writer.writerow([model, noise_type, level, f"{strength:.6g}",
                                     f"{curves.distortion[m, t, level]:.6g}", f"{curves.error[m, t, level]:.6g}"])


def write_table_csv(curves, path, noise_type="gradient_sign", distortions=TABLE_DISTORTIONS):
    """Write the Table 2 numbers (error in % at each distortion) as CSV, atomically.

    Columns: ``model`` then ``error_pct_at_<d>`` for every distortion; NaN where a curve does not
    reach that distortion.
    """
    values = 100.0 * curves.error_at(distortions, noise_type)
    with atomic_write(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["model"] + [f"error_pct_at_{d:g}" for d in distortions])
        for model, row in zip(curves.models, values):
            writer.writerow([model] + [f"{v:.2f}" for v in row])


def table_markdown(curves, noise_type="gradient_sign", distortions=TABLE_DISTORTIONS, labels=None, reference=None):
    """Table 2 as Markdown: error (%) of each model at each distortion, read off its curve.

    Args:
        curves: a :class:`RobustnessCurves`.
        noise_type: which curves (the paper's Table 2 is gradient-sign noise).
        distortions: the D distortion columns.
        labels: optional dict model name -> row label.
        reference: optional dict model name -> D reference values (e.g. the paper's) shown in
            parentheses after ours.

    Returns:
        The table as a string (a header line, a rule and one line per model). "n/r" marks a
        distortion the curve did not reach.
    """
    values = 100.0 * curves.error_at(distortions, noise_type)
    header = "| Method | " + " | ".join(f"dist={d:g}" for d in distortions) + " |"
    lines = [header, "|---|" + "---:|" * len(distortions)]
    for model, row in zip(curves.models, values):
        cells = []
        for j, value in enumerate(row):
            cell = "n/r" if np.isnan(value) else f"{value:.2f}"
            if reference and model in reference:
                cell += f" ({reference[model][j]:g})"
            cells.append(cell)
        label = (labels or {}).get(model, model)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(curves, path, noise_type="gradient_sign", title=None):
    """Plot error (%) against distortion, one line per model, like the paper's Figures 3-7.

    Draws with Matplotlib's Agg canvas directly (no pyplot, no global backend change) and writes
    the PNG atomically.

    Args:
        curves: a :class:`RobustnessCurves`.
        path: the ``.png`` to write.
        noise_type: which curves.
        title: the plot's title; the noise type's name by default.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if noise_type not in curves.noise_types:
        raise ValueError(f"noise_type must be one of {curves.noise_types}. Received: noise_type={noise_type!r}")
    t = curves.noise_types.index(noise_type)
    figure = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for m, model in enumerate(curves.models):
        axes.plot(curves.distortion[m, t], 100.0 * curves.error[m, t], label=model, linewidth=1.5)
    axes.set_xlabel("average distortion per pixel, dist (eq. 2)")
    axes.set_ylabel("test error (%)")
    axes.set_ylim(0, 100)
    axes.set_xlim(left=0)
    axes.grid(True, alpha=0.3)
    axes.set_title(title or f"{NOISE_TITLES[noise_type]}, {curves.num_images} test images")
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


# --------------------------------------------------------------------------- the experiment


@dataclasses.dataclass(frozen=True)
class ExperimentBudget:
    """How much of Table 2's experiment to run.

    Attributes:
        test_images: MNIST test images behind every curve point (the paper: 10,000).
        levels: levels per curve (the paper: 100).
        dropout_steps: SGD steps of the dropout LeNet (the paper: 40,000 for "All").
        dae_steps: Nesterov steps of the denoising autoencoder (the paper does not say).
        committee_size: members of the standard committee (the paper: 6); the shipped
            ``lenet_mnist`` is the first.
        committee_steps: SGD steps of every further member (Caffe's LeNet recipe, other seeds).
        stages: adversarial training stages (the paper: 5).
        steps_per_stage: SGD steps per stage (the paper: 5000).
        pool_size: training images turned adversarial per stage.
        pgd_steps: SGD steps of PGD adversarial training (beyond the paper).
        pgd_attack_steps: PGD iterations per training example.
        zoo: take the models from the zoo presets (``lenet_mnist_dropout_all``, ``dae_mnist``,
            ``lenet_mnist_committee``, ``lenet_mnist_adversarial_committee``, ``lenet_mnist_pgd``),
            training the missing ones once into the zoo cache with their recipes, instead of
            training models of the sizes above into the output folder. The step counts above
            are then the presets' (see :data:`FULL_BUDGET`).
    """

    test_images: int = 10000
    levels: int = 100
    dropout_steps: int = 40000
    dae_steps: int = 20000
    committee_size: int = 6
    committee_steps: int = 18760
    stages: int = 5
    steps_per_stage: int = 5000
    pool_size: int = 10000
    pgd_steps: int = 5000
    pgd_attack_steps: int = 10
    zoo: bool = False

    def with_train_steps(self, steps):
        """The same budget with every training run cut to ``steps`` steps (for smoke tests); never the zoo's."""
        return dataclasses.replace(self, dropout_steps=steps, dae_steps=steps, committee_steps=steps,
                                   steps_per_stage=steps, pgd_steps=steps, pool_size=min(self.pool_size, 10 * steps),
                                   zoo=False)


ZOO_PRESETS = {
    "dropout": "lenet_mnist_dropout_all",
    "dae": "dae_mnist",
    "standard_committee": "lenet_mnist_committee",
    "adversarial": "lenet_mnist_adversarial_committee",
    "pgd": "lenet_mnist_pgd",
}


def _full_budget():
    """The paper's sizes, read from the zoo presets' recipes (one source of truth)."""
    from keras_fool.zoo.presets import get_preset

    def recipe(key):
        return get_preset(ZOO_PRESETS[key]).recipe

    def iterations(name):  # SGD steps of a preset trained in epochs over the 60,000 MNIST training images
        epochs_recipe = get_preset(name).recipe
        return epochs_recipe["epochs"] * -(-60000 // epochs_recipe["batch_size"])

    members = recipe("standard_committee")["members"]
    return ExperimentBudget(
        dropout_steps=iterations(ZOO_PRESETS["dropout"]),
        dae_steps=recipe("dae")["steps"],
        committee_size=len(members),
        committee_steps=iterations(members[-1]),
        stages=recipe("adversarial")["stages"],
        steps_per_stage=recipe("adversarial")["steps_per_stage"],
        pool_size=recipe("adversarial")["pool_size"],
        pgd_steps=recipe("pgd")["steps"],
        pgd_attack_steps=recipe("pgd")["attack_steps"],
        zoo=True,
    )


FULL_BUDGET = _full_budget()
QUICK_BUDGET = ExperimentBudget(test_images=1000, levels=20, dropout_steps=1500, dae_steps=1500, committee_size=4,
                                committee_steps=600, stages=5, steps_per_stage=200, pool_size=2000, pgd_steps=400,
                                pgd_attack_steps=5)

ROW_LABELS = {key: label for key, (label, _) in PAPER_TABLE2.items()}
ROW_LABELS["pgd_training"] = "PGD adversarial training (beyond the paper)"
METHODS = tuple(ROW_LABELS)  # the rows of Table 2, in the paper's order, then ours


# The pre-processing rows: which row's classifier sits behind the front end.
FRONT_ENDS = {"low_pass": "no_method", "dae": "no_method", "low_pass_dropout": "dropout", "dae_dropout": "dropout"}

# Our choice where the paper gives no number.
LOW_PASS = {"kernel_size": 5, "variance": 1.3, "noise_stddev": 0.1}


def _check_methods(methods):
    if methods is None:
        return METHODS
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown or len(set(methods)) != len(methods):
        raise ValueError(
            f"methods must be distinct names from {', '.join(METHODS)}. Received: methods={list(methods)}"
        )
    return methods


class _ModelCache:
    """Trained models under ``folder`` as ``<name>.keras`` plus ``<name>.json`` (the recipe that made them)."""

    def __init__(self, folder):
        self.folder = ensure_writable_dir(folder)

    def get(self, name, recipe, train):
        import keras

        model_path, recipe_path = self.folder / f"{name}.keras", self.folder / f"{name}.json"
        if model_path.is_file() and recipe_path.is_file():
            try:
                if json.loads(recipe_path.read_text()) == recipe:
                    return keras.saving.load_model(model_path, compile=False, safe_mode=True), True
            except Exception:  # noqa: BLE001 - a damaged cache entry is simply trained again
                pass
        from keras_fool.zoo import save_keras_model

        model = train()
        recipe_path.unlink(missing_ok=True)  # never leave a recipe beside a model it did not make
        save_keras_model(model, model_path)
        save_json(recipe_path, recipe)
        return model, False


def _zoo_model(name):
    """A zoo preset, trained first (into the zoo cache, with its recipe) if it has no weights yet."""
    from keras_fool import zoo
    from keras_fool.training.recipes import train_preset

    try:
        return zoo.load_model(name), True
    except FileNotFoundError:
        train_preset(name, verbose=0)
        return zoo.load_model(name), False


def _build_methods(names, budget, x_train, y_train, seed, cache, log):
    """Train or reload the named methods (and what they need); returns ({name: model}, {part: seconds})."""
    import keras

    from keras_fool import zoo
    from keras_fool.defenses import Committee, LowPassFilter, stack_front_end
    from keras_fool.training import robust_models
    from keras_fool.training.recipes import compile_with_recipe

    lenet_recipe = dict(zoo.get_preset("lenet_mnist").recipe)
    timings = {}

    def timed(key, recipe_for_cache, train):
        """Train (or reload) one model: from the zoo under a zoo budget, else from the experiment's cache."""
        start = time.perf_counter()
        if budget.zoo and key in ZOO_PRESETS:
            name = ZOO_PRESETS[key]
            model, cached = _zoo_model(name)
        else:
            name = key
            model, cached = cache.get(key, recipe_for_cache, train)
        timings[name] = time.perf_counter() - start
        log(f"{name}: {'reloaded' if cached else 'trained'} in {timings[name]:.1f} s")
        return model

    def preset_recipe(key, **overrides):
        return {**zoo.get_preset(ZOO_PRESETS[key]).recipe, **overrides}

    def dropout_lenet():
        keras.utils.set_random_seed(seed)
        model = zoo.build_model("lenet_mnist_dropout_all", weight_decay=lenet_recipe["weight_decay"])
        return robust_models.train_steps(compile_with_recipe(model, lenet_recipe), x_train, y_train,
                                         budget.dropout_steps, seed)

    def committee_member(index):
        def train():
            keras.utils.set_random_seed(seed + index)
            model = zoo.build_model("lenet_mnist", weight_decay=lenet_recipe["weight_decay"],
                                    name=f"lenet_mnist_member_{index}")
            compile_with_recipe(model, lenet_recipe)
            return robust_models.train_steps(model, x_train, y_train, budget.committee_steps, seed + index)
        return train

    # Cached models are reused only if everything that made them is unchanged, base weights included.
    common = {"seed": seed, "lenet_recipe": lenet_recipe,
              "lenet_mnist_sha256": sha256_file(zoo.shipped_weights_path("lenet_mnist"))}
    dae_recipe = preset_recipe("dae", steps=budget.dae_steps)
    adversarial_recipe = preset_recipe("adversarial", stages=budget.stages, steps_per_stage=budget.steps_per_stage,
                                       pool_size=budget.pool_size)
    pgd_recipe = preset_recipe("pgd", steps=budget.pgd_steps, attack_steps=budget.pgd_attack_steps)

    @functools.cache
    def base():
        return zoo.load_model("lenet_mnist")

    @functools.cache
    def dropout_net():
        return timed("dropout", {**common, "steps": budget.dropout_steps,
                                 "architecture": zoo.get_preset("lenet_mnist_dropout_all").architecture},
                     dropout_lenet)

    @functools.cache
    def autoencoder():
        return timed("dae", {**common, **dae_recipe},
                     lambda: robust_models.train_dae(x_train, dae_recipe, seed))

    @functools.cache
    def low_pass():
        return LowPassFilter(**LOW_PASS, seed=seed, name="low_pass_filter")

    @functools.cache
    def adversarial_committee():
        return timed("adversarial", {**common, **adversarial_recipe},
                     lambda: robust_models.train_adversarial_committee_model(x_train, y_train, adversarial_recipe,
                                                                             seed))

    def standard_committee():
        if budget.zoo:
            return timed("standard_committee", None, None)
        members = [base()]
        for index in range(1, budget.committee_size):
            members.append(timed(f"committee_member_{index}", {**common, "steps": budget.committee_steps},
                                 committee_member(index)))
        return Committee(members, name="standard_committee")

    def pgd_model():
        return timed("pgd", {**common, **pgd_recipe},
                     lambda: robust_models.train_pgd_model(x_train, y_train, pgd_recipe, seed))

    builders = {
        "no_method": base,
        "dropout": dropout_net,
        "low_pass": lambda: stack_front_end(low_pass(), base(), name="low_pass"),
        "dae": lambda: stack_front_end(autoencoder(), base(), name="dae"),
        "low_pass_dropout": lambda: stack_front_end(low_pass(), dropout_net(), name="low_pass_dropout"),
        "dae_dropout": lambda: stack_front_end(autoencoder(), dropout_net(), name="dae_dropout"),
        "standard_committee": standard_committee,
        "adversarial_training": lambda: adversarial_committee().members[-1],
        "adversarial_committee": adversarial_committee,
        "pgd_training": pgd_model,
    }
    methods = {name: builders[name]() for name in names}
    behind = {name: builders[classifier]() for name, classifier in FRONT_ENDS.items() if name in names}
    return methods, behind, timings


def _log_to_tensorboard(logdir, curves, table, timings):
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        for m, model in enumerate(curves.models):
            for t, noise_type in enumerate(curves.noise_types):
                for level in range(curves.strengths.shape[1]):
                    tf.summary.scalar(f"error/{noise_type}/{model}", curves.error[m, t, level], step=level)
                    tf.summary.scalar(f"distortion/{noise_type}/{model}", curves.distortion[m, t, level], step=level)
        for name, seconds in timings.items():
            tf.summary.scalar(f"seconds/{name}", seconds, step=0)
        tf.summary.text("table2", table, step=0)
    writer.flush()
    writer.close()


def run_robustness_experiment(out, budget=QUICK_BUDGET, methods=None, logdir=None, seed=0, log=None,
                              gray_box=False):
    """Reproduce Table 2 and Figures 3-7 of Uličný et al. on MNIST.

    Trains (or reloads from ``out/models``, or from the zoo under the full budget) the methods of Table 2
    — LeNet (the shipped ``lenet_mnist``), LeNet with dropout on all layers, the low-pass filter
    and the DAE in front of LeNet with and without dropout, a standard committee, adversarial
    training and the adversarial committee (eq. 3 examples, 5 stages) — plus PGD adversarial
    training, computes all their curves on the MNIST test set, and writes to ``out``:

    - ``curves.csv`` (every point), ``table2.csv`` and ``table2.md`` (ours beside the paper's),
    - ``curves_gradient_sign.png`` and ``curves_gaussian.png``,
    - ``summary.json`` (budget, seconds per part, the table's numbers).

    Args:
        out: output folder (created if needed).
        budget: an :class:`ExperimentBudget` (:data:`QUICK_BUDGET` or :data:`FULL_BUDGET`). Under
            a budget with ``zoo=True`` (the full one) the models are the zoo presets, trained
            with their own recipes and seeds into the zoo cache if missing, and ``seed`` only
            seeds the Gaussian noise and the low-pass filter's noise.
        methods: names of the methods to run, from :data:`METHODS`; all of them if None.
        logdir: if given, TensorBoard logs of the curves, table and timings go there.
        seed: seed of everything trained and of the Gaussian noise.
        log: callable taking one progress line (e.g. ``print``); silent if None.
        gray_box: compute the FGSM direction of the pre-processing rows (low-pass filter, DAE,
            with and without dropout) from the classifier behind the front end, as an attacker who
            does not see the defense would; by default every model is attacked end to end.

    Returns:
        The summary dict written to ``summary.json``; ``summary["timings"]`` holds seconds per part.
    """
    from keras_fool.data import load_mnist

    if not isinstance(budget, ExperimentBudget):
        raise TypeError(f"budget must be an ExperimentBudget. Received: budget={type(budget).__name__}")
    seed = _check_seed(seed)
    methods = _check_methods(methods)
    log = log or (lambda line: None)
    out = ensure_writable_dir(out)
    if logdir is not None:
        ensure_writable_dir(logdir)
    timings = {}

    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load_mnist()
    x_test, y_test = x_test[: budget.test_images], y_test[: budget.test_images]
    timings["data"] = time.perf_counter() - start

    start = time.perf_counter()
    models, behind, train_timings = _build_methods(methods, budget, x_train, y_train, seed,
                                                   _ModelCache(out / "models"), log)
    timings["models"] = time.perf_counter() - start
    timings.update({f"models/{k}": v for k, v in train_timings.items()})

    start = time.perf_counter()
    curves = robustness_curves(
        models, x_test, y_test, num_levels=budget.levels, seed=seed,
        progress=lambda name, noise, seconds: log(f"curve {name} / {noise}: {seconds:.1f} s"),
        gradient_models=behind if gray_box else None,
    )
    timings["curves"] = time.perf_counter() - start

    start = time.perf_counter()
    reference = {key: values for key, (_, values) in PAPER_TABLE2.items()}
    table = table_markdown(curves, labels=ROW_LABELS, reference=reference)
    intro = (
        "Error (%) on FGSM examples of the MNIST test set at average distortion dist (eq. 2), read off "
        f"the curves by linear interpolation; the paper's value in parentheses. {curves.num_images} test "
        f"images, {curves.strengths.shape[1]} levels per curve."
        + (" Gray box: the FGSM direction of the pre-processing rows comes from the classifier behind the "
           "front end, not from the defended model." if gray_box else "")
        + "\n\n"
    )
    with atomic_write(out / "table2.md", "w") as f:
        f.write(intro + table)
    write_table_csv(curves, out / "table2.csv")
    write_curves_csv(curves, out / "curves.csv")
    for noise_type in curves.noise_types:
        plot_curves(curves, out / f"curves_{noise_type}.png", noise_type)
    timings["outputs"] = time.perf_counter() - start
    if logdir is not None:
        _log_to_tensorboard(logdir, curves, table, timings)

    errors = 100.0 * curves.error_at(TABLE_DISTORTIONS, "gradient_sign")
    summary = {
        "budget": dataclasses.asdict(budget),
        "seed": seed,
        "gray_box": bool(gray_box),
        "table2_error_pct": {
            model: {f"{d:g}": (None if np.isnan(v) else round(float(v), 3)) for d, v in zip(TABLE_DISTORTIONS, row)}
            for model, row in zip(curves.models, errors)
        },
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    save_json(out / "summary.json", summary)
    return summary
