"""Table 2 and Figures 3-7 of Uličný, Lundström & Byttner on MNIST: ``keras-fool experiment robustness``.

:func:`run_robustness_experiment` trains (or reloads) every method of Table 2, computes their
error-vs-distortion curves (:func:`keras_fool.evaluation.curves.robustness_curves`) and their
worst case under a set of attacks with the gradient-masking checks
(:func:`keras_fool.evaluation.worst_case.worst_case_robustness`), and writes the table beside the
paper's, the CSV files and the figures, rendered by :mod:`keras_fool.report.curves` (whose
functions this module re-exports for its callers).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import keras
import numpy as np

from keras_fool import zoo
from keras_fool.data import load_mnist
from keras_fool.defenses import Committee, LowPassFilter, stack_front_end
from keras_fool.evaluation.curves import NOISE_TYPES, RobustnessCurves, robustness_curves
from keras_fool.evaluation.worst_case import ATTACKS, AttackSettings, check_attack_names, worst_case_robustness
from keras_fool.experiments.report import ExperimentReport
from keras_fool.io import save_json, save_text, sha256_file
from keras_fool.report.curves import (
    FIGURE_FORMATS,
    PAPER_FIGURES,
    TABLE_DISTORTIONS,
    cascade_markdown,
    checks_markdown,
    plot_curves,
    table2_text,
    table_markdown,
    write_curves_csv,
    write_figures,
    write_table_csv,
)
from keras_fool.report.papers import PAPER_TABLE2
from keras_fool.report.titles import ROBUSTNESS_METHODS as METHODS
from keras_fool.report.titles import ROW_LABELS, method_style
from keras_fool.run_folder import RunFolder
from keras_fool.summaries import SummaryWriter
from keras_fool.training import robust_models
from keras_fool.training.recipes import compile_with_recipe, train_preset
from keras_fool.validation import check_int, check_memory, check_seed
from keras_fool.zoo.cache import ModelCache
from keras_fool.zoo.presets import get_preset

__all__ = [
    "FIGURE_FORMATS",
    "FULL_BUDGET",
    "METHODS",
    "PAPER_FIGURES",
    "PAPER_TABLE2",
    "QUICK_BUDGET",
    "ROW_LABELS",
    "TABLE_DISTORTIONS",
    "TENSORBOARD_STEPS_PER_DIST",
    "ExperimentBudget",
    "RobustnessCurves",
    "cascade_markdown",
    "checks_markdown",
    "method_style",
    "plot_curves",
    "run_robustness_experiment",
    "table_markdown",
    "write_curves_csv",
    "write_figures",
    "write_table_csv",
]

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
        worst_case_images: test images (the first ones) behind the worst-case columns; all
            ``test_images`` if None.
        attack_settings: the strength of the worst case's attacks and of its gradient-masking checks.
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
    worst_case_images: int | None = None
    attack_settings: AttackSettings = AttackSettings()

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
                                pgd_attack_steps=5, attack_settings=AttackSettings(square_queries=300, diagnostic_images=200))



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


def _check_memory(budget, methods):
    """Refuse, before any model trains, a number of levels whose curves would not fit in memory."""
    levels = check_int("levels", budget.levels, minimum=2)
    rows = len(NOISE_TYPES) * (1 + len(methods))  # each noise's strengths, then every method's value per strength
    check_memory(8 * levels * rows, f"The robustness curves of {levels:,} levels", "levels=N")


def _zoo_model(name):
    """A zoo preset, trained first (into the zoo cache, with its recipe) if it has no weights yet."""
    try:
        return zoo.load_model(name), True
    except FileNotFoundError:
        train_preset(name, verbose=0)
        return zoo.load_model(name), False


class _Methods:
    """Trains or reloads the models of Table 2's rows, each part once, and times them.

    Under a zoo budget the parts come from the zoo presets (trained into the zoo cache if
    missing); otherwise they are trained at the budget's sizes into ``cache`` (a
    :class:`~keras_fool.zoo.cache.ModelCache`), reused only while everything that made them --
    recipe, seed, the base LeNet's weights -- is unchanged.
    """

    def __init__(self, budget, x_train, y_train, seed, cache, log):
        self.budget, self.x_train, self.y_train, self.seed = budget, x_train, y_train, seed
        self.cache, self.log = cache, log
        self.timings = {}
        self.lenet_recipe = dict(zoo.get_preset("lenet_mnist").recipe)
        self.common = {"seed": seed, "lenet_recipe": self.lenet_recipe,
                       "lenet_mnist_sha256": sha256_file(zoo.shipped_weights_path("lenet_mnist"))}
        self.builders = {
            "no_method": self.base,
            "dropout": self.dropout,
            "low_pass": lambda: stack_front_end(self.low_pass(), self.base(), name="low_pass"),
            "dae": lambda: stack_front_end(self.autoencoder(), self.base(), name="dae"),
            "low_pass_dropout": lambda: stack_front_end(self.low_pass(), self.dropout(), name="low_pass_dropout"),
            "dae_dropout": lambda: stack_front_end(self.autoencoder(), self.dropout(), name="dae_dropout"),
            "standard_committee": self.standard_committee,
            "adversarial_training": lambda: self.adversarial_committee().members[-1],
            "adversarial_committee": self.adversarial_committee,
            "pgd_training": self.pgd,
        }

    def build(self, names):
        """({name: model} of the methods, {name: classifier behind its front end}) for the named rows."""
        methods = {name: self.builders[name]() for name in names}
        behind = {name: self.builders[classifier]() for name, classifier in FRONT_ENDS.items() if name in names}
        return methods, behind

    def _timed(self, key, recipe, train):
        """One part: from the zoo under a zoo budget, else from the cache (trained if it is not there)."""
        start = time.perf_counter()
        if self.budget.zoo and key in ZOO_PRESETS:
            name = ZOO_PRESETS[key]
            model, cached = _zoo_model(name)
        else:
            name = key
            model, cached = self.cache.get(key, recipe, train)
        self.timings[name] = time.perf_counter() - start
        self.log(f"{name}: {'reloaded' if cached else 'trained'} in {self.timings[name]:.1f} s")
        return model

    def _recipe(self, key, **overrides):
        return {**zoo.get_preset(ZOO_PRESETS[key]).recipe, **overrides}

    def _lenet(self, preset, steps, seed, name=None):
        keras.utils.set_random_seed(seed)
        model = zoo.build_model(preset, weight_decay=self.lenet_recipe["weight_decay"],
                                **({"name": name} if name else {}))
        compile_with_recipe(model, self.lenet_recipe)
        return robust_models.train_steps(model, self.x_train, self.y_train, steps, seed)

    @functools.cache
    def base(self):
        return zoo.load_model("lenet_mnist")

    @functools.cache
    def dropout(self):
        steps = self.budget.dropout_steps
        recipe = {**self.common, "steps": steps, "architecture": zoo.get_preset("lenet_mnist_dropout_all").architecture}
        return self._timed("dropout", recipe, lambda: self._lenet("lenet_mnist_dropout_all", steps, self.seed))

    @functools.cache
    def autoencoder(self):
        recipe = self._recipe("dae", steps=self.budget.dae_steps)
        return self._timed("dae", {**self.common, **recipe},
                           lambda: robust_models.train_dae(self.x_train, recipe, self.seed))

    @functools.cache
    def low_pass(self):
        return LowPassFilter(**LOW_PASS, seed=self.seed, name="low_pass_filter")

    @functools.cache
    def adversarial_committee(self):
        budget = self.budget
        recipe = self._recipe("adversarial", stages=budget.stages, steps_per_stage=budget.steps_per_stage,
                              pool_size=budget.pool_size)
        return self._timed("adversarial", {**self.common, **recipe}, lambda: (
            robust_models.train_adversarial_committee_model(self.x_train, self.y_train, recipe, self.seed)))

    def standard_committee(self):
        if self.budget.zoo:
            return self._timed("standard_committee", None, None)
        steps = self.budget.committee_steps
        members = [self.base()]
        for index in range(1, self.budget.committee_size):
            members.append(self._timed(
                f"committee_member_{index}", {**self.common, "steps": steps},
                functools.partial(self._lenet, "lenet_mnist", steps, self.seed + index, f"lenet_mnist_member_{index}")))
        return Committee(members, name="standard_committee")

    def pgd(self):
        recipe = self._recipe("pgd", steps=self.budget.pgd_steps, attack_steps=self.budget.pgd_attack_steps)
        return self._timed("pgd", {**self.common, **recipe},
                           lambda: robust_models.train_pgd_model(self.x_train, self.y_train, recipe, self.seed))


# TensorBoard steps are integers, so the robustness scalars are stepped by the distortion in
# thousandths (step 100 is dist 0.1), as their tags say ("..._by_dist_x1000").
TENSORBOARD_STEPS_PER_DIST = 1000


def _dist_step(distortion):
    return int(round(TENSORBOARD_STEPS_PER_DIST * float(distortion)))


def _log_to_tensorboard(logdir, curves, table, timings):
    """The curves, the worst case and the paper's Table 2 as scalars stepped by dist x 1000; the table; timings."""
    board = SummaryWriter(logdir)
    for m, model in enumerate(curves.models):
        for t, noise_type in enumerate(curves.noise_types):
            for level in range(curves.strengths.shape[1]):
                board.scalars({f"error_pct_by_dist_x1000/{noise_type}/{model}": 100.0 * curves.error[m, t, level],
                               f"strength_by_dist_x1000/{noise_type}/{model}": curves.strengths[t, level]},
                              _dist_step(curves.distortion[m, t, level]))
        if model in PAPER_TABLE2:
            for d, value in zip(TABLE_DISTORTIONS, PAPER_TABLE2[model][1]):
                board.scalars({f"error_pct_by_dist_x1000/paper_table2/{model}": value}, _dist_step(d))
    if curves.worst_case is not None:
        for model in curves.worst_case.models:
            for level in curves.worst_case.per_model[model].levels:
                board.scalars({f"error_pct_by_dist_x1000/worst_case/{model}": 100.0 * level.error,
                               f"eps_by_dist_x1000/worst_case/{model}": level.eps}, _dist_step(level.distortion))
    board.scalars({f"seconds/{name}": seconds for name, seconds in timings.items()}, 0)
    board.text("steps", f"The robustness scalars are stepped by the average distortion per pixel dist (eq. 2) "
               f"times {TENSORBOARD_STEPS_PER_DIST}: step 100 is dist 0.1. error_pct: test error in %; strength: "
               "the noise's eps or sigma; eps: the worst case's L-infinity radius.")
    board.text("table2", table)
    board.close()


