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

TensorFlow and the evolution engine are imported inside the functions, so the command line can
check its options with :func:`check_imagenet_options` before TensorFlow starts.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import numpy as np

from keras_fool.distribute import is_chief, resolve_strategy
from keras_fool.experiments.report import ExperimentReport, format_confidence_pct, format_number
from keras_fool.gradient import ascent_settings
from keras_fool.io import check_output_dir, ensure_writable_dir, montage, save_csv, save_json, save_png, save_text
from keras_fool.summaries import SummaryWriter, run_logdir
from keras_fool.validation import check_int, check_number, check_seed

__all__ = [
    "DEFAULT_CLASSES",
    "METHODS",
    "PAPER_IMAGENET",
    "check_imagenet_options",
    "measure_speed",
    "model_throughput",
    "run_imagenet_experiment",
]

# Ten classes named in the paper's figures (Figure 1's CPPN images; Windsor tie from Figures S5-S8).
DEFAULT_CLASSES = ("king penguin", "starfish", "baseball", "electric guitar", "freight car", "remote control",
                   "peacock", "African grey", "lesser panda", "Windsor tie")
METHODS = ("direct", "cppn", "gradient")
ASCENT_BATCH = 32  # classes per compiled gradient-ascent loop
FIGURE_CLASSES = 10  # columns of figure1.png: the first ten classes (the paper's Figure 1 shows a selection too)
METHOD_NAMES = {"direct": "direct encoding", "cppn": "CPPN encoding", "gradient": "gradient ascent"}
# Nguyen et al. (2015) on ImageNet (AlexNet-like DNN, 1000 classes): the main text's median for the
# direct encoding, supplement F's for CPPNs after 5000 generations, supplement E's for gradient ascent.
PAPER_IMAGENET = {
    "direct": {"median_pct": 21.59, "setting": "main text, 1000 classes"},
    "cppn": {"median_pct": 88.11, "setting": "5000 generations of 400, 1000 classes (supplement F)"},
    "gradient": {"median_pct": 99.99, "setting": "'quickly produces confidence over 99.99%' (supplement E)"},
}


def check_imagenet_options(generations=1000, population=16, steps=None, methods=METHODS, crops=1,
                           regularization="none", stop_at=0.9999, seed=0, checkpoint_every=50):
    """The checked options of :func:`run_imagenet_experiment`; needs no TensorFlow.

    Returns:
        A dict of the checked values (``methods`` as a tuple in :data:`METHODS` order).

    Raises:
        TypeError, ValueError: a value of the wrong kind or out of range.
    """
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct names among {', '.join(METHODS)}. Received: methods={methods!r}")
    if isinstance(crops, bool) or crops not in (1, 10):
        raise ValueError(f"crops must be 1 or 10. Received: crops={crops!r}")
    ascent_settings(regularization)
    return {
        "generations": check_int("generations", generations),
        "population": check_int("population", population),
        "steps": None if steps is None else check_int("steps", steps),
        "methods": tuple(m for m in METHODS if m in methods),
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
                  steps=20, repeats=5, warmup=100, crops=1, seed=0, log=None):
    """Each method's speed against the raw model's at the same batch, measured alternately.

    The machine is shared, so its speed drifts; each repeat times the raw model (forward at batch
    ``population``, or forward and backward at the ascent's batch), then ``generations`` more
    generations of the direct and of the CPPN evolver (or ``steps`` gradient steps for every class),
    then the raw model again, and divides the method's speed by the mean of the two raw speeds.
    The evolvers first run ``warmup`` generations untimed (the CPPNs grow hidden nodes, which makes
    rendering dearer), the ascent is compiled and warmed once, and the first repeat's timings are
    dropped (TensorFlow's first calls). A timed ascent includes each batch's final forward pass.

    Returns:
        A dict per method: ``ratios`` (one per timed repeat), ``median_ratio``,
        ``evaluations_per_second`` and ``raw_images_per_second`` (medians).
    """
    from keras_fool.encodings import make_encoding
    from keras_fool.evolution import MapElites, Target
    from keras_fool.evolution.runs import BEST_SETTINGS
    from keras_fool.gradient import GradientAscent

    log = log or (lambda line: None)
    repeats = check_int("repeats", repeats, minimum=2)
    target = Target(model, crops=crops)
    labels = target.class_indices(list(classes) if not isinstance(classes, str) else classes)
    labels = list(range(target.num_classes)) if labels is None else labels
    evolvers = {}
    for method in ("direct", "cppn"):
        settings = BEST_SETTINGS[method]
        evolvers[method] = MapElites(target, make_encoding(method, target.image_shape, eta=settings["eta"]),
                                     population=population, classes=labels, seed=seed, selection=settings["selection"])
        evolvers[method].run(warmup)
    ascent_batch = math.ceil(len(labels) / math.ceil(len(labels) / ASCENT_BATCH))
    ascent = GradientAscent(target, classes=labels, steps=steps, seed=seed, batch_size=ASCENT_BATCH)
    ascent.trace()
    results = {m: {"ratios": [], "speeds": [], "raws": []} for m in METHODS}
    for repeat in range(repeats):
        for method in METHODS:
            backward = method == "gradient"
            batch = (ascent_batch if backward else population) * crops
            before = model_throughput(target, batch, backward=backward)
            start = time.perf_counter()
            if backward:
                ascent.run()  # every class from its start again, the compiled loop reused
                speed = len(labels) * steps / (time.perf_counter() - start)
            else:
                evolver = evolvers[method]
                evolver.run(evolver.generation + generations)
                speed = population * generations / (time.perf_counter() - start)
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


