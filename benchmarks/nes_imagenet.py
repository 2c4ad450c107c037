"""Black-box searches on EfficientNet-Lite0 at the paper's per-class budget (issue 23, item 2).

Runs each search (``--searches``) once per seed on the ten default classes of ``experiment imagenet`` (or
``--classes``), with at most ``--budget`` evaluations per class, into ``OUT/{search}_s{seed}``; a cell whose
``summary.json`` exists is read, not run again. The searches:

* ``map-elites-direct``, ``map-elites-cppn``: ``keras-fool evolve``'s MAP-Elites (population 16);
* ``nes-pixels``, ``nes-cppn``: :class:`~keras_fool.evolution.NES` over low-resolution pixels or CPPN weights;
* ``map-elites-then-nes-cppn``: MAP-Elites' CPPN for half the budget, then NES over the weights of each class's
  elite (an experiment: topologies grown by evolution, weights climbed by a gradient estimate);
* ``nes-pixels`` with ``--surrogate MODEL``: each class starts from gradient ascent on ``MODEL`` (a transfer
  prior; only the surrogate is differentiated, the target still only queried);
* with ``--spend-all`` (``nes-pixels``, ``nes-cppn``), ``NES(spend_all=True)`` (the library's default): NES goes
  on after its generations while the next one fits in what they would have cost, so the evaluations of classes
  that stopped at 99.99% go to the classes still searched; without it the benchmark passes ``spend_all=False``,
  as its first rows were measured;
* ``cma-me-pixels``: :class:`~keras_fool.evolution.cma_me.CMAME` (sep-CMA-ES emitters ranked by improvement) over
  the same low-resolution pixels (``--cma-options`` for its keyword arguments);
* ``cma-me-cppn``: :class:`~keras_fool.evolution.cma_cppn.CPPNCMAME` (a sep-CMA-ES per class over its CPPN's
  weights, NES's generation 0 and budget; ``--cma-options`` for its keyword arguments, ``--spend-all`` as NES).
* ``map-elites-cppn`` with ``--surrogate MODEL`` (one model): MAP-Elites' CPPN first evolves against ``MODEL``
  for the whole budget (queries the attacker makes of its own copy, not of the target), then the target's run
  starts from those elites, offered after its generation 0 (one query each, counted; the target's run is a
  generation shorter to make room): does a CPPN search carry over from a sibling network as NES's start does?
* ``map-elites-direct``, ``map-elites-cppn`` with ``--cells all``: the archive holds a cell for every one of the
  target's 1,000 classes (parents are drawn from all of them), the budget and the numbers stay those of
  ``--classes``: a query answers every class, so the extra cells cost nothing; do they lend the classes read
  stepping stones, as a run over more classes does?

Prints the median over classes (median and range over seeds), the classes at >= 99% and the evaluations/s.

    .venv/bin/python benchmarks/nes_imagenet.py --out runs/nes-imagenet --seeds 0,1,2
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

MODEL = "efficientnet_lite0_imagenet"
SEARCHES = ("map-elites-direct", "map-elites-cppn", "nes-pixels", "nes-cppn", "map-elites-then-nes-cppn", "cma-me-pixels",
            "cma-me-cppn")

# map-elites-cppn with --surrogate: each class's confidence on the surrogate, on the target at its generation 0,
# and on the target once the surrogate's elites were offered
TRANSFER_KEYS = ("surrogate_confidences", "generation_0_confidences", "after_transfer_confidences")


def run_cell(folder, search, seed, budget, classes, options, cma_options=None, surrogate=None, spend_all=False,
             cells=None):
    from keras_fool.encodings import make_encoding
    from keras_fool.evolution import run_evolution
    from keras_fool.evolution import cma_me
    from keras_fool.evolution.nes import NES, generations_within
    from keras_fool.evolution.outputs import write_outputs
    from keras_fool.target import Target

    if search == "map-elites-cppn" and surrogate:
        return _surrogate_map_elites(folder, seed, budget, classes, surrogate)
    if search in ("map-elites-direct", "map-elites-cppn"):
        population = 16
        generations = budget * len(classes.split(",")) // population - 1
        return run_evolution(folder, models=[MODEL], search="map-elites", encoding=search.split("-")[-1], seed=seed,
                             generations=generations, population=population, classes=cells or classes,
                             overwrite=True, progress=False)
    target = Target(MODEL)
    labels = target.class_indices(classes)
    encoding = make_encoding("cppn" if search.endswith("-cppn") else "direct", target.image_shape)
    if search == "map-elites-then-nes-cppn":
        # NES's budget counts from its own generation 0, which this start replaces: no spend_all here
        evolver, generations = _warm_nes(target, encoding, labels, seed, budget, {**options, "spend_all": False})
    elif search == "cma-me-pixels":  # at most `budget` evaluations per class on average, as NES
        evolver = cma_me.CMAME(target, encoding, classes=labels, seed=seed, **(cma_options or {}))
        generations = cma_me.generations_within(evolver, budget * len(labels))
    elif search == "cma-me-cppn":  # NES's generation 0 and generations, so NES's budget
        from keras_fool.evolution.cma_cppn import CPPNCMAME

        evolver = CPPNCMAME(target, encoding, classes=labels, seed=seed,
                            **{"spend_all": spend_all, **(cma_options or {})})
        generations = generations_within(evolver, budget * len(labels))
    else:
        if surrogate:  # one model, or several (an ensemble: mean probabilities)
            models = surrogate.split(",")
            size = {"image_size": target.image_shape[:2]} if len(models) > 1 else {}  # members of other sizes
            options = {**options, "surrogate": Target(models, **size)}
        # NES spends what stopped classes leave only with --spend-all here, as the rows measured before it
        evolver = NES(target, encoding, classes=labels, seed=seed, **{"spend_all": spend_all, **options})
        generations = generations_within(evolver, budget * len(labels))
    start = time.perf_counter()
    evolver.trace()  # generation 0 (with a surrogate, its gradient ascent) and the compiled step
    begun = time.perf_counter()
    evolver.run(generations)
    folder.mkdir(parents=True, exist_ok=True)
    return write_outputs(evolver, folder, {"evolution_seconds": time.perf_counter() - begun,
                                           "start_seconds": begun - start})


def _surrogate_map_elites(folder, seed, budget, classes, surrogate):
    """An experiment, not a library search: MAP-Elites' CPPN on ``surrogate``, then on the target from its elites."""
    from keras_fool.encodings import make_encoding
    from keras_fool.evolution import MapElites
    from keras_fool.evolution.outputs import write_outputs
    from keras_fool.target import Target

    target, helper_target = Target(MODEL), Target(surrogate)
    labels = target.class_indices(classes)
    population = 16
    generations = budget * len(labels) // population - 1  # keras-fool evolve's MAP-Elites row: the same budget
    start = time.perf_counter()
    helper = MapElites(helper_target, make_encoding("cppn", helper_target.image_shape), population=population,
                       classes=labels, seed=seed)
    helper.run(generations)
    begun = time.perf_counter()
    evolver = MapElites(target, make_encoding("cppn", target.image_shape), population=population, classes=labels,
                        seed=seed)
    evolver.run(0)
    own_start = evolver.archive.confidences.copy()
    evolver.start_from(helper.archive.genomes)
    transferred = evolver.archive.confidences.copy()
    evolver.evaluations += len(labels)  # the offered elites are queries of the target too
    evolver.run(generations - 1)
    folder.mkdir(parents=True, exist_ok=True)
    return write_outputs(evolver, folder, {
        "evolution_seconds": time.perf_counter() - begun, "start_seconds": begun - start, "surrogate": surrogate,
        "surrogate_confidences": helper.archive.confidences.tolist(),
        "generation_0_confidences": own_start.tolist(), "after_transfer_confidences": transferred.tolist()})