def _check_attacks(attacks):
    """None or a tuple of attack names in cascade order ('none' or an empty list: no worst case)."""
    if attacks is None or (isinstance(attacks, str) and attacks.strip().lower() == "none"):
        return None
    if isinstance(attacks, (list, tuple)) and not attacks:
        return None
    return check_attack_names(attacks)


def _surrogates(names, behind):
    """The models each row's transfer attack crafts on: lenet_mnist_b (another seed of the base LeNet),
    and for a pre-processing row the classifier behind its front end (committees add their members)."""
    independent = zoo.load_model("lenet_mnist_b")
    return {name: [independent] + ([behind[name]] if name in behind else []) for name in names}


def _summary(budget, seed, gray_box, curves, timings, flagged):
    """summary.json: the budget, the table's numbers, the worst case and its flags, the timings."""
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
    if curves.worst_case is not None:
        worst = 100.0 * curves.worst_case.error_at(curves.worst_case.distortions)
        summary["table2_worst_case_error_pct"] = {
            model: {f"{d:g}": round(float(v), 3) for d, v in zip(curves.worst_case.distortions, row)}
            for model, row in zip(curves.worst_case.models, worst)}
        summary["worst_case"] = curves.worst_case.to_dict()
        summary["masking_flags"] = [{"model": model, "check": check.name, "question": check.question,
                                     "detail": check.detail} for model, check in flagged]
    return summary