def _evolve(target, method, out, labels, generations, population, seed, paper, stop_at, resume, checkpoint_every,
            logdir, progress, log, strategy=None, chief=True):
    """One MAP-Elites run into ``out`` (evolve's files and checkpoint; none if not ``chief``); returns its summary."""
    from keras_fool.encodings import make_encoding
    from keras_fool.evolution import Checkpoint, EarlyStopping, MapElites, ProgressBar, TensorBoard, write_outputs
    from keras_fool.evolution.runs import BEST_SETTINGS, PAPER_SETTINGS

    settings = PAPER_SETTINGS if paper else BEST_SETTINGS[method]
    encoding = make_encoding(method, target.image_shape, eta=settings["eta"])
    evolver = MapElites(target, encoding, population=population, classes=labels, seed=seed,
                        selection=settings["selection"], strategy=strategy)
    checkpoint = (ensure_writable_dir(out) if chief else Path(out)) / "checkpoint.npz"
    if resume and checkpoint.is_file():  # every worker reads it: --out on a filesystem they share
        evolver.load_checkpoint(checkpoint)
        log(f"{method}: resuming from generation {evolver.generation} ({checkpoint}).")
    callbacks = [Checkpoint(checkpoint, every=checkpoint_every)] if chief else []
    if stop_at is not None:
        callbacks.append(EarlyStopping(stop_at))
    if logdir is not None and chief:
        callbacks.append(TensorBoard(logdir, image_every=checkpoint_every))
    if progress:
        callbacks.append(ProgressBar())
    evolver.trace()
    start = time.perf_counter()
    evolver.run(generations, callbacks)
    extra = {"evolution_seconds": time.perf_counter() - start,
             "replicas": 1 if strategy is None else strategy.num_replicas_in_sync}
    return write_outputs(evolver, out, extra) if chief else {**evolver.summary(), **extra}


def _ascend(target, out, labels, steps, settings, stop_at, seed, resume, logdir, log, chief=True):
    """Gradient ascent into ``out`` (evolve's files; nothing if not ``chief``); a finished run with the same config
    is reused."""
    from keras_fool.gradient import GradientAscent

    ascent = GradientAscent(target, classes=labels, steps=steps, settings=settings, stop_at=stop_at, seed=seed,
                            batch_size=ASCENT_BATCH)
    previous = Path(out) / "summary.json"
    if resume and previous.is_file() and (Path(out) / "archive.npz").is_file():
        saved = json.loads(previous.read_text())
        if saved.get("config") == json.loads(json.dumps(ascent.get_config())):
            log(f"gradient: reusing the finished ascent in {out}.")
            return saved
    if chief:
        ensure_writable_dir(out)
    ascent.trace()
    start = time.perf_counter()
    ascent.run(lambda line: log(f"gradient: {line}"))
    seconds = time.perf_counter() - start
    extra = {"evolution_seconds": seconds, "image_steps_per_second": ascent.image_steps_per_second}
    if not chief:
        return {**ascent.summary(), **extra}
    board = SummaryWriter(logdir)
    for step, row in enumerate(ascent.history[:ascent.iterations + 1]):
        board.scalars({"confidence/median": float(np.median(row)), "confidence/min": float(row.min()),
                       "confidence/max": float(row.max())}, step)
    board.close()
    return ascent.write(out, extra)


