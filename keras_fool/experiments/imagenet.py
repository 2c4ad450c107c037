"""The paper's ImageNet result: direct encoding vs CPPN vs gradient ascent on the same classes.

:func:`run_imagenet_experiment` is ``keras-fool experiment imagenet``. Against one target
(``efficientnet_lite0_imagenet`` by default) and the same classes (by default ten named in the
paper's figures), it evolves with the direct encoding and with CPPNs under MAP-Elites, and
ascends the gradient (supplement E), each method with the same budget of evaluations (images
scored): ``population * (generations + 1)`` for each evolution, and for gradient ascent
``steps`` per class with ``classes * (steps + 1)`` at most the same (a gradient step is a
forward and a backward pass, about three forwards of compute; the report gives the seconds too).
All three stop once every class reaches ``stop_at`` (99.99%, the paper's threshold), so what
a method needs of its budget is part of the result.

It reports the median, minimum and maximum confidence per method beside the paper's (CPPN:
median 88.11% over 1000 classes after 5000 generations; direct: 21.59%; gradient ascent:
99.99%), each method's speed beside the raw throughput of the model at the same batch (measured
in the same process, just before and after the method ran), and draws a Figure-1-style montage
with the class names. Each method writes ``keras-fool evolve``'s files into a folder of its own;
the evolutions checkpoint and ``resume`` continues them (a finished gradient ascent is reused).

With a ``strategy`` the two evolutions spread their populations over its replicas (the same
archives as on one device); gradient ascent, a loop over the classes' own images rather than
over a population, runs on one device in every process. Only the chief writes files.

With a second network (``second_model``; EfficientNet-Lite1 beside the default Lite0), two
studies of the supplement follow at the same budget. *Transfer* (A.2): CPPN images are also
evolved against the second network, and each network's images are shown to the other (a network
of another input size sees them resized bilinearly, as Caffe's networks each took their own
crop); reported as Table S1's measures beside the paper's 20.7% and 17.3% top-1 matches between
GoogLeNet and AlexNet. *Ensemble* (B): CPPN images evolved against the mean of the two networks'
probabilities, reported as the share of classes at >= 90%, the median and the maximum beside
the paper's 23.1% (231 of 1000), 65.2% and 100% for CaffeNet + AlexNet + GoogLeNet.

TensorFlow and the evolution engine are imported inside the functions, so the command line can
check its options with :func:`check_imagenet_options` before TensorFlow starts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

from keras_fool.distribute import is_chief, replica_count, resolve_strategy, strategy_scope
from keras_fool.evolution.gradient import ascent_settings, check_ascent_memory
from keras_fool.experiments.report import ExperimentReport, check_evolution_memory
from keras_fool.io import save_json
from keras_fool.report.imagenet import imagenet_markdown, write_imagenet
from keras_fool.report.papers import PAPER_ENSEMBLE, PAPER_IMAGENET, PAPER_TRANSFER
from keras_fool.report.tables import format_confidence_pct, format_number
from keras_fool.report.titles import FOOLING_METHOD_TITLES
from keras_fool.run_folder import RunFolder
from keras_fool.validation import check_int, check_number, check_seed

__all__ = [
    "DEFAULT_CLASSES",
    "METHODS",
    "PAPER_ENSEMBLE",
    "PAPER_IMAGENET",
    "PAPER_TRANSFER",
    "STUDIES",
    "check_imagenet_options",
    "measure_speed",
    "model_throughput",
    "run_imagenet_experiment",
]

# Ten classes named in the paper's figures (Figure 1's CPPN images; Windsor tie from Figures S5-S8).
DEFAULT_CLASSES = ("king penguin", "starfish", "baseball", "electric guitar", "freight car", "remote control",
                   "peacock", "African grey", "lesser panda", "Windsor tie")
METHODS = ("direct", "cppn", "nes", "gradient")
ASCENT_BATCH = 32  # classes per compiled gradient-ascent loop
FIGURE_CLASSES = 10  # columns of figure1.png: the first ten classes (the paper's Figure 1 shows a selection too)
STUDY_NAMES = {"transfer": "CPPN, second network", "ensemble": "CPPN, ensemble"}
STUDY_FOLDERS = {"transfer": "second_cppn", "ensemble": "ensemble_cppn"}  # each study's evolution, under OUT
# Studies with a second network, after the three methods: transfer (supplement A.2) and an ensemble (supplement B).
STUDIES = ("transfer", "ensemble")
SECOND_MODEL = {"efficientnet_lite0_imagenet": "efficientnet_lite1_imagenet",  # second_model="auto": another
                "efficientnet_lite1_imagenet": "efficientnet_lite0_imagenet",  # network that works offline
                "efficientnet_lite2_imagenet": "efficientnet_lite0_imagenet"}
# The ensemble study's row in summary.json keeps the paper's numbers under its own keys.
PAPER_ENSEMBLE_ROW = {"classes_at_90_pct": PAPER_ENSEMBLE["at_90_pct"], "median_pct": PAPER_ENSEMBLE["median_pct"],
                      "max_pct": PAPER_ENSEMBLE["max_pct"], "setting": PAPER_ENSEMBLE["setting"]}
# What must match for a resumed run to reuse a finished method's row instead of running it again.
REUSE_KEYS = ("model", "classes", "generations", "population", "steps", "crops", "regularization", "stop_at", "paper",
              "seed")


def check_imagenet_options(generations=1000, population=16, steps=None, methods=METHODS, crops=1,
                           regularization="none", stop_at=0.9999, seed=0, checkpoint_every=50, studies=STUDIES):
    """The checked options of :func:`run_imagenet_experiment`; needs no TensorFlow.

    Returns:
        A dict of the checked values (``methods`` and ``studies`` as tuples in :data:`METHODS` and
        :data:`STUDIES` order).

    Raises:
        TypeError, ValueError: a value of the wrong kind or out of range.
    """
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct names among {', '.join(METHODS)}. Received: methods={methods!r}")
    if isinstance(crops, bool) or crops not in (1, 10):
        raise ValueError(f"crops must be 1 or 10. Received: crops={crops!r}")
    studies = (studies,) if isinstance(studies, str) else tuple(studies)
    if any(s not in STUDIES for s in studies) or len(set(studies)) != len(studies):
        raise ValueError(f"studies must be distinct names among {', '.join(STUDIES)} (or none). "
                         f"Received: studies={studies!r}")
    ascent_settings(regularization)
    return {
        "generations": check_int("generations", generations),
        "population": check_int("population", population),
        "steps": None if steps is None else check_int("steps", steps),
        "methods": tuple(m for m in METHODS if m in methods),
        "studies": tuple(s for s in STUDIES if s in studies),
        "crops": crops,
        "regularization": regularization,
        "stop_at": None if stop_at is None else check_number("stop_at", stop_at, 0.0, strict=True, maximum=1.0),
        "seed": check_seed(seed),
        "checkpoint_every": check_int("checkpoint_every", checkpoint_every),
    }


def model_throughput(target, batch, backward=False, repeats=3):
    """Raw images per second of the target's model(s) alone, at ``batch`` images of the model's size.

    What the evolver and gradient ascent are compared with: one compiled call of the Keras
    model(s) (no encoding, no archive, no crops), or with ``backward`` a forward and a backward
    pass to the input (what a gradient step costs). The median of ``repeats`` timed calls after
    one untimed call that compiles.
    """
    import tensorflow as tf

    x = tf.random.stateless_uniform((batch, *target.model_shape), [3, 4])

    @tf.function
    def forward(x):
        return tf.add_n([tf.reduce_sum(m(x, training=False)[:, 0]) for m in target.models])

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = forward(x)
        return tape.gradient(total, x)

    call = forward_backward if backward else forward
    call(x).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(x).numpy()
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


def measure_speed(model="efficientnet_lite0_imagenet", classes=DEFAULT_CLASSES, population=16, generations=10,
                  steps=20, repeats=5, warmup=100, crops=1, seed=0, capacity=None, log=None):
    """Each method's speed against the raw model's at the same batch, measured alternately.

    The machine is shared, so its speed drifts; each repeat times the raw model (forward at batch
    ``population``, or forward and backward at the ascent's batch), then ``generations`` more
    generations of the direct and of the CPPN evolver (or ``steps`` gradient steps for every class),
    then the raw model again, and divides the method's speed by the mean of the two raw speeds.
    The evolvers first run ``warmup`` generations untimed (the CPPNs grow hidden nodes, which makes
    rendering dearer), the ascent is compiled and warmed once, and the first repeat's timings are
    dropped (TensorFlow's first calls). A timed ascent includes each batch's final forward pass.
    ``capacity``: the CPPN's node slots (None: the encoding's default).

    Returns:
        A dict per method: ``ratios`` (one per timed repeat), ``median_ratio``,
        ``evaluations_per_second`` and ``raw_images_per_second`` (medians).
    """
    from keras_fool.encodings import make_encoding
    from keras_fool.evolution import NES, MapElites
    from keras_fool.evolution.gradient import GradientAscent
    from keras_fool.evolution.runs import BEST_SETTINGS, NES_BATCH
    from keras_fool.target import Target

    log = log or (lambda line: None)
    repeats = check_int("repeats", repeats, minimum=2)
    target = Target(model, crops=crops)
    labels = target.class_indices(list(classes) if not isinstance(classes, str) else classes)
    labels = list(range(target.num_classes)) if labels is None else labels
    evolvers = {}
    for method in ("direct", "cppn"):
        settings = BEST_SETTINGS[method]
        encoding = make_encoding(method, target.image_shape, eta=settings["eta"],
                                 capacity=capacity if method == "cppn" else None)
        evolvers[method] = MapElites(target, encoding,
                                     population=population, classes=labels, seed=seed, selection=settings["selection"])
        evolvers[method].run(warmup)
    evolvers["nes"] = NES(target, make_encoding("direct", target.image_shape), classes=labels, seed=seed,
                          class_target=1.0, eval_batch_size=NES_BATCH)
    evolvers["nes"].run(1)
    ascent_batch = _ascent_batch(len(labels))
    ascent = GradientAscent(target, classes=labels, steps=steps, seed=seed, batch_size=ASCENT_BATCH)
    ascent.trace()
    results = {m: {"ratios": [], "speeds": [], "raws": []} for m in METHODS}
    for repeat in range(repeats):
        for method in METHODS:
            backward = method == "gradient"
            batch = (ascent_batch if backward else _batch_of(evolvers[method], population)) * crops
            before = model_throughput(target, batch, backward=backward)
            start = time.perf_counter()
            if backward:
                ascent.run()  # every class from its start again, the compiled loop reused
                speed = len(labels) * steps / (time.perf_counter() - start)
            else:
                evolver, spent = evolvers[method], evolvers[method].evaluations
                evolver.run(evolver.generation + (generations if method != "nes" else max(1, generations // 5)))
                speed = (evolver.evaluations - spent) / (time.perf_counter() - start)
            after = model_throughput(target, batch, backward=backward)
            raw = (before + after) / 2.0
            ratio = speed * crops / raw
            log(f"repeat {repeat}: {method} {speed:.1f}/s, raw {raw:.1f}/s, {100 * ratio:.1f}%")
            if repeat > 0:
                for key, value in (("ratios", ratio), ("speeds", speed), ("raws", raw)):
                    results[method][key].append(value)
    return {m: {"ratios": r["ratios"], "median_ratio": float(np.median(r["ratios"])),
                "evaluations_per_second": float(np.median(r["speeds"])),
                "raw_images_per_second": float(np.median(r["raws"]))} for m, r in results.items()}


def _batch_of(evolver, population):
    """Images one call of ``evolver`` scores: the population, or an NES group's candidates."""
    return getattr(evolver, "images_per_call", population)


def _nes(target, folder, labels, generations, population, seed, paper, stop_at, checkpoint_every, progress, log,
         strategy=None):
    """NES over low-resolution pixels into ``folder``, with MAP-Elites' evaluations (``population`` x
    (``generations`` + 1)) at most; returns its summary."""
    from keras_fool.encodings import make_encoding
    from keras_fool.evolution import NES, run_search, search_callbacks
    from keras_fool.evolution.nes import generations_within
    from keras_fool.evolution.runs import NES_BATCH

    nes = NES(target, make_encoding("direct", target.image_shape), classes=labels, seed=seed,
              class_target=stop_at or 1.0, eval_batch_size=NES_BATCH)
    return run_search(nes, folder, generations_within(nes, population * (generations + 1)),
                      search_callbacks(folder, checkpoint_every, stop_at, progress), log=lambda line: log(f"nes: {line}"))


def _evolve(target, method, folder, labels, generations, population, seed, paper, stop_at, checkpoint_every, progress,
            log, strategy=None):
    """One MAP-Elites run into ``folder`` (a :class:`~keras_fool.run_folder.RunFolder`); returns its summary."""
    from keras_fool.encodings import make_encoding
    from keras_fool.evolution import MapElites, run_search, search_callbacks
    from keras_fool.evolution.runs import BEST_SETTINGS, PAPER_SETTINGS

    settings = PAPER_SETTINGS if paper else BEST_SETTINGS[method]
    encoding = make_encoding(method, target.image_shape, eta=settings["eta"])
    evolver = MapElites(target, encoding, population=population, classes=labels, seed=seed,
                        selection=settings["selection"], strategy=strategy)
    return run_search(evolver, folder, generations, search_callbacks(folder, checkpoint_every, stop_at, progress),
                      log=lambda line: log(f"{method}: {line}"), extra={"replicas": replica_count(strategy)})


def _ascend(target, folder, labels, steps, settings, stop_at, seed, log):
    """Gradient ascent into ``folder``; a finished ascent there with the same configuration is reused."""
    from keras_fool.errors import ResumeError
    from keras_fool.evolution import GradientAscent, run_search, search_callbacks

    ascent = GradientAscent(target, classes=labels, steps=steps, settings=settings, seed=seed, batch_size=ASCENT_BATCH)
    if folder.resume and folder.checkpoint.is_file():
        try:
            ascent.load_checkpoint(folder.checkpoint)
            log(f"gradient: reusing the finished ascent in {folder.path}.")
        except ResumeError:
            pass  # another budget or class list: ascend again
    return run_search(ascent, folder, steps, search_callbacks(folder, stop_at=stop_at), resume=False,
                      log_batches=lambda line: log(f"gradient: {line}"))


def run_imagenet_experiment(out, model="efficientnet_lite0_imagenet", classes=DEFAULT_CLASSES, generations=1000,
                            population=16, steps=None, methods=METHODS, crops=1, regularization="none",
                            stop_at=0.9999, paper=False, class_names=None, seed=0, resume=False, overwrite=False,
                            checkpoint_every=50, logdir=None, progress=False, log=None, strategy="default",
                            cpu_replicas=None, second_model="auto", studies=STUDIES):
    """Direct encoding vs CPPN vs gradient ascent against an ImageNet classifier, at equal budgets.

    Args:
        out: output folder (created if needed); refused if it holds a ``summary.json`` unless
            ``resume`` or ``overwrite``.
        model: a preset name, a ``.keras`` path or a Keras model taking RGB images in [0, 1].
        classes: class names and/or indices (a list or a comma-separated string), or ``"all"``.
        generations: generations of each evolution (generation 0 is the random population).
        population: offspring per generation (batches of 16-32 are EfficientNet-Lite0's fastest on CPU).
        steps: gradient steps per class; None: the evolutions' budget,
            ``population * (generations + 1) // classes - 1``.
        methods: which of ``"direct"``, ``"cppn"``, ``"gradient"`` to run.
        crops: 1, or 10 for Caffe's ten crops (the images are then the model's size + 32).
        regularization: gradient ascent's regularizer (``"none"``, ``"s5"``, ``"s6"``, ``"s7"``).
        stop_at: every method stops once all its classes reach this confidence (None: never).
        paper: evolve with the paper's settings (eta 15, uniform parents) instead of the best
            measured ones (:data:`keras_fool.evolution.runs.BEST_SETTINGS`).
        class_names: names for a model that is not a preset (a list or a file, one per line).
        seed: the seed of every method.
        resume: continue the evolutions checkpointed in ``out``, reuse finished methods and studies
            (those run with the same options).
        overwrite: start afresh even if ``out`` holds results.
        checkpoint_every: generations between checkpoints.
        logdir: TensorBoard folder, or None; logs go to ``logdir/<name of out>/<method>``.
        progress: progress bars on stderr.
        log: callable taking one progress line; silent if None.
        strategy: ``"default"`` (one device), ``"mirrored"``, ``"multi-worker"`` or a
            ``tf.distribute.Strategy`` (see :func:`keras_fool.distribute.make_strategy`): both
            evolutions spread their populations over the replicas, with the same archives as on
            one device (``population`` must split evenly across them); gradient ascent and the raw
            model's speed stay on one device, so ``speed_vs_raw_pct`` may exceed 100. Only the
            chief writes files, checkpoints and TensorBoard logs; another worker returns the same
            numbers with no files (and reads the checkpoints from ``out`` to resume).
        cpu_replicas: split the CPU into this many logical devices for ``strategy``.
        second_model: the second network of the studies (a preset, ``.keras`` path or Keras model
            with the same classes); ``"auto"``: EfficientNet-Lite1 for the default Lite0, Lite0 for
            Lite1 and Lite2, none for other models; None: no studies.
        studies: which of ``"transfer"`` and ``"ensemble"`` to run with the second network
            (each a CPPN evolution at the methods' budget: against the second network, and
            against the two networks' mean).

    Returns:
        An :class:`~keras_fool.experiments.report.ExperimentReport`.

    Raises:
        TypeError, ValueError: bad options or classes.
        ResumeError: a checkpoint written with other options.
    """
    options = check_imagenet_options(generations, population, steps, methods, crops, regularization, stop_at, seed,
                                     checkpoint_every, studies)
    # The run uses the values as given (checked above; only methods and studies are normalized), as it always has.
    options.update(generations=generations, population=population, steps=steps, crops=crops,
                   regularization=regularization, stop_at=stop_at, seed=seed, checkpoint_every=checkpoint_every)
    if second_model == "auto":
        second_model = SECOND_MODEL.get(model) if isinstance(model, str) else None
    run = _open_run(out, model, classes, options, paper, class_names, resume, overwrite, logdir, progress, log,
                    strategy, cpu_replicas, second_model)
    summary = {"config": run.config, "rows": [], "paper": PAPER_IMAGENET,
               "replicas": replica_count(run.strategy), "complete": False}
    _run_methods(run, summary)
    if run.studies:
        _run_studies(run, summary)
    summary["complete"] = True
    markdown = imagenet_markdown(summary)
    if not run.chief:  # another worker of a cluster: the same numbers, nothing written
        return ExperimentReport(markdown, summary, [])
    return ExperimentReport(markdown, summary, _write(run, summary, markdown))


@dataclasses.dataclass
class _Run:
    """One ImageNet run's settled options, folder and targets (what its steps share)."""

    folder: RunFolder
    out: Path
    chief: bool
    strategy: object
    target: object
    labels: list
    steps: int
    settings: object
    config: dict
    studies: tuple
    previous: dict
    evolve: dict
    log: object
    second: dict = dataclasses.field(default_factory=dict)  # second, first_at_second, second_at_first, kwargs


def _open_run(out, model, classes, options, paper, class_names, resume, overwrite, logdir, progress, log, strategy,
              cpu_replicas, second_model):
    """The run folder, the first network's target, the classes, the step budget, the config and the second network."""
    from keras_fool.target import Target

    log = log or (lambda line: None)
    studies = options["studies"] if second_model is not None else ()
    strategy = resolve_strategy(strategy, cpu_replicas)
    chief = is_chief(strategy)
    generations, population, crops = options["generations"], options["population"], options["crops"]
    with strategy_scope(strategy):  # mirrored model variables
        target = Target(model, class_names=class_names, crops=crops)
    labels = target.class_indices(classes)
    labels = list(range(target.num_classes)) if labels is None else labels
    budget = population * (generations + 1)
    steps = options["steps"] if options["steps"] is not None else max(1, budget // len(labels) - 1)
    _check_memory(target, options["methods"], population, len(labels), steps)
    # Created once the model, its classes and the sizes are accepted. Another worker writes nothing,
    # and must not refuse the folder its chief is filling.
    folder = RunFolder(out, "summary.json", resume, overwrite, logdir=logdir, chief=chief)
    log(f"{len(labels)} classes, budget {budget:,} evaluations per method; gradient ascent: up to {steps} steps "
        f"per class.")
    config = {"model": target.get_config()["models"], "classes": labels,
              "class_names": [target.class_names[c] for c in labels], "generations": generations,
              "population": population, "steps": steps, "budget_evaluations": budget,
              "methods": list(options["methods"]), "crops": crops, "regularization": options["regularization"],
              "stop_at": options["stop_at"], "paper": paper, "seed": options["seed"]}
    evolve = dict(labels=labels, generations=generations, population=population, seed=options["seed"], paper=paper,
                  stop_at=options["stop_at"], checkpoint_every=options["checkpoint_every"], progress=progress,
                  log=log, strategy=strategy)
    run = _Run(folder, folder.path, chief, strategy, target, labels, steps, ascent_settings(options["regularization"]),
               config, studies, {}, evolve, log)
    if studies:  # before anything runs: a second network that does not fit fails now
        run.second = _second_network(second_model, target, crops, strategy)
        config.update(second_model=run.second["second"].get_config()["models"], studies=list(studies))
    run.previous = _previous_summary(run.out, config) if resume else {}
    return run


def _check_memory(target, methods, population, classes, steps):
    """Refuse, before anything runs, sizes whose searches would need more memory than the machine has."""
    for method in methods:
        if method == "gradient":
            check_ascent_memory(steps, classes, _ascent_batch(classes))
        elif method == "nes":  # one call scores whole classes' candidates
            from keras_fool.evolution.nes import images_per_call
            from keras_fool.evolution.runs import NES_BATCH

            batch = images_per_call(classes, NES_BATCH)
            check_evolution_memory(target, "direct", batch, eval_batch_size=batch)
        else:  # the raw model's speed is measured on one batch of the whole population
            check_evolution_memory(target, method, population, eval_batch_size=population)


def _second_network(second_model, target, crops, strategy):
    """The studies' targets: the second network, and each network at the other's image size."""
    from keras_fool.target import Target

    with strategy_scope(strategy):
        second = Target(second_model, crops=crops)
        if second.num_classes != target.num_classes:
            raise ValueError(f"The second network has {second.num_classes} classes, the first "
                             f"{target.num_classes}; transfer and ensemble need the same classes.")
        if second.class_names != target.class_names:  # a model of the user's: it takes the first's names
            second = Target(second.models[0], class_names=target.class_names, crops=crops)
        kwargs = dict(class_names=target.class_names, crops=crops)
        first_at_second = Target(target.models[0], image_size=second.model_shape, **kwargs)
        second_at_first = Target(second.models[0], image_size=target.model_shape, **kwargs)
    return {"second": second, "first_at_second": first_at_second, "second_at_first": second_at_first,
            "kwargs": kwargs}


def _save_progress(run, summary):
    """After every method and study, so a killed run keeps what it finished."""
    if run.chief:
        save_json(run.out / "summary.json", summary)


def _run_methods(run, summary):
    """Each method in turn (a finished one of a resumed run reused), its row appended to ``summary["rows"]``."""
    target, labels, stop_at, seed, log = run.target, run.labels, run.config["stop_at"], run.config["seed"], run.log
    for method in run.config["methods"]:
        reused = next((row for row in run.previous.get("rows", []) if row["method"] == method), None)
        if reused is not None and (run.out / method / "summary.json").is_file():
            log(f"{method}: reusing the finished run in {run.out / method}.")
            summary["rows"].append(reused)
            continue
        if method == "gradient":
            row = _timed_row(target, _ascent_batch(len(labels)), lambda: _ascend(
                target, run.folder.sub(method), labels, run.steps, run.settings, stop_at, seed, log), backward=True)
        elif method == "nes":
            from keras_fool.evolution.nes import images_per_call
            from keras_fool.evolution.runs import NES_BATCH

            batch = images_per_call(len(labels), NES_BATCH)
            row = _timed_row(target, batch, lambda: _nes(target, run.folder.sub(method), **run.evolve))
        else:
            row = _timed_row(target, run.config["population"],
                             lambda: _evolve(target, method, run.folder.sub(method), **run.evolve))
        row = {"method": method, **row, "paper_median_pct": PAPER_IMAGENET.get(method, {}).get("median_pct")}
        summary["rows"].append(row)
        log(f"{method}: median {format_confidence_pct(row['median_pct'])}%, max "
            f"{format_confidence_pct(row['max_pct'])}%, {row['evaluations']:,} evaluations in {row['seconds']:.0f} s "
            f"({format_number(row['speed_vs_raw_pct'], 1)}% of the raw model's speed)")
        _save_progress(run, summary)


def _run_studies(run, summary):
    """The transfer and ensemble studies with the second network (reused when a resumed run finished them)."""
    from keras_fool.target import Target

    previous, config, second = run.previous, run.config, run.second
    saved = previous.get("config", {})  # the studies' rows hold the methods' images shown to the second network
    reuse = saved.get("second_model") == config["second_model"] and saved.get("methods") == config["methods"]
    if "transfer" in run.studies:
        summary["transfer"] = (previous["transfer"] if reuse and "transfer" in previous else
                               _transfer(run.folder, run.target, second["second"], second["first_at_second"],
                                         second["second_at_first"], config["methods"], run.evolve))
        _save_progress(run, summary)
    if "ensemble" in run.studies:
        if reuse and "ensemble" in previous:
            summary["ensemble"] = previous["ensemble"]
        else:
            with strategy_scope(run.strategy):
                ensemble = Target([run.target.models[0], second["second_at_first"].models[0]], **second["kwargs"])
            summary["ensemble"] = _ensemble(run.folder, ensemble, run.target, second["second_at_first"], run.evolve)
        _save_progress(run, summary)


def _write(run, summary, markdown):
    """Hand the run's numbers to :func:`~keras_fool.report.imagenet.write_imagenet`; returns every output."""
    studies = run.studies
    rows = [(m, FOOLING_METHOD_TITLES[m]) for m in run.config["methods"]]
    rows += [(STUDY_FOLDERS[s], STUDY_NAMES[s]) for s in studies]
    second = _name(run.second["second"]) if studies else None
    return write_imagenet(run.out, run.folder.board, summary, markdown, rows, run.target, FIGURE_CLASSES, second)


def _previous_summary(out, config):
    """The summary a run with the same options left in ``out`` (finished methods and studies to reuse), or {}."""
    path = Path(out) / "summary.json"
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    current = json.loads(json.dumps({k: config[k] for k in REUSE_KEYS}))
    if not isinstance(saved, dict) or {k: saved.get("config", {}).get(k) for k in REUSE_KEYS} != current:
        return {}
    return saved


def _ascent_batch(classes):
    """Images per compiled gradient-ascent loop: ``classes`` split evenly into loops of at most ASCENT_BATCH."""
    return math.ceil(classes / math.ceil(classes / ASCENT_BATCH))


def _timed_row(target, batch, run, backward=False):
    """Run ``run()`` (an evolution or ascent, returning its summary) and describe it for the report.

    Budget, seconds, speed against the raw model at ``batch`` images (measured just before and
    just after the run, forward or with ``backward`` forward and backward) and confidences.
    """
    raw_before = model_throughput(target, batch * target.crops, backward=backward)
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    raw = (raw_before + model_throughput(target, batch * target.crops, backward=backward)) / 2.0
    speed = result["evaluations_per_second"]
    confidences = np.array([c["confidence"] for c in result["classes"]], np.float64)
    return {
        "evaluations": result["evaluations"],
        "generations_or_steps": result["generations"],
        "seconds": round(seconds, 1),
        "evaluations_per_second": speed,
        "raw_images_per_second": raw,
        "speed_vs_raw_pct": None if speed is None or math.isnan(speed) else 100.0 * speed * target.crops / raw,
        "median_pct": 100.0 * float(np.median(confidences)),
        "min_pct": 100.0 * float(confidences.min()),
        "max_pct": 100.0 * float(confidences.max()),
        "classes_at_90": int(np.sum(confidences >= 0.90)),
        "classes_at_99": int(np.sum(confidences >= 0.99)),
        "classes_at_9999": int(np.sum(confidences >= 0.9999)),
    }


def _study_evolution(study, target, folder, evolve):
    """A study's CPPN evolution against ``target`` into its sub-folder; returns that folder's path and the run's row."""
    inner = folder.sub(STUDY_FOLDERS[study])
    return inner.path, _timed_row(target, evolve["population"], lambda: _evolve(target, "cppn", inner, **evolve))


def _name(target):
    """A short name of a target's (first) model: the preset, the file's stem or the in-memory model's name."""
    source = target.get_config()["models"][0]
    if "preset" in source:
        return source["preset"]
    return Path(source["path"]).stem if "path" in source else source["model"]


def _transfer(folder, first, second, first_at_second, second_at_first, methods, evolve):
    """Supplement A.2: CPPN images evolved against the second network, and each network's images shown to the other."""
    from keras_fool.evaluation.transfer import transfer_between
    from keras_fool.evolution import load_archive

    out = folder.path
    folder, row = _study_evolution("transfer", second, folder, evolve)
    evolution = {"target": _name(second), **row}
    evolve["log"](f"cppn against {_name(second)}: median {format_confidence_pct(evolution['median_pct'])}%")
    # The CPPN images both ways first (the paper's comparison), then the first network's other images.
    a, b = _name(first), _name(second)
    shown = [("cppn_a_to_b", "cppn", out / "cppn", first, second_at_first, a, b, PAPER_TRANSFER["a_to_b"])]
    shown = shown if "cppn" in methods else []
    shown.append(("cppn_b_to_a", "cppn", folder, second, first_at_second, b, a, PAPER_TRANSFER["b_to_a"]))
    shown += [(f"{m}_a_to_b", m, out / m, first, second_at_first, a, b, None) for m in methods if m != "cppn"]
    rows = []
    for key, method, path, original, other, evolved_for, shown_to, paper in shown:
        images = load_archive(path / "archive.npz")["images"]
        statistics = transfer_between(images, original, other, batch_size=16)
        del statistics["probabilities"]
        rows.append({"shown": key, "method": method, "evolved_for": evolved_for, "shown_to": shown_to,
                     **statistics, "paper_top1_match_pct": paper})
    return {"second_model": _name(second), "evolution": evolution, "rows": rows, "paper": PAPER_TRANSFER}


def _ensemble(folder, ensemble, first, second_at_first, evolve):
    """Supplement B: CPPN images evolved against the mean of the two networks, and what each member says of them."""
    from keras_fool.evaluation.transfer import member_medians
    from keras_fool.evolution import load_archive

    path, row = _study_evolution("ensemble", ensemble, folder, evolve)
    arrays = load_archive(path / "archive.npz")
    members = member_medians(((_name(first), first), (_name(second_at_first), second_at_first)), arrays["images"],
                             arrays["labels"], batch_size=16)
    classes = len(arrays["labels"])
    row.update(members=[_name(first), _name(second_at_first)], member_median_pct=members,
               classes=classes, classes_at_90_pct=100.0 * row["classes_at_90"] / classes, paper=PAPER_ENSEMBLE_ROW)
    evolve["log"](f"cppn against the ensemble: median {format_confidence_pct(row['median_pct'])}%, "
                  f"{row['classes_at_90']}/{classes} classes >= 90%")
    return row