def _with_worst_case(curves, models, behind, x_test, y_test, budget, attacks, seed, log, timings):
    """The curves with their worst case under ``attacks`` (unchanged if None), and the flagged checks."""
    if attacks is None:
        return curves, []
    start = time.perf_counter()
    n = budget.test_images if budget.worst_case_images is None else min(budget.worst_case_images,
                                                                         budget.test_images)
    worst_case = worst_case_robustness(
        models, x_test[:n], y_test[:n], distortions=tuple(d for d in TABLE_DISTORTIONS if d > 0),
        attacks=attacks, surrogates=_surrogates(list(models), behind), settings=budget.attack_settings, seed=seed,
        log=lambda line: log(f"worst case {line}"))
    curves = curves.with_worst_case(worst_case)
    timings["worst_case"] = time.perf_counter() - start
    return curves, worst_case.flagged()


def _write_outputs(out, curves, flagged, gray_box, logdir, timings):
    """Write table2.md, the CSV files and the figures (and the TensorBoard logs); return the text and the figures."""
    start = time.perf_counter()
    text = table2_text(curves, flagged, gray_box)
    save_text(out / "table2.md", text)
    write_table_csv(curves, out / "table2.csv")
    write_curves_csv(curves, out / "curves.csv")
    figures = write_figures(curves, out)
    timings["outputs"] = time.perf_counter() - start
    if logdir is not None:
        _log_to_tensorboard(logdir, curves, text, timings)
    return text, figures


