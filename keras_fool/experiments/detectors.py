"""Would a detector catch these? Out-of-distribution detectors against fooling images, and against an attacker who knows them.

:func:`detector_study` is ``keras-fool experiment detectors``. For each detector
(:mod:`keras_fool.detectors`), fitted on in-distribution training images and calibrated at 95%
true-positive rate on one half of the held-out clean images, it measures on the other half and on:

* **non-adaptive** fooling images, evolved against the bare classifier (MAP-Elites with each
  encoding; NES for a colour model's pixels) and made by gradient ascent, once per seed and shown to every detector;
* **adaptive** fooling images: the same searches, with the same budget and seed, run against
  :class:`~keras_fool.detectors.GuardedTarget` (the classifier behind the detector), so the search
  climbs confidence and the detector's acceptance together (gradient ascent only where the
  detector's score has gradients; an adaptive MAP-Elites search starts from the non-adaptive
  elites of its encoding, a warm start);
* **real out-of-distribution images** that ship inside packages (:func:`keras_fool.data.load_ood_images`),

the AUROC and the false-positive rate (share accepted at the threshold) of each source, and the
share of classes fooled at >= 99% confidence *unflagged*: by the non-adaptive images, by the
adaptive ones, and in the worst case (a class counts if any image of either fools it). Each seed
is reported, and the median and range over seeds.

Checks against a false sense of security (as the robustness suite checks for gradient masking):
an adaptive attack weaker than the non-adaptive one is named (the worst case then rests on the
non-adaptive images), and under a detector that keeps any class unfooled in the worst case the
adaptive searches go on to ``unbounded_factor`` times the budget; the report says whether they
then fooled every class, or that they did not.

MNIST models calibrate on the MNIST test set and fit on its training set. ImageNet models have no
validation set offline: they calibrate and measure on the views of the real photos of
:data:`keras_fool.data.PHOTOS` (21 images, split by scene), and the detectors that need
labelled training images (Mahalanobis) or an autoencoder of the dataset (reconstruction) are
reported as not run, with the reason.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from keras_fool.experiments.report import ExperimentReport, check_evolution_memory, experiment_outputs
from keras_fool.io import check_output_dir
from keras_fool.validation import check_int, check_number, check_seed, derive_seed

__all__ = [
    "CONFIDENCE",
    "DETECTOR_NAMES",
    "DetectorStudy",
    "ENCODINGS",
    "adaptive_weaker",
    "check_detector_options",
    "detector_study",
    "security_checks",
]

# The detectors of keras_fool.detectors.DETECTORS, named here so options are checked before TensorFlow starts.
DETECTOR_NAMES = ("msp", "max_logit", "energy", "odin", "mahalanobis", "reconstruction", "union")
ENCODINGS = ("direct", "cppn")
CONFIDENCE = 0.99  # an image fools its class at this confidence or more, unflagged
DEFAULT_OOD = {"mnist": ("animal_mnist",), "imagenet": ("textures", "science_photos")}
# Why a detector cannot run on a dataset other than MNIST, offline.
NEEDS_MNIST = {
    "mahalanobis": "it fits class means on labelled training images, and there are none offline for this dataset",
    "reconstruction": "its autoencoder (dae_mnist) is trained on MNIST, and there is none for this dataset",
    "union": "its members (Mahalanobis and the reconstruction error) need MNIST's labelled images and autoencoder",
}
ADAPTIVE = "adaptive_"  # the prefix of an adaptive method's source name


@dataclasses.dataclass
class DetectorStudy:
    """What the detector study measured (numbers and images; nothing written).

    Attributes:
        config: the checked options, as ``summary.json`` holds them.
        detectors: detector name -> its row: ``status`` (``"run"`` or ``"not run"``), ``reason``
            (why not run), ``clean`` (accuracy, flagged rates, threshold, fitted settings), ``ood``
            (set -> AUROC and FPR), ``seeds`` (one dict per seed, see :func:`detector_study`) and
            ``summary`` (median, min and max over seeds).
        baseline: per seed, the share of classes each non-adaptive method fools at >= 99% with no detector.
        checks: the sentences of :func:`security_checks`, every detector's.
        examples: detector name -> (images, captions) of the first seed's adaptive images, one per class.
        paper: the fooling-class results to set beside (the paper's Table S2 and ours).
        seconds: wall time of the study.
    """

    config: dict
    detectors: dict
    baseline: list
    checks: list
    examples: dict
    paper: dict
    seconds: float


def check_detector_options(detectors=DETECTOR_NAMES, encodings=ENCODINGS, gradient=True, seeds=(0, 1, 2),
                           generations=200, population=200, steps=50, ood=None, fit_images=10000, held_out=None,
                           tpr=0.95, unbounded_factor=5, classes=None):
    """The checked options of :func:`detector_study`; needs no TensorFlow.

    Returns:
        A dict of the checked values (``detectors``, ``encodings``, ``seeds`` and ``ood`` as tuples).

    Raises:
        TypeError, ValueError: a value of the wrong kind or out of range, or an unknown name.
    """
    detectors = _names("detectors", detectors, DETECTOR_NAMES)
    encodings = _names("encodings", encodings, ENCODINGS, allow_empty=True)
    seeds = (seeds,) if isinstance(seeds, int) else tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be at least one seed, none repeated. Received: seeds={seeds!r}")
    seeds = tuple(check_seed(s) for s in seeds)
    if not isinstance(gradient, bool):
        raise TypeError(f"gradient must be True or False. Received: gradient={gradient!r}")
    if not encodings and not gradient:
        raise ValueError("The study needs a search: name at least one encoding, or keep gradient ascent on.")
    if ood is not None:
        from keras_fool.data import OOD_SETS

        ood = _names("ood", ood, tuple(OOD_SETS))
    tpr = check_number("tpr", tpr, strict=True, maximum=1.0)
    if tpr >= 1.0:
        raise ValueError(f"tpr must be below 1. Received: tpr={tpr:g}")
    return {
        "detectors": detectors, "encodings": encodings, "gradient": gradient, "seeds": seeds,
        "generations": check_int("generations", generations), "population": check_int("population", population),
        "steps": check_int("steps", steps), "ood": ood, "fit_images": check_int("fit_images", fit_images, 10),
        "held_out": None if held_out is None else check_int("held_out", held_out, 4), "tpr": tpr,
        "unbounded_factor": check_int("unbounded_factor", unbounded_factor, 2), "classes": classes,
    }


def _names(what, given, known, allow_empty=False):
    given = tuple(n.strip() for n in given.split(",") if n.strip()) if isinstance(given, str) else tuple(given)
    unknown = [n for n in given if n not in known]
    if unknown or (not given and not allow_empty) or len(set(given)) != len(given):
        raise ValueError(f"{what} must be distinct names among {', '.join(known)}. Received: {what}={given!r}")
    return given


def adaptive_weaker(non_adaptive_pct, adaptive_pct):
    """Whether the adaptive attack fooled a smaller share of classes than the non-adaptive one (it must not)."""
    return adaptive_pct < non_adaptive_pct


def security_checks(name, seeds):
    """The checks against a false sense of security of one detector, as sentences (none when all pass).

    Args:
        name: the detector's name.
        seeds: its per-seed rows: ``seed``, ``fooled_pct`` (``non_adaptive``, ``adaptive``,
            ``worst_case``) and ``unbounded`` (None, or ``factor``, ``evaluations``,
            ``adaptive_pct``, ``worst_case_pct``, ``black_box_pct``, ``every_class``,
            ``black_box_every_class``).

    Returns:
        A list of strings: an adaptive attack weaker than the non-adaptive one, per seed; and per seed
        whose worst case left classes unfooled, what the adaptive searches did at the unbounded budget.
    """
    lines = []
    for row in seeds:
        fooled, seed = row["fooled_pct"], row["seed"]
        if adaptive_weaker(fooled["non_adaptive"], fooled["adaptive"]):
            lines.append(f"{name}, seed {seed}: adaptive weaker than non-adaptive: the adaptive attack fooled "
                         f"{fooled['adaptive']:.0f}% of the classes unflagged, the non-adaptive one "
                         f"{fooled['non_adaptive']:.0f}%, so the worst case ({fooled['worst_case']:.0f}%) rests on the "
                         "non-adaptive images; a stronger adaptive attack may fool more.")
        weaker = row.get("adaptive_weaker_methods") or []
        if weaker:
            shares = ", ".join(f"{m} {row['fooled_by_method_pct'][ADAPTIVE + m]:.0f}% against "
                               f"{row['fooled_by_method_pct'][m]:.0f}%" for m in weaker)
            lines.append(f"{name}, seed {seed}: the adaptive search of one method fooled fewer classes than the same "
                         f"search against the bare classifier ({shares}): the adaptive fitness has valleys that search "
                         "did not cross, so the worst case keeps the non-adaptive images.")
        unbounded = row.get("unbounded")
        if unbounded is not None:
            budget = f"{unbounded['factor']}x the budget ({unbounded['evaluations']:,} evaluations per evolution)"
            within = (f"{name}, seed {seed}: within the budget the worst case fooled {fooled['worst_case']:.0f}% of the "
                      f"classes, the black-box one {fooled['black_box']:.0f}%;")
            black_box = unbounded.get("black_box_every_class")
            if black_box:
                lines.append(f"{within} the adaptive searches at {budget} eventually fooled every class, by queries "
                             "alone.")
            elif unbounded["every_class"]:
                lines.append(f"{within} at {budget} every class fell, but not to the evolved images alone (black-box "
                             f"{unbounded.get('black_box_pct', 0.0):.0f}%): gradients were needed.")
            else:
                lines.append(f"{within} at {budget} the adaptive attack did not fool every class "
                             f"(adaptive {unbounded['adaptive_pct']:.0f}%, worst case {unbounded['worst_case_pct']:.0f}%):"
                             " the detector held against these searches, which is no proof that it holds.")
    return lines


def detector_study(out=None, model="lenet_mnist", detectors=DETECTOR_NAMES, encodings=ENCODINGS, gradient=True,
                   seeds=(0, 1, 2), generations=200, population=200, steps=50, ood=None, fit_images=10000,
                   held_out=None, tpr=0.95, unbounded_factor=5, classes=None, overwrite=False, log=None):
    """Out-of-distribution detectors against non-adaptive and adaptive fooling images, and real outliers.

    Args:
        out: output folder (created if needed; refused if it holds a ``summary.json`` unless
            ``overwrite``); None computes and writes nothing.
        model: a preset name, ``.keras`` path or Keras model: an MNIST classifier (28x28x1, 10
            classes) or an ImageNet one (1000 classes).
        detectors: names among :data:`DETECTOR_NAMES` (a list or a comma-separated string).
        encodings: encodings among :data:`ENCODINGS` (possibly none), searched by MAP-Elites (NES for a
            colour model's direct encoding, at the same evaluations).
        gradient: also gradient ascent (``steps`` steps per class).
        seeds: the seeds; every search of a seed derives its seed from it.
        generations: generations of each evolution; its budget is ``population * (generations + 1)``
            evaluations (the default is ``keras-fool evolve``'s 40,200).
        population: offspring per generation.
        steps: gradient-ascent steps per class.
        ood: out-of-distribution sets of :func:`keras_fool.data.load_ood_images`; None: animal
            silhouettes for MNIST, textures and science photos for ImageNet.
        fit_images: MNIST training images the detectors are fitted on.
        held_out: MNIST test images (the first ones), half to calibrate, half to measure; None: all.
            ImageNet models use the 21 views of the real photos, split by scene.
        tpr: the share of clean calibration images each detector accepts.
        unbounded_factor: under a detector that leaves a class unfooled in the worst case, the
            adaptive searches go on to this many times the budget.
        classes: class names or indices to attack; None: every class of an MNIST model, the ten
            classes of ``keras-fool experiment imagenet`` for an ImageNet model.
        overwrite: replace the results in ``out``.
        log: callable taking one progress line; silent if None.

    Returns:
        An :class:`~keras_fool.experiments.report.ExperimentReport`; its ``summary`` holds, per
        detector and seed, ``sources`` (source -> ``auroc``, ``fpr_pct``), ``fooled_pct``
        (``non_adaptive``, ``adaptive``, ``worst_case``), ``fooled_by_method_pct``,
        ``adaptive_weaker`` and ``unbounded``.

    Raises:
        TypeError, ValueError: bad options, or a model whose clean images are not available offline.
    """
    from keras_fool.report.detectors import detectors_markdown, detectors_summary, write_detectors
    from keras_fool.target import Target

    config = check_detector_options(detectors, encodings, gradient, seeds, generations, population, steps, ood,
                                    fit_images, held_out, tpr, unbounded_factor, classes)
    if out is not None:
        check_output_dir(out, "summary.json", overwrite=overwrite, resumable=False)
    target = Target(model)
    dataset = _dataset(model, target)
    labels = _classes(target, dataset, classes)
    for encoding in config["encodings"]:
        check_evolution_memory(target, encoding, config["population"])
    config.update(model=str(model) if not hasattr(model, "name") else model.name, dataset=dataset,
                  classes=[target.class_names[c] for c in labels], ood=config["ood"] or DEFAULT_OOD[dataset])
    study = compute_detector_study(target, labels, config, log=log)
    markdown, summary = detectors_markdown(study), detectors_summary(study)
    if out is None:
        return ExperimentReport(markdown, summary, [])
    out, board = experiment_outputs(out, None, True, overwrite)
    return ExperimentReport(markdown, summary, write_detectors(out, study, markdown, summary), out)


def _dataset(model, target):
    """``"mnist"`` or ``"imagenet"``: the dataset whose clean images the study calibrates on."""
    from keras_fool import zoo

    if isinstance(model, str) and model in zoo.list_presets():
        dataset = zoo.get_preset(model).dataset
    elif tuple(target.image_shape) == (28, 28, 1) and target.num_classes == 10:
        dataset = "mnist"
    elif target.num_classes == 1000 and target.image_shape[-1] == 3:
        dataset = "imagenet"
    else:
        dataset = None
    if dataset not in DEFAULT_OOD:
        raise ValueError(f"The detector study has clean images offline for MNIST classifiers (28x28x1, 10 classes) and "
                         f"ImageNet ones (1000 classes); {model!r} takes {tuple(target.image_shape)} with "
                         f"{target.num_classes} classes.")
    return dataset


def _classes(target, dataset, classes):
    if classes is None and dataset == "imagenet":
        from keras_fool.experiments.imagenet import DEFAULT_CLASSES

        classes = list(DEFAULT_CLASSES)
    labels = target.class_indices(classes) if classes is not None else None
    return list(range(target.num_classes)) if labels is None else [int(c) for c in labels]


def _clean_images(target, config):
    """Fit, calibration and measurement images with their correct classes (sets of class indices)."""
    if config["dataset"] == "mnist":
        from keras_fool.experiments.report import load_test_set

        (x_train, y_train), (x_test, y_test) = load_test_set(config["held_out"], config["fit_images"])
        # Alternate images, so both halves hold both of the test set's writer pools (its first and last 5,000).
        correct = [{int(y)} for y in y_test]
        return {"fit": (x_train, y_train), "calibration": (x_test[0::2], correct[0::2]),
                "measure": (x_test[1::2], correct[1::2]),
                "fit_on": f"the first {len(x_train):,} MNIST training images",
                "held_out": f"the first {len(x_test):,} MNIST test images: the even-numbered "
                            f"{len(correct[0::2]):,} to calibrate, the odd-numbered {len(correct[1::2]):,} to measure"}
    from keras_fool.data import load_real_photos

    images, photos = load_real_photos(target.image_shape[0])
    scenes = list(dict.fromkeys(p.scene for p in photos))
    correct = [set(target.class_indices(list(p.classes))) for p in photos]
    calibration = np.array([scenes.index(p.scene) % 2 == 0 for p in photos])
    pick = lambda mask: (images[mask], [c for c, m in zip(correct, mask) if m])  # noqa: E731
    return {"fit": (images[calibration], None), "calibration": pick(calibration), "measure": pick(~calibration),
            "fit_on": "the calibration photos (no training images offline; only ODIN fits, choosing its step)",
            "held_out": f"the {len(images)} views of the {len(set(p.name for p in photos))} real photos of "
                        f"keras_fool.data.PHOTOS, split by scene: {int(calibration.sum())} to calibrate, "
                        f"{int((~calibration).sum())} to measure"}


def _accuracy_pct(target, images, correct):
    predicted = np.asarray(target.predict(images)).argmax(axis=1)
    return 100.0 * float(np.mean([int(p) in c for p, c in zip(predicted, correct)]))


def _searches(target, labels, config, seed, gradient):
    """The searches of one seed against ``target``, built (not run): method -> (search, its budget in its own
    units: generations, NES iterations or ascent steps).

    MAP-Elites with the best measured settings, or, for a colour model's direct encoding, NES with the
    same number of evaluations (the stronger search there, as ``keras-fool evolve`` and the audit use).
    """
    from keras_fool.evolution import GradientAscent
    from keras_fool.evolution.runs import build_search

    searches = {encoding: build_search(target, encoding, config["population"], config["generations"], labels,
                                       derive_seed(seed, i))
                for i, encoding in enumerate(config["encodings"])}
    if gradient:
        searches["gradient"] = (GradientAscent(target, classes=labels, steps=config["steps"],
                                               seed=derive_seed(seed, len(ENCODINGS))), config["steps"])
    return searches


def _run(searches, config, factor=1, log=None):
    """Run every search to ``factor`` times its budget (the same start, followed further); method -> its images,
    one per class."""
    images = {}
    for method, (search, budget) in searches.items():
        start = time.perf_counter()
        search.run(factor * budget)
        images[method] = search.images()
        if log:
            log(f"  {method}: {search.evaluations:,} evaluations in {time.perf_counter() - start:.1f} s")
    return images


def _warm_start(searches, bare_searches, guard):
    """Start each adaptive MAP-Elites search from the non-adaptive elites of its encoding.

    After the search's random first generation, the bare search's elites are offered to its archive
    at their guarded fitness: the adaptive attacker begins where the plain one got to and climbs the
    detector's acceptance from there, instead of having to cross the valley of flagged images between
    a random image and a confident one (which cold adaptive searches often did not).
    """
    from keras_fool.evolution import MapElites

    for method, (search, _) in searches.items():
        plain = bare_searches.get(method, (None,))[0]
        if isinstance(search, MapElites) and isinstance(plain, MapElites):
            search.start_from(plain.archive.genomes)


def _unbounded(guard, searches, config, labels, row, log):
    """Run the adaptive searches to ``unbounded_factor`` times the budget; what they fooled then."""
    longer = _run(searches, config, factor=config["unbounded_factor"], log=log)
    fooled = {m: guard.verdict(x, labels)["fooled"] for m, x in longer.items()}
    size = len(labels)
    either = _any(fooled, list(fooled), size)
    evolved = _any(fooled, [m for m in fooled if m != "gradient"], size)
    return {"factor": config["unbounded_factor"],
            "evaluations": config["population"] * (config["unbounded_factor"] * config["generations"] + 1),
            "adaptive_pct": _pct(either), "worst_case_pct": _pct(either | row["_worst"]),
            "black_box_pct": _pct(evolved | row["_black_box"]), "every_class": bool(either.all()),
            "black_box_every_class": bool((evolved | row["_black_box"]).all())}


def _source(clean_scores, scores, threshold):
    from keras_fool.evaluation.detection import auroc, false_positive_rate

    return {"auroc": auroc(clean_scores, scores), "fpr_pct": 100.0 * false_positive_rate(scores, threshold)}


def _pct(fooled):
    return 100.0 * float(np.mean(fooled))


def _any(fooled, methods, size):
    return np.any([fooled[m] for m in methods], axis=0) if methods else np.zeros(size, bool)


def compute_detector_study(target, labels, config, log=None):
    """Fit, calibrate and attack every detector (see :func:`detector_study`); writes nothing.

    Args:
        target: the classifier's :class:`~keras_fool.target.Target`.
        labels: the class indices attacked.
        config: :func:`check_detector_options`' values plus ``dataset`` and ``ood`` (a tuple of set names).
        log: callable taking one progress line; silent if None.

    Returns:
        A :class:`DetectorStudy`.
    """
    from keras_fool.data import load_ood_images
    from keras_fool.report.detectors import fooling_class_results

    log = log or (lambda line: None)
    start = time.perf_counter()
    clean = _clean_images(target, config)
    from keras_fool.evolution.runs import default_search

    config.update(fit_on=clean["fit_on"], held_out_images=clean["held_out"],
                  searches={e: default_search(e, target.image_shape) for e in config["encodings"]})
    accuracy = _accuracy_pct(target, *clean["measure"])
    ood = {name: load_ood_images(name, target.image_shape) for name in config["ood"]}
    rows, guards = _fit_detectors(target, config, clean, accuracy, ood, log)
    baseline, examples, size = [], {}, len(labels)
    label_array = np.asarray(labels)
    for seed in config["seeds"]:
        log(f"seed {seed}: non-adaptive searches against the bare classifier")
        bare_searches = _searches(target, labels, config, seed, config["gradient"])
        bare = _run(bare_searches, config, log=log)
        bare_fooled = {m: np.asarray(target.predict(x))[np.arange(size), label_array] >= CONFIDENCE
                       for m, x in bare.items()}
        baseline.append({"seed": seed, "fooled_by_method_pct": {m: _pct(f) for m, f in bare_fooled.items()},
                         "non_adaptive_pct": _pct(_any(bare_fooled, list(bare), size))})
        for name, guard in guards.items():
            log(f"seed {seed}: adaptive searches against {name}")
            searches = _searches(guard, labels, config, seed, config["gradient"] and guard.has_gradients)
            _warm_start(searches, bare_searches, guard)
            adaptive = _run(searches, config, log=log)
            row = _seed_row(guard, rows[name]["measured_scores"], label_array, bare, adaptive, seed)
            if row["fooled_pct"]["black_box"] < 100.0:
                log(f"seed {seed}: {name} kept classes unfooled; adaptive searches to "
                    f"{config['unbounded_factor']}x the budget")
                row["unbounded"] = _unbounded(guard, searches, config, label_array, row, log)
            row.pop("_worst", None)
            row.pop("_black_box", None)
            if name not in examples:
                examples[name] = _examples(guard, label_array, adaptive, target.class_names)
            rows[name]["seeds"].append(row)
            log(f"seed {seed}: {name}: fooled unflagged: non-adaptive {row['fooled_pct']['non_adaptive']:.0f}%, "
                f"adaptive {row['fooled_pct']['adaptive']:.0f}%, worst case {row['fooled_pct']['worst_case']:.0f}%")
    checks = []
    for name, row in rows.items():
        row.pop("measured_scores", None)
        if row["status"] == "run":
            row["summary"] = _over_seeds(row["seeds"])
            row["checks"] = security_checks(name, row["seeds"])
            checks += row["checks"]
    for line in checks:
        log(f"check: {line}")
    return DetectorStudy(dict(config), rows, baseline, checks, examples, fooling_class_results(),
                         time.perf_counter() - start)



def _fit_detectors(target, config, clean, accuracy, ood, log):
    """Fit and calibrate each detector; returns (rows: name -> its clean and OOD row, guards: name -> GuardedTarget)."""
    from keras_fool.detectors import GuardedTarget, make_detector

    rows, guards = {}, {}
    for name in config["detectors"]:
        reason = NEEDS_MNIST.get(name) if config["dataset"] != "mnist" else None
        detector = None
        if reason is None:
            try:
                detector = make_detector(name, target)
            except (TypeError, ValueError) as error:  # a model this detector cannot read
                reason = str(error)
        if detector is None:
            rows[name] = {"status": "not run", "reason": reason}
            log(f"{name}: not run: {reason}")
            continue
        x_fit, y_fit = clean["fit"]
        detector.fit(x_fit, None if y_fit is None else np.asarray(y_fit))
        detector.calibrate(clean["calibration"][0], tpr=config["tpr"])
        measured = detector.score(clean["measure"][0])
        guards[name] = GuardedTarget(detector)
        rows[name] = {
            "status": "run", "reason": None, "measured_scores": measured,
            "clean": {"accuracy_pct": accuracy, "flagged_pct": _pct(measured > detector.threshold),
                      "calibration_flagged_pct": _pct(detector.flag(clean["calibration"][0])),
                      "threshold": detector.threshold, "settings": detector.get_config()},
            "ood": {f"ood_{s}": _source(measured, detector.score(images), detector.threshold)
                    for s, images in ood.items()},
            "seeds": [],
        }
        log(f"{name}: threshold {detector.threshold:.6g}, {rows[name]['clean']['flagged_pct']:.1f}% of clean images "
            "flagged")
    return rows, guards

def _seed_row(guard, clean_scores, labels, bare, adaptive, seed):
    """One detector's measures on one seed's non-adaptive (``bare``) and ``adaptive`` images."""
    threshold = guard.detector.threshold
    verdicts = {m: guard.verdict(x, labels) for m, x in bare.items()}
    verdicts.update({ADAPTIVE + m: guard.verdict(x, labels) for m, x in adaptive.items()})
    fooled = {m: v["fooled"] for m, v in verdicts.items()}
    plain = [m for m in fooled if not m.startswith(ADAPTIVE)]
    climbed = [m for m in fooled if m.startswith(ADAPTIVE)]
    non_adaptive, adaptive_any = _any(fooled, plain, len(labels)), _any(fooled, climbed, len(labels))
    worst = non_adaptive | adaptive_any
    evolved = [m for m in fooled if m.removeprefix(ADAPTIVE) != "gradient"]  # queries only: no gradients
    black_box = _any(fooled, evolved, len(labels))
    by_method = {m: _pct(f) for m, f in fooled.items()}
    return {
        "seed": seed,
        "sources": {m: _source(clean_scores, v["score"], threshold) for m, v in verdicts.items()},
        "fooled_pct": {"non_adaptive": _pct(non_adaptive), "adaptive": _pct(adaptive_any), "worst_case": _pct(worst),
                       "black_box": _pct(black_box)},
        "fooled_by_method_pct": by_method,
        "adaptive_weaker": adaptive_weaker(_pct(non_adaptive), _pct(adaptive_any)),
        "adaptive_weaker_methods": [m for m in plain if ADAPTIVE + m in by_method
                                    and adaptive_weaker(by_method[m], by_method[ADAPTIVE + m])],
        "unbounded": None,
        "_worst": worst,
        "_black_box": black_box,
    }


def _examples(guard, labels, adaptive, class_names):
    """Per class, the adaptive image that fools it best (unflagged first, then confidence), with a caption."""
    images, captions = [], []
    verdicts = {m: guard.verdict(x, labels) for m, x in adaptive.items()}
    for i, label in enumerate(labels):
        method = max(verdicts, key=lambda m: (not verdicts[m]["flagged"][i], verdicts[m]["confidence"][i]))
        v = verdicts[method]
        images.append(adaptive[method][i])
        captions.append(f"{class_names[label]} {100 * v['confidence'][i]:.1f}%{' flagged' if v['flagged'][i] else ''}")
    return np.stack(images), captions


def _over_seeds(seeds):
    """Median, min and max over seeds of every number of the per-seed rows (nested as they are)."""

    def spread(values):
        return {"median": float(np.median(values)), "min": float(np.min(values)), "max": float(np.max(values))}

    sources = {k: {m: spread([s["sources"][k][m] for s in seeds]) for m in ("auroc", "fpr_pct")}
               for k in seeds[0]["sources"]}
    return {"sources": sources,
            "fooled_pct": {k: spread([s["fooled_pct"][k] for s in seeds]) for k in seeds[0]["fooled_pct"]},
            "adaptive_weaker_seeds": [s["seed"] for s in seeds if s["adaptive_weaker"]],
            "unbounded_seeds": [s["seed"] for s in seeds if s["unbounded"] is not None],
            "unbounded_every_class": [s["unbounded"]["every_class"] for s in seeds if s["unbounded"] is not None]}