def _warm_nes(target, encoding, labels, seed, budget, options):
    """An experiment, not a library search: MAP-Elites grows CPPN topologies for half the budget, then NES
    climbs the weights of each class's elite (its topology fixed) with the other half."""
    import tensorflow as tf

    from keras_fool.evolution import MapElites
    from keras_fool.evolution.nes import NES

    population, total = 16, budget * len(labels)
    elites = MapElites(target, encoding, population=population, classes=labels, seed=seed)
    elites.run(total // 2 // population - 1)
    nes = NES(target, encoding, classes=labels, seed=seed, **options)
    genomes = elites.archive.genomes
    nes.topology, nes.theta = dict(genomes), genomes["weight"]
    nes.velocity = tf.zeros_like(nes.theta)
    nes.archive.set_state(genomes, elites.archive.fitness)
    nes.generation, nes.evaluations = 0, elites.evaluations
    return nes, (total - elites.evaluations) // (len(labels) * (nes.samples + 1))


def _median_speed(cells):
    speeds = [c["speed"] for c in cells if c["speed"] is not None]  # None: no generation was timed (tiny budgets)
    return f"{np.median(speeds):.0f}" if speeds else "-"


def spread(values, scale=100.0, digits=2):
    values = np.asarray(values, dtype=float) * scale
    return f"{np.median(values):.{digits}f} [{values.min():.{digits}f}-{values.max():.{digits}f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/nes-imagenet")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--searches", default=",".join(SEARCHES))
    parser.add_argument("--budget", type=int, default=2000, help="evaluations per class")
    parser.add_argument("--classes", default=None, help="default: experiment imagenet's ten")
    parser.add_argument("--options", default="{}", help="NES keyword arguments as JSON, e.g. '{\"momentum\": 0.9}'")
    parser.add_argument("--cma-options", default="{}", help="CMAME keyword arguments as JSON, e.g. '{\"emitters\": 5}'")
    parser.add_argument("--surrogate", default=None,
                        help="nes-pixels starts from gradient ascent on this model (comma-separated: an ensemble), "
                        "e.g. efficientnet_lite1_imagenet; map-elites-cppn starts from MAP-Elites' elites on it")
    parser.add_argument("--spend-all", action="store_true",
                        help="NES: after its generations, go on while the next generation fits in the whole budget "
                        "(the evaluations classes at 99.99%% did not spend go to the others)")
    parser.add_argument("--cells", default=None, choices=["all"],
                        help="map-elites-*: a cell for every class of the target, read on --classes (the budget's)")
    parser.add_argument("--json", default=None, help="Also write every number here.")
    args = parser.parse_args()
    from keras_fool.class_names import resolve_classes
    from keras_fool.experiments.imagenet import DEFAULT_CLASSES

    classes = args.classes or ",".join(DEFAULT_CLASSES)
    seeds = [int(s) for s in args.seeds.split(",")]
    searches = args.searches.split(",")
    options = json.loads(args.options)
    cma_options = json.loads(args.cma_options)
    out = Path(args.out)
    rows = {}
    for search in searches:
        cells = []
        for seed in seeds:
            folder = out / f"{search}_s{seed}"
            if not (folder / "summary.json").is_file():
                run_cell(folder, search, seed, args.budget, classes, options, cma_options, args.surrogate,
                         args.spend_all, args.cells)
            summary = json.loads((folder / "summary.json").read_text())
            entries = summary["classes"]
            if args.cells:  # a cell for every class, in class order: the numbers are read on --classes
                read = set(resolve_classes(classes, [c["name"] for c in entries]))
                entries = [c for c in entries if c["label"] in read]
            conf = np.array([c["confidence"] for c in entries])
            cells.append({"seed": seed, "confidences": conf.tolist(), "median": float(np.median(conf)),
                          "start_seconds": summary.get("start_seconds"),
                          "at_99": int((conf >= 0.99).sum()), "evaluations": summary["evaluations"],
                          "speed": summary["evaluations_per_second"], "generations": summary["generations"],
                          **{key: summary[key] for key in TRANSFER_KEYS if key in summary}})
        rows[search] = cells
    print(f"{MODEL}, {len(classes.split(','))} classes, at most {args.budget} evaluations per class; "
          f"median [range] over seeds {args.seeds}.\n")
    print("| search | median confidence % | min over classes % | classes >= 99% | evaluations per class | eval/s |")
    print("|---|---|---|---|---|---|")
    for search, cells in rows.items():
        per_class = [c["evaluations"] / len(c["confidences"]) for c in cells]
        print(f"| {search} | {spread([c['median'] for c in cells])} | "
              f"{spread([min(c['confidences']) for c in cells])} | "
              f"{np.median([c['at_99'] for c in cells]):g} [{min(c['at_99'] for c in cells)}-"
              f"{max(c['at_99'] for c in cells)}] | {np.median(per_class):.0f} | "
              f"{_median_speed(cells)} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"classes": classes, "budget": args.budget, "options": options,
                                               "cma_options": cma_options, "surrogate": args.surrogate, "cells": args.cells,
                                               "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