def run_imagenet_experiment(out, model="efficientnet_lite0_imagenet", classes=DEFAULT_CLASSES, generations=1000,
                            population=16, steps=None, methods=METHODS, crops=1, regularization="none",
                            stop_at=0.9999, paper=False, class_names=None, seed=0, resume=False, overwrite=False,
                            checkpoint_every=50, logdir=None, progress=False, log=None, strategy="default",
                            cpu_replicas=None):
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
        resume: continue the evolutions checkpointed in ``out``, reuse a finished ascent.
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

    Returns:
        An :class:`~keras_fool.experiments.report.ExperimentReport`.

    Raises:
        TypeError, ValueError: bad options or classes; ResumeError: a checkpoint written with
        other options.
    """
    from keras_fool.evolution import Target

    options = check_imagenet_options(generations, population, steps, methods, crops, regularization, stop_at, seed,
                                     checkpoint_every)
    log = log or (lambda line: None)
    strategy = resolve_strategy(strategy, cpu_replicas)
    chief = is_chief(strategy)
    if chief:  # another worker writes nothing, and must not refuse the folder its chief is filling
        check_output_dir(out, "summary.json", resume, overwrite)
        out = ensure_writable_dir(out)
    out = Path(out)
    board_root = run_logdir(logdir, out) if chief else None
    with strategy.scope() if strategy is not None else contextlib.nullcontext():  # mirrored model variables
        target = Target(model, class_names=class_names, crops=crops)
    labels = target.class_indices(classes)
    labels = list(range(target.num_classes)) if labels is None else labels
    budget = population * (generations + 1)
    if steps is None:
        steps = max(1, budget // len(labels) - 1)
    settings = ascent_settings(regularization)
    log(f"{len(labels)} classes, budget {budget:,} evaluations per method; gradient ascent: up to {steps} steps "
        f"per class.")

    rows, results = [], {}
    for method in options["methods"]:
        method_out = out / method
        logs = None if board_root is None else board_root / method
        batch = population if method != "gradient" else math.ceil(len(labels) / math.ceil(len(labels) / ASCENT_BATCH))
        raw_before = model_throughput(target, batch * crops, backward=method == "gradient")
        start = time.perf_counter()
        if method == "gradient":
            summary = _ascend(target, method_out, labels, steps, settings, stop_at, seed, resume, logs, log, chief)
        else:
            summary = _evolve(target, method, method_out, labels, generations, population, seed, paper, stop_at,
                              resume, checkpoint_every, logs, progress, log, strategy, chief)
        seconds = time.perf_counter() - start
        raw_after = model_throughput(target, batch * crops, backward=method == "gradient")
        raw = (raw_before + raw_after) / 2.0
        speed = summary["evaluations_per_second"]
        confidences = np.array([c["confidence"] for c in summary["classes"]], np.float64)
        row = {
            "method": method,
            "evaluations": summary["evaluations"],
            "generations_or_steps": summary["generations"],
            "seconds": round(seconds, 1),
            "evaluations_per_second": speed,
            "raw_images_per_second": raw,
            "speed_vs_raw_pct": None if speed is None or math.isnan(speed) else 100.0 * speed * crops / raw,
            "median_pct": 100.0 * float(np.median(confidences)),
            "min_pct": 100.0 * float(confidences.min()),
            "max_pct": 100.0 * float(confidences.max()),
            "classes_at_99": int(np.sum(confidences >= 0.99)),
            "classes_at_9999": int(np.sum(confidences >= 0.9999)),
            "paper_median_pct": PAPER_IMAGENET[method]["median_pct"],
        }
        rows.append(row)
        results[method] = summary
        log(f"{method}: median {format_confidence_pct(row['median_pct'])}%, max "
            f"{format_confidence_pct(row['max_pct'])}%, {row['evaluations']:,} evaluations in {seconds:.0f} s "
            f"({format_number(row['speed_vs_raw_pct'], 1)}% of the raw model's speed)")

    config = {"model": target.get_config()["models"], "classes": labels,
              "class_names": [target.class_names[c] for c in labels], "generations": generations,
              "population": population, "steps": steps, "budget_evaluations": budget,
              "methods": list(options["methods"]),
              "crops": crops, "regularization": regularization, "stop_at": stop_at, "paper": paper, "seed": seed}
    markdown = _report(rows, config)
    summary = {"config": config, "rows": rows, "paper": PAPER_IMAGENET,
               "replicas": 1 if strategy is None else strategy.num_replicas_in_sync}
    if not chief:  # another worker of a cluster: the same numbers, nothing written
        return ExperimentReport(markdown, summary, [])
    figure = _figure(out, options["methods"], target)
    columns = ("method", "evaluations", "generations_or_steps", "seconds", "evaluations_per_second",
               "raw_images_per_second", "speed_vs_raw_pct", "median_pct", "min_pct", "max_pct", "classes_at_99",
               "classes_at_9999", "paper_median_pct")
    save_text(out / "imagenet.md", markdown)
    save_csv(out / "imagenet.csv", rows, columns)
    save_json(out / "summary.json", summary)
    board = SummaryWriter(board_root)
    for row in rows:
        board.scalars({f"{row['method']}/{k}": row[k] for k in ("median_pct", "min_pct", "max_pct",
                                                                  "speed_vs_raw_pct")}, 0)
    board.text("imagenet", markdown)
    board.close()
    files = [out / "imagenet.md", out / "imagenet.csv", out / "summary.json", figure]
    files += [out / m for m in options["methods"]] + ([board_root] if board_root is not None else [])
    return ExperimentReport(markdown, summary, files)


def _figure(out, methods, target):
    """Figure 1 of the paper, our way: one row per method, one column per class (the first ten), with confidences."""
    from keras_fool.evolution import load_archive
    from keras_fool.evolution.outputs import format_confidence

    images, captions = [], []
    for method in methods:
        arrays = load_archive(out / method / "archive.npz")
        shown = slice(0, FIGURE_CLASSES)
        for image, label, confidence in zip(arrays["images"][shown], arrays["labels"][shown],
                                            arrays["confidences"][shown]):
            images.append(image)
            captions.append(f"{target.class_names[int(label)]}: {format_confidence(float(confidence))}")
    models = " + ".join(str(next(iter(m.values()))) for m in target.get_config()["models"])
    path = out / "figure1.png"
    save_png(path, montage(np.stack(images), captions, columns=len(images) // len(methods), scale=1,
                           title=f"{models}: images it labels with these confidences",
                           row_labels=[METHOD_NAMES[m] for m in methods]))
    return path


def _report(rows, config):
    classes = ", ".join(config["class_names"])
    lines = [
        "# Fooling an ImageNet classifier: direct encoding, CPPN, gradient ascent\n",
        f"Target: {', '.join(str(m) for m in config['model'])}{' (10 crops)' if config['crops'] == 10 else ''}. "
        f"Classes ({len(config['classes'])}): {classes}. Budget per method: {config['budget_evaluations']:,} "
        f"evaluations ({config['generations']} generations of {config['population']} after the random population; "
        f"gradient ascent up to {config['steps']} steps per class, regularization `{config['regularization']}`); "
        + (f"each method stops once every class reaches {100 * config['stop_at']:g}%." if config["stop_at"]
           else "no early stop.") + "\n",
        "| method | evaluations | generations / steps | seconds | evaluations/s | raw model images/s | % of raw "
        "| median % | min % | max % | >= 99.99% | paper median % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {METHOD_NAMES[row['method']]} | {row['evaluations']:,} | {row['generations_or_steps']} | "
            f"{row['seconds']:.0f} | {format_number(row['evaluations_per_second'], 1)} | "
            f"{format_number(row['raw_images_per_second'], 1)} | {format_number(row['speed_vs_raw_pct'], 1)} | "
            f"{format_confidence_pct(row['median_pct'])} | {format_confidence_pct(row['min_pct'])} | "
            f"{format_confidence_pct(row['max_pct'])} | {row['classes_at_9999']}/{len(config['classes'])} | "
            f"{row['paper_median_pct']} |")
    lines.append("")
    lines.append("Paper (Nguyen et al. 2015, AlexNet-like DNN, 1000 classes): "
                 + "; ".join(f"{METHOD_NAMES[m]} {p['median_pct']}% ({p['setting']})"
                             for m, p in PAPER_IMAGENET.items())
                 + ".")
    lines.append("")
    lines.append("Evaluations are images scored; a gradient step (forward and backward pass) counts as one evaluation "
                 "but costs about three forward passes. Speeds exclude tracing; `% of raw` compares each method with "
                 "the model alone at the same batch (forward, or forward and backward for gradient ascent), "
                 "measured just before and after it.")
    return "\n".join(lines) + "\n"