def run_robustness_experiment(out, budget=QUICK_BUDGET, methods=None, logdir=None, seed=0, log=None,
                              gray_box=False, attacks=ATTACKS, overwrite=False):
    """Reproduce Table 2 and Figures 3-7 of Uličný et al. on MNIST, with a worst case beside FGSM.

    Trains (or reloads from ``out/models``, or from the zoo under the full budget) the methods of Table 2
    — LeNet (the shipped ``lenet_mnist``), LeNet with dropout on all layers, the low-pass filter
    and the DAE in front of LeNet with and without dropout, a standard committee, adversarial
    training and the adversarial committee (eq. 3 examples, 5 stages) — plus PGD adversarial
    training, computes all their curves on the MNIST test set and their worst case at dist 0.1
    and 0.2 under ``attacks`` with the gradient-masking checks, and writes to ``out``:

    - ``curves.csv`` (every point, and the worst case), ``table2.csv`` and ``table2.md`` (ours
      beside the paper's, FGSM and worst case side by side, the cascade and the checks),
    - ``curves_gradient_sign`` (the paper's values as circles, the worst case as crosses) and
      ``curves_gaussian`` with every method, and one file per figure of the paper whose methods
      were run (``figure3_dropout_gradient_sign`` ... ``figure7_committees_gradient_sign``, see
      :data:`PAPER_FIGURES`), each as ``.png`` and ``.svg``,
    - ``summary.json`` (budget, seconds per part, the table's numbers, the worst case and checks).

    Args:
        out: output folder (created if needed).
        budget: an :class:`ExperimentBudget` (:data:`QUICK_BUDGET` or :data:`FULL_BUDGET`). Under
            a budget with ``zoo=True`` (the full one) the models are the zoo presets, trained
            with their own recipes and seeds into the zoo cache if missing, and ``seed`` only
            seeds the Gaussian noise, the low-pass filter's noise and the attacks.
        methods: names of the methods to run, from :data:`METHODS`; all of them if None.
        logdir: if given, TensorBoard logs of the curves (stepped by dist x 1000), the worst case,
            the paper's Table 2, the table and the timings go to ``logdir/<name of out>``.
        seed: seed of everything trained, of the Gaussian noise and of the random attacks.
        log: callable taking one progress line (e.g. ``print``); silent if None.
        gray_box: compute the FGSM direction of the pre-processing rows (low-pass filter, DAE,
            with and without dropout) from the classifier behind the front end, as an attacker who
            does not see the defense would; by default every model is attacked end to end. (The
            worst case is always end to end; its transfer attack crafts on that classifier too.)
        attacks: the worst case's attacks, names from
            :data:`~keras_fool.evaluation.worst_case.ATTACKS` (or a comma-separated string);
            None or ``"none"`` for the FGSM and Gaussian curves only.
        overwrite: replace the results in ``out`` (its trained models in ``out/models`` are kept and
            reused); a folder holding a ``summary.json`` is refused otherwise.

    Returns:
        An :class:`~keras_fool.experiments.report.ExperimentReport`; ``report.summary["timings"]``
        holds seconds per part, ``report.summary["worst_case"]`` the worst case and
        ``report.summary["masking_flags"]`` every check answered "no".
    """
    if not isinstance(budget, ExperimentBudget):
        raise TypeError(f"budget must be an ExperimentBudget. Received: budget={type(budget).__name__}")
    seed = check_seed(seed)
    methods = _check_methods(methods)
    attacks = _check_attacks(attacks)
    _check_memory(budget, methods)
    log = log or (lambda line: None)
    folder = RunFolder(out, "summary.json", overwrite=overwrite, resumable=False, logdir=logdir)
    out, logdir = folder.path, folder.board  # each run logs in its own subfolder, as every command does
    timings = {}

    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load_mnist()
    x_test, y_test = x_test[: budget.test_images], y_test[: budget.test_images]
    timings["data"] = time.perf_counter() - start

    start = time.perf_counter()
    parts = _Methods(budget, x_train, y_train, seed, ModelCache(out / "models"), log)
    models, behind = parts.build(methods)
    timings["models"] = time.perf_counter() - start
    timings.update({f"models/{k}": v for k, v in parts.timings.items()})

    start = time.perf_counter()
    curves = robustness_curves(
        models, x_test, y_test, num_levels=budget.levels, seed=seed,
        progress=lambda name, noise, seconds: log(f"curve {name} / {noise}: {seconds:.1f} s"),
        gradient_models=behind if gray_box else None,
    )
    timings["curves"] = time.perf_counter() - start
    curves, flagged = _with_worst_case(curves, models, behind, x_test, y_test, budget, attacks, seed, log, timings)
    text, figures = _write_outputs(out, curves, flagged, gray_box, logdir, timings)
    summary = _summary(budget, seed, gray_box, curves, timings, flagged)
    save_json(out / "summary.json", summary)
    files = [out / name for name in ("table2.md", "table2.csv", "curves.csv")] + figures + [out / "summary.json"]
    return ExperimentReport(text, summary, files + [out / "models"] + ([logdir] if logdir is not None else []))
