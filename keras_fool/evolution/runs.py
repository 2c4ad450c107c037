"""Whole evolution runs: one run into an output folder, or several runs kept in memory.

- :func:`run_evolution` is what ``keras-fool evolve`` does: it decides whether to start, resume
  or refuse, evolves with checkpoints, TensorBoard and progress, and writes the public output
  files (:mod:`keras_fool.evolution.outputs`) with the run's timings.
- :func:`evolve_fooling_images` runs several independent MAP-Elites runs and keeps each run's
  elites after its first and its last generation (:class:`EvolvedImages`); the transfer,
  ensemble and fooling-class experiments and the fooling-class callback use it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from keras_fool import validation
from keras_fool.backends import open_target
from keras_fool.backends.files import source_kind
from keras_fool.distribute import is_chief, replica_count, resolve_strategy, strategy_scope
from keras_fool.encodings import encoding_from_config, make_encoding
from keras_fool.encodings.cppn import CPPN_RULES, rules_name
from keras_fool.errors import ResumeError
from keras_fool.evolution.cma_cppn import CPPNCMAME
from keras_fool.evolution.cma_me import CMAME
from keras_fool.evolution.map_elites import MapElites
from keras_fool.evolution.nes import NES, SURROGATE_BATCH, SURROGATE_STEPS
from keras_fool.evolution.memory import estimate_run_memory, format_bytes
from keras_fool.evolution.runner import OUTPUT_FILES, run_search, search_callbacks
from keras_fool.evolution.search import NEVER
from keras_fool.io import check_output_dir
from keras_fool.run_folder import CHECKPOINT, RunFolder
from keras_fool.target import Target, as_target
from keras_fool.validation import check_int, check_seed, derive_seed

__all__ = ["BEST_SETTINGS", "CAPACITY_GROWTH", "PAPER_SETTINGS", "SEARCHES", "EvolvedImages", "default_search", "evolve_fooling_images", "output_files", "run_evolution"]


# The settings `keras-fool evolve` uses unless told otherwise: the fastest measured (RESULTS.md,
# "Paper parity") for the direct encoding; the paper's for the CPPN, where nothing better was measured.
BEST_SETTINGS = {"direct": {"eta": 3.0, "selection": "weakest", "variation": "mutation"},
                 "cppn": {"eta": None, "selection": "uniform", "variation": "mutation"}}
PAPER_SETTINGS = {"eta": None, "selection": "uniform", "variation": "mutation"}  # None: the encoding's own eta (15)
SEARCHES = ("map-elites", "nes", "cma-me")
# capacity="grow" (--capacity grow): CPPNs start at the default 16 slots, which RESULTS.md measured faster
# than a fixed 64 and which bind only later in a run, and grow by 8 slots (at most 6 recompilations)
# whenever half the elites use every slot, up to 64, the largest capacity measured.
CAPACITY_GROWTH = {"start": 16, "step": 8, "maximum": 64}
# CMA-ME's emitters climb their own class (CMAME's ranking="class"): on EfficientNet-Lite0 that reached a median of
# 66.80% where CMA-ME's own improvement ranking reached 0.33% (RESULTS.md, "Quality-diversity operators").
CMA_ME_RANKING = "class"
NES_BATCH = 256  # NES scores whole classes' candidates per call: at most this many images (bounds the activations)
MAP_ELITES_ONLY = ("population", "crossover", "selection", "variation", "mutation_rate", "eta")
RUN_OPTIONS = ("models", "search", "encoding", "population", "classes", "seed", "crossover", "mutation_rate", "eta",
               "selection", "variation", "capacity", "cppn_rules", "surrogate", "logits", "input_range", "preprocess",
               "crops", "class_names")
_DEFAULTS = {"models": ("lenet_mnist",), "search": None, "encoding": "direct", "population": 200, "classes": None, "seed": 0,
             "crossover": 0.0, "variation": None, "mutation_rate": None, "capacity": None, "cppn_rules": None,
             "surrogate": None, "logits": False, "input_range": None, "preprocess": "none", "crops": 1, "class_names": None}


def _search_class(path):
    """:class:`MapElites`, :class:`NES` or :class:`CMAME`: the search whose checkpoint ``path`` is (refused if none)."""
    try:
        return MapElites, MapElites.read_checkpoint_config(path)
    except ResumeError:
        for search in (NES, CMAME):
            try:
                return search, search.read_checkpoint_config(path)
            except ResumeError:
                pass
        raise


def _options_from_checkpoint(path):
    """The run options a checkpoint was written with, in :func:`run_evolution`'s terms."""
    search, saved = _search_class(path)
    target, encoding = saved["target"], saved["encoding"]
    models = []
    for source in target["models"]:
        if "preset" in source:
            models.append(source["preset"])
        elif "path" in source:
            models.append(source["path"])
        else:
            raise ResumeError(f"Cannot resume: {path} was written for an in-memory model ({source.get('model')!r}); "
                              "resume it from Python with MapElites.load_checkpoint.")
    if search is not MapElites:
        saved = {"population": None, "crossover": None, "selection": None, "variation": None, **saved}
    rate_key = "weight_rate" if encoding["name"] == "cppn" else "rate"
    grow = saved.get("grow_capacity")
    presets_only = all("preset" in source for source in target["models"])
    return {
        "models": models, "search": search.method or "map-elites", "encoding": encoding["name"],
        "population": saved["population"],
        "classes": saved["classes"], "seed": saved["seed"], "crossover": saved["crossover"],
        "selection": saved["selection"], "variation": saved.get("variation", "mutation"),
        "mutation_rate": encoding.get(rate_key), "eta": encoding.get("eta"),
        "capacity": "grow" if grow else encoding.get("capacity"),
        "cppn_rules": rules_name(encoding) if encoding["name"] == "cppn" else None,
        "surrogate": _surrogate_source(path, saved.get("surrogate")),
        "logits": target.get("logits", False),
        "input_range": target.get("input_range"), "preprocess": target.get("preprocess", "none"),
        "crops": target.get("crops", 1), "class_names": None if presets_only else target.get("class_names"),
        "_encoding": encoding, "_grow_capacity": grow, "_ranking": saved.get("ranking"),
        "_archive_learning_rate": saved.get("archive_learning_rate"),
        "_surrogate_steps": saved.get("surrogate_steps"), "_surrogate_jitter": saved.get("surrogate_jitter"),
        "_spend_all": saved.get("spend_all", False),  # older NES checkpoints: runs that stopped at their generations
    }


def _surrogate_source(path, config):
    """The surrogate a checkpoint's NES climbed (a preset name or a .keras path), or None if it had none."""
    if config is None:
        return None
    sources = config["models"]
    if len(sources) != 1 or not ({"preset", "path"} & set(sources[0])):
        raise ResumeError(f"Cannot resume: {path} was written with an in-memory surrogate; resume it from Python with "
                          "NES.load_checkpoint.")
    return sources[0].get("preset") or sources[0]["path"]


def _settle_options(given, saved, paper):
    """Every run option: what the caller gave, else the checkpoint's ``saved`` options (resuming), else the default."""
    if saved is not None:
        return {**saved, **{k: v for k, v in given.items() if v is not None}}
    options = {**_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
    settings = PAPER_SETTINGS if paper else BEST_SETTINGS[options["encoding"]]
    for key, value in settings.items():
        if given.get(key) is None:
            options[key] = value
    options["selection"] = options["selection"] or "uniform"
    options["variation"] = options["variation"] or "mutation"
    if options["encoding"] == "cppn" and options["cppn_rules"] is None:  # the paper's CPPNs mutate by its code's rules
        options["cppn_rules"] = "original" if paper else "ours"
    options["paper"] = paper
    return options


# The run option behind each entry of a MapElites configuration ("encoding.eta": the encoding's eta).
_OPTION_OF = {"selection_power": "selection", "iso_sigma": "variation", "line_sigma": "variation",
              "encoding.name": "encoding", "encoding.eta": "eta",
              "encoding.rate": "mutation_rate", "encoding.weight_rate": "mutation_rate",
              "encoding.capacity": "capacity", "encoding.add_connection": "cppn_rules",
              "encoding.add_node": "cppn_rules", "encoding.image_shape": "crops", "target.models": "models",
              "target.image_size": "models", "grow_capacity": "capacity"}


def _flat_config(config):
    """A configuration with its target's and encoding's entries one level up, as ``"target.models"``."""
    flat = {}
    for key, value in config.items():
        if key in ("target", "encoding") and isinstance(value, dict):
            flat.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            flat[key] = value
    return flat


def _shown(value):
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _check_agrees(evolver, path, saved, given):
    """Refuse, naming them, the options given on resuming that differ from the run checkpointed at ``path``.

    Any other difference is left to :meth:`~keras_fool.evolution.search.Search.load_checkpoint` to refuse.
    """
    current = _flat_config(json.loads(json.dumps(evolver.get_config())))
    stored = _flat_config(_search_class(path)[1])
    differ = {k for k in set(current) | set(stored) if current.get(k) != stored.get(k)}
    options = {_OPTION_OF.get(k, k.split(".")[-1]) for k in differ}
    conflicts = [k for k in RUN_OPTIONS if k in options and given.get(k) is not None]
    if conflicts:
        own = " and ".join(f"{k} {_shown(saved[k])}" for k in conflicts)
        received = ", ".join(f"{k}={_shown(given[k])}" for k in conflicts)
        raise ValueError(f"Cannot resume: the run checkpointed in {path} has {own}; leave "
                         f"{'it' if len(conflicts) == 1 else 'them'} out to continue it with its own, or start a new "
                         f"run in another folder. Received: {received}")


def _resumed_goal(path, generations, stop_at, log):
    """The generation count and stop of a resumed run: those given, else the ones the checkpoint's run was given.

    Raises:
        ValueError: the checkpoint does not say how many generations its run was to reach (an older one) and
            ``generations`` is not given: guessing could end the run early, or run it on, without a word.
    """
    goal = MapElites.read_checkpoint_goal(path)
    if goal is None:
        if generations is None:
            raise ValueError(f"Cannot resume: {path} does not record how many generations its run was to reach "
                             "(it was written by an older keras-fool); give generations=N to say how many.")
        return generations, stop_at
    own_generations, own_stop = goal[0], (None if goal[1] == NEVER else goal[1])
    if generations is None:
        generations = own_generations
    elif generations != own_generations:
        log(f"the run's target changes from {own_generations} to {generations} generations.")
    if stop_at is None:
        stop_at = own_stop
    elif stop_at != own_stop:
        log(f"the run's stop changes from {own_stop or 'none'} to {stop_at}.")
    return generations, stop_at


def _check_memory(target, encoding, population, eval_batch_size, ignore, **surrogate):
    """Refuse a run that would need more memory than the machine has now, with the estimate (``surrogate`` and
    ``surrogate_batch``: NES's climb, as :func:`~keras_fool.evolution.memory.estimate_run_memory` takes them)."""
    need = estimate_run_memory(target, encoding, population, eval_batch_size, **surrogate)
    have = validation.available_memory()  # looked up here, so a test can stand in a smaller machine
    if ignore or have is None or need["total"] <= have:
        return need
    parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in need.items() if k != "total" and v)
    # The activations grow with the images scored at once: name the largest batch that fits, if one does.
    scored_at_once = min(eval_batch_size, population)
    smaller = (2 ** k for k in range((scored_at_once - 1).bit_length() - 1, -1, -1))  # powers of 2 below it
    fits = next((b for b in smaller
                 if estimate_run_memory(target, encoding, population, b, **surrogate)["total"] <= have), None)
    batch = "" if fits is None else f"set eval_batch_size=N ({fits} fits; a setting of this call, not saved), "
    raise ValueError(
        f"This run needs about {format_bytes(need['total'])} of memory ({parts}) but {format_bytes(have)} is "
        f"available; {batch}lower population or capacity, or pass ignore_memory_limit=True to start anyway."
    )


def build_search(target, encoding, population, generations, classes=None, seed=0, surrogate=None):
    """The search of ``encoding`` on ``target`` that :func:`default_search` names, built, not run:
    ``(search, budget)``.

    MAP-Elites with :data:`BEST_SETTINGS` and ``population`` offspring, whose budget is ``generations``;
    or NES, whose budget is the generations that fit in MAP-Elites' evaluations, ``population * (generations + 1)``
    in all (classes that stop at 99.99% leave theirs to the others: NES's ``spend_all``), and which starts each
    class from gradient ascent on ``surrogate`` (a target with gradients and the same classes) if one is given.
    """
    from keras_fool.evolution.nes import generations_within

    if default_search(encoding, target.image_shape) == "nes":
        nes = NES(target, make_encoding(encoding, target.image_shape), classes=classes, seed=seed,
                  eval_batch_size=NES_BATCH, surrogate=surrogate)
        return nes, generations_within(nes, population * (generations + 1))
    settings = BEST_SETTINGS[encoding]
    evolver = MapElites(target, make_encoding(encoding, target.image_shape, eta=settings["eta"]), population=population,
                        classes=classes, seed=seed, selection=settings["selection"], variation=settings["variation"])
    return evolver, generations


def default_search(encoding, image_shape, paper=False):
    """The search a new run uses unless told: NES over pixels for a colour model's direct encoding (RESULTS.md,
    issue 23: 81% median on EfficientNet-Lite0 at 2,000 evaluations per class, where MAP-Elites reaches 0.26%),
    MAP-Elites otherwise and with ``paper`` (on MNIST it fools every digit within 100 generations; for the CPPN,
    NES and CMA-ME over the weights measured higher medians on 10 classes, 53% over 3 seeds and 50% over 5 against
    39% and 28%, with overlapping ranges, and on the target's 100 classes CMA-ME reached 10% against MAP-Elites' 31%,
    every seed below: MAP-Elites' offspring are stepping stones for every class)."""
    if paper or encoding != "direct" or tuple(image_shape)[-1] != 3:
        return "map-elites"
    return "nes"


def _check_search(search, paper, surrogate=None):
    if search is not None and search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)}. Received: search={search!r}")
    if surrogate is not None and (paper or search not in (None, "nes")):
        chosen = "paper=True runs the paper's MAP-Elites" if paper else f"search={search!r} does not run NES"
        raise ValueError(f"A surrogate gives NES over pixels its starts, and {chosen}; leave one of them out.")
    if paper and search in ("nes", "cma-me"):
        raise ValueError(f"paper=True runs the paper's MAP-Elites; it cannot be combined with "
                         f"search={search!r}.")


def _check_nes_options(evolver, given):
    """Refuse, naming them, MAP-Elites options ``given`` for a run that uses NES or CMA-ME."""
    refused = [k for k in MAP_ELITES_ONLY if given.get(k) is not None] if isinstance(evolver, (NES, CMAME)) else []
    if refused:
        one = len(refused) == 1
        name = "CMA-ME" if isinstance(evolver, (CMAME, CPPNCMAME)) else "NES"
        raise ValueError(f"{', '.join(refused)} {'is a' if one else 'are'} MAP-Elites option{'' if one else 's'}, and "
                         f"this run uses {name}; add search='map-elites' (--search map-elites) to use "
                         f"{'it' if one else 'them'}.")


def _check_capacity(capacity):
    if capacity is not None and capacity != "grow" and (
            not isinstance(capacity, (int, np.integer)) or isinstance(capacity, bool)):
        raise ValueError(f"capacity must be a number of CPPN node slots or 'grow'. Received: capacity={capacity!r}")


def _growth(options):
    """MapElites' ``grow_capacity`` for these options: the checkpoint's when resuming a growing run, else
    :data:`CAPACITY_GROWTH`'s; None unless ``capacity`` is ``"grow"`` for a CPPN."""
    if options["capacity"] != "grow" or options["encoding"] != "cppn":
        return None
    saved = options.get("_grow_capacity")
    return tuple(saved[:2]) if saved else (CAPACITY_GROWTH["step"], CAPACITY_GROWTH["maximum"])


def _check_cppn_rules(cppn_rules, encoding):
    """Refuse ``cppn_rules`` that CPPN_RULES does not name, or given for another encoding than the CPPN."""
    if cppn_rules is None:
        return
    if cppn_rules not in CPPN_RULES:
        raise ValueError(f"cppn_rules must be one of {', '.join(map(repr, CPPN_RULES))}. "
                         f"Received: cppn_rules={cppn_rules!r}")
    if encoding != "cppn":
        raise ValueError(f"cppn_rules (--cppn-rules) chooses how CPPNs mutate, and this run uses the {encoding} "
                         f"encoding; add encoding='cppn' (--encoding cppn) or leave it out. "
                         f"Received: cppn_rules={cppn_rules!r}")


def _genome_encoding(options, target, capacity):
    """The run's encoding: a resumed run's checkpointed one with the options given now applied, else a new one."""
    rules = CPPN_RULES.get(options["cppn_rules"], {}) if options["encoding"] == "cppn" else {}
    if "_encoding" not in options:
        return make_encoding(options["encoding"], target.image_shape, mutation_rate=options["mutation_rate"],
                             eta=options["eta"], capacity=capacity, **rules)
    config = dict(options["_encoding"])
    rate_key = "weight_rate" if config["name"] == "cppn" else "rate"
    for key, value in (("eta", options["eta"]), (rate_key, options["mutation_rate"]), ("capacity", capacity)):
        if value is not None and key in config:
            config[key] = value
    if options["encoding"] != config["name"]:
        config = {"name": options["encoding"], "image_shape": config["image_shape"]}
    return encoding_from_config({**config, **rules})


def _open_surrogate(options):
    """The run's surrogate as a :class:`~keras_fool.target.Target` (a .keras file read as the models are), or None."""
    source = options["surrogate"]
    if source is None:
        return None
    if options["encoding"] != "direct":
        raise ValueError(f"A surrogate gives NES over pixels (the direct encoding) its starts, and this run uses the "
                         f"{options['encoding']} encoding; leave surrogate out or use encoding='direct'.")
    if isinstance(source, (str, Path)) and source_kind(source) is not None:
        raise ValueError(f"The surrogate {source} is a deployed model that answers queries only, so it has no "
                         "gradients to climb; give a Keras model (a preset, a .keras file or a keras.Model).")
    if isinstance(source, str) and not source.endswith(".keras"):
        surrogate = Target(source)  # a preset reads its own images
    else:
        surrogate = Target(source, logits=options["logits"], input_range=options["input_range"],
                           preprocess=options["preprocess"])
    return surrogate  # NES refuses one of other classes or channels


def _make_evolver(options, eval_batch_size=4096, ignore_memory_limit=True, strategy=None, max_queries=None):
    models = list(options["models"]) if isinstance(options["models"], (list, tuple)) else [options["models"]]
    with strategy_scope(strategy):  # mirrored model variables
        # crops and max_queries are options of one kind of target each: given only when set
        target = open_target(models, logits=options["logits"], class_names=options["class_names"],
                             input_range=options["input_range"], preprocess=options["preprocess"],
                             crops=None if options["crops"] == 1 else options["crops"], max_queries=max_queries)
    grow = _growth(options)
    capacity = options["capacity"]  # "grow" for the direct encoding: make_encoding refuses it
    if grow is not None:  # a new run starts at CAPACITY_GROWTH's slots, a resumed one at what its checkpoint grew to
        capacity = None if "_encoding" in options else CAPACITY_GROWTH["start"]
    genome_encoding = _genome_encoding(options, target, capacity)
    if options["search"] is None and options["surrogate"] is not None:  # the one search a surrogate serves
        options["search"] = "nes"
    if options["search"] is None:  # a new run: the strongest search measured for this kind of model
        options["search"] = default_search(options["encoding"], target.image_shape, options.get("paper", False))
    if options["search"] == "cma-me":
        if strategy is not None and strategy.num_replicas_in_sync > 1:
            raise ValueError("CMA-ME runs on one device; leave strategy at 'default' or use the MAP-Elites search.")
        batch = min(eval_batch_size, NES_BATCH)
        if options["encoding"] == "cppn":
            if grow is not None:
                raise ValueError("capacity='grow' (--capacity grow) grows MAP-Elites' CPPNs, and this run uses CMA-ME; "
                                 "give a number of slots, or search='map-elites'.")
            search = CPPNCMAME(target, genome_encoding, classes=target.class_indices(options["classes"]),
                               seed=options["seed"], eval_batch_size=batch, spend_all=options.get("_spend_all", True))
            _check_memory(target, genome_encoding, search.images_per_call, batch, ignore_memory_limit)
            return search
        search = CMAME(target, genome_encoding, classes=target.class_indices(options["classes"]), seed=options["seed"],
                       ranking=options.get("_ranking") or CMA_ME_RANKING, eval_batch_size=batch,
                       **({"archive_learning_rate": options["_archive_learning_rate"]}
                          if options.get("_archive_learning_rate") else {}))
        _check_memory(target, genome_encoding, search.images_per_call, batch, ignore_memory_limit)
        return search
    if options["search"] == "nes":
        if strategy is not None and strategy.num_replicas_in_sync > 1:
            raise ValueError("NES runs on one device; leave strategy at 'default' or use the MAP-Elites search.")
        if grow is not None:
            raise ValueError("capacity='grow' (--capacity grow) grows MAP-Elites' CPPNs, and this run uses NES; give "
                             "a number of slots, or search='map-elites'.")
        batch = min(eval_batch_size, NES_BATCH)
        surrogate = _open_surrogate(options)
        climb = {"surrogate_steps": options.get("_surrogate_steps") or SURROGATE_STEPS,
                 "surrogate_jitter": options.get("_surrogate_jitter")}  # a resumed run's own, else the default
        nes = NES(target, genome_encoding, classes=target.class_indices(options["classes"]), seed=options["seed"],
                  eval_batch_size=batch, surrogate=surrogate, spend_all=options.get("_spend_all", True), **climb)
        climbed = min(SURROGATE_BATCH, batch, nes.archive.cells)  # classes climbed at once (NES.surrogate_start)
        _check_memory(target, genome_encoding, nes.images_per_call, batch, ignore_memory_limit, surrogate=surrogate,
                      surrogate_batch=climbed)
        return nes
    largest = genome_encoding if grow is None else genome_encoding.with_capacity(max(grow[1], genome_encoding.capacity))
    _check_memory(target, largest, options["population"], eval_batch_size, ignore_memory_limit)
    return MapElites(target, genome_encoding, population=options["population"],
                     classes=target.class_indices(options["classes"]),
                     seed=options["seed"], crossover=options["crossover"], selection=options["selection"],
                     variation=options["variation"], eval_batch_size=eval_batch_size, strategy=strategy,
                     grow_capacity=grow)


def run_evolution(out, models=None, search=None, encoding=None, generations=None, population=None, classes=None, seed=None,
                  crossover=None, mutation_rate=None, eta=None, selection=None, variation=None, capacity=None,
                  cppn_rules=None, surrogate=None, logits=None,
                  input_range=None, preprocess=None, crops=None, class_names=None,
                  paper=False, stop_at=None, resume=False, overwrite=False, logdir=None, checkpoint_every=50,
                  eval_batch_size=4096, ignore_memory_limit=False, strategy="default", cpu_replicas=None,
                  max_queries=None, progress=True, started=None, log=None):
    """Evolve fooling images into the folder ``out``; what ``keras-fool evolve`` runs.

    Writes ``archive.npz``, ``montage.png``, ``summary.json`` (:mod:`keras_fool.evolution.outputs`) and
    ``checkpoint.npz`` (every ``checkpoint_every`` generations, at the end and on Ctrl-C) through a
    :class:`~keras_fool.run_folder.RunFolder`: a folder holding a checkpoint is continued with
    ``resume``, started afresh with ``overwrite``, and refused otherwise.

    The run options (``models`` ... ``logits``) left at None take, for a new run, the defaults:
    ``lenet_mnist``, the direct encoding, 200 offspring, every class, seed 0, no crossover and
    the best measured settings (:data:`BEST_SETTINGS`; ``paper=True`` for the paper's). When
    resuming they take the checkpoint's; an option given that differs from the checkpoint's is
    refused. ``generations`` and ``stop_at`` left at None take, resuming, the run's own (what its
    checkpoint records), else 200 generations and no stop; given, they change the run's (said in the log).

    Args:
        out: the output folder (created if needed).
        models: a preset name, a ``.keras`` path or a Keras model, or a list of them (an ensemble); or
            one deployed model: a ``.tflite`` or ``.onnx`` file, a SavedModel directory or a URL
            (:func:`keras_fool.backends.open_target`), scored by queries alone.
        search: ``"map-elites"`` or ``"nes"`` (:class:`~keras_fool.evolution.NES`: a gradient estimated from
            queries, per class); None: :func:`default_search` (NES for a colour model's direct encoding, unless
            ``paper``). With NES, the MAP-Elites options (population, crossover, selection, mutation_rate,
            eta) are refused, and a generation scores 21 images for every class not yet at 99.99%. ``"cma-me"``
            (:class:`~keras_fool.evolution.cma_me.CMAME`: sep-CMA-ES emitters over low-resolution pixels, each climbing
            its own class (:data:`CMA_ME_RANKING`; a resumed run keeps its checkpoint's ranking); the same options
            refused): a generation scores 20 images per emitter, one emitter per class up to 32; for a CPPN,
            :class:`~keras_fool.evolution.cma_cppn.CPPNCMAME` (one such emitter per class over its CPPN's weights,
            21 images per class still searched a generation, as NES).
        encoding: ``"direct"`` or ``"cppn"``.
        generations: the total generation count to reach (generation 0 is the random population); None:
            the run's own when resuming, else 200.
        population: offspring per generation.
        classes: the classes to evolve images for, by index or by name (a list, or a string such as
            ``"0,3,7"`` or ``"king penguin,starfish"``); all of the target's by default.
        seed: the run's seed.
        crossover: fraction of offspring made by crossover.
        mutation_rate: an encoding option (None: the encoding's or the best measured).
        eta: an encoding option (None: the encoding's or the best measured).
        capacity: CPPN node slots per genome (None: the encoding's 16), or ``"grow"``: start at 16 and grow
            while the run goes (:data:`CAPACITY_GROWTH`, MapElites' ``grow_capacity``); the summary's
            ``config`` records the capacity reached and ``grow_capacity`` (step, maximum, generations between
            checks).
        cppn_rules: how CPPNs add connections and nodes (:data:`~keras_fool.encodings.cppn.CPPN_RULES`):
            ``"ours"`` (a connection only forward in the stored node order; a split's first connection gets
            weight +1) or ``"original"`` (the original code's: any connection that keeps the network acyclic;
            both of a split's connections keep the old weight). None: ``"ours"``, or ``"original"`` with
            ``paper``; CPPN only.
        surrogate: a Keras model of the same classes (a preset name, a ``.keras`` path read as ``models`` are,
            or a ``keras.Model``) whose gradient ascent gives NES over pixels each class's start
            (:class:`~keras_fool.evolution.NES`); the model itself is still only queried. Implies NES;
            refused with another search, the CPPN or ``paper``.
        selection: ``"uniform"`` (the paper) or ``"weakest"``.
        variation: ``"mutation"`` (the encoding's mutation, the paper's) or ``"iso-line"`` (Iso+LineDD,
            :class:`~keras_fool.evolution.MapElites`); None: :data:`BEST_SETTINGS`' for the encoding.
        logits: the models output logits.
        input_range: ``"0-1"``/``"0-255"``: with the three below, how the target adapts the [0, 1]
            images to a user's model (see :class:`~keras_fool.target.Target`).
        preprocess: ``"none"``/``"tf"``/``"torch"``/``"caffe"``.
        crops: 1 or 10 crops.
        class_names: a list or file of names.
        paper: the paper's settings (eta 15, uniform parents and, for a CPPN, the original code's
            ``cppn_rules``) instead of the best measured ones.
        stop_at: stop once every class reaches this confidence (None: the run's own when resuming, else never).
        resume: continue the run checkpointed in ``out``.
        overwrite: start afresh even if ``out`` holds a run.
        logdir: TensorBoard folder, or None; the run logs into ``logdir/<name of out>``.
        checkpoint_every: generations between checkpoints (and TensorBoard montages).
        eval_batch_size: offspring decoded and scored at once (bounds the model's activations).
        ignore_memory_limit: start even when the estimated memory exceeds what is available.
        strategy: ``"default"`` (one device), ``"mirrored"`` (this host's GPUs, or ``cpu_replicas``
            logical CPUs), ``"multi-worker"`` (hosts from ``TF_CONFIG``; only the chief writes
            files, and ``out`` must be visible to every worker to resume), or a
            ``tf.distribute.Strategy``. The archive equals the one-device run's.
        cpu_replicas: split the CPU into this many logical devices for the strategy.
        max_queries: a deployed model's query budget: the run stops with
            :class:`~keras_fool.errors.QueryBudgetError` before it would score more images (the
            queries of the runs it resumes included); None: no limit. Not for Keras models.
        progress: show a progress bar on stderr.
        started: ``time.perf_counter()`` at process start, for ``startup_seconds`` (default: now).
        log: callable taking one line of news (e.g. that a run resumes); silent if None.

    Returns:
        The summary dict written to ``summary.json``; ``summary["files"]`` lists what was written.

    Raises:
        ValueError: bad options, ``out`` holds a run and neither ``resume`` nor ``overwrite``, an
            option given on resuming differs from the checkpoint's (named, with the checkpoint's value),
            or the run would need more memory than the machine has (the message gives the estimate).
        ResumeError: ``resume`` without a usable checkpoint.
        KeyboardInterrupt: interrupted; the checkpoint holds the generation reached.
    """
    started = time.perf_counter() if started is None else started
    log = log or (lambda line: None)
    if population is not None:
        population = check_int("population", population)
    if generations is not None:
        generations = check_int("generations", generations, minimum=0)
    check_int("checkpoint_every", checkpoint_every)
    _check_capacity(capacity)
    # A non-chief worker writes nothing, and must not refuse the folder its chief is filling.
    chief = is_chief(strategy if not isinstance(strategy, str) else None)
    if chief:  # refused before a model is read; created only once every input is accepted (below)
        check_output_dir(out, CHECKPOINT, resume, overwrite)
    checkpoint = Path(out) / CHECKPOINT
    if resume and not checkpoint.is_file():
        raise ResumeError(f"Cannot resume: there is no checkpoint in {out}.")
    strategy = resolve_strategy(strategy, cpu_replicas)
    _check_search(search, paper, surrogate)
    given = {"models": models, "search": search, "encoding": encoding, "population": population, "classes": classes, "seed": seed,
             "crossover": crossover, "mutation_rate": mutation_rate, "eta": eta, "selection": selection,
             "variation": variation, "capacity": capacity, "cppn_rules": cppn_rules, "surrogate": surrogate,
             "logits": logits,
             "input_range": input_range, "preprocess": preprocess, "crops": crops, "class_names": class_names}
    saved = _options_from_checkpoint(checkpoint) if resume else None
    options = _settle_options(given, saved, paper)
    _check_cppn_rules(cppn_rules, options["encoding"])
    evolver = _make_evolver(options, eval_batch_size, ignore_memory_limit, strategy, max_queries)
    _check_nes_options(evolver, given)
    if resume:
        _check_agrees(evolver, checkpoint, saved, given)
        generations, stop_at = _resumed_goal(checkpoint, generations, stop_at, log)
    elif getattr(evolver, "surrogate", None) is not None:  # minutes of silence otherwise, before generation 0
        log(f"each class's start climbs the surrogate {_shown(options['surrogate'])} for {evolver.surrogate_steps} "
            f"steps first ({evolver.archive.cells} classes, {SURROGATE_BATCH} at a time).")
    generations = 200 if generations is None else generations
    folder = RunFolder(out, CHECKPOINT, resume, overwrite, logdir=logdir, chief=chief)
    callbacks = search_callbacks(folder, checkpoint_every, stop_at, progress)
    return run_search(evolver, folder, generations, callbacks, started=started, log=log,
                      extra={"replicas": replica_count(evolver.strategy)})


@dataclasses.dataclass
class EvolvedImages:
    """The elites of several MAP-Elites runs, after their first and their last generation.

    For ``R`` runs over ``C`` classes there are ``N = 2 * R * C`` images, ordered run by run,
    first-generation elites before last-generation elites, classes in order within each.

    Attributes:
        images: float32 (N, H, W, ch) in [0, 1].
        labels: int32 (N,): the class each image was evolved for.
        confidences: float32 (N,): the target's probability of that class for the image.
        generations: int32 (N,): 0 for the first generation's elites, the run's length for the last's.
        runs: int32 (N,): the run (0..R-1) the image comes from.
    """

    images: np.ndarray = dataclasses.field(repr=False)
    labels: np.ndarray
    confidences: np.ndarray
    generations: np.ndarray
    runs: np.ndarray

    def __len__(self):
        return len(self.labels)

    def subset(self, indices):
        """The images at ``indices`` (an int array or a boolean mask of shape (N,))."""
        return EvolvedImages(*(getattr(self, f.name)[indices] for f in dataclasses.fields(self)))

    def last(self):
        """Only the elites of the last generation (the finished fooling images)."""
        return self.subset(self.generations == self.generations.max())

    @property
    def median_confidence(self):
        """Median confidence of the last generation's elites (the Score of Table S2)."""
        return float(np.median(self.last().confidences))

    def sample(self, n, seed):
        """``n`` images drawn without replacement, in random order (first and last generations alike).

        Raises:
            ValueError: ``n`` is below 1 or above the number of images.
        """
        n = check_int("n", n)
        if n > len(self):
            raise ValueError(f"cannot sample {n} of {len(self)} evolved images. Received: n={n}")
        return self.subset(np.random.default_rng(seed).choice(len(self), n, replace=False))


def evolve_fooling_images(target, runs=1, generations=200, population=200, encoding="direct", classes=None,
                          seed=0, log=None, strategy=None):
    """Evolve fooling images with ``runs`` independent MAP-Elites runs.

    Each run keeps its archive's elites after generation 0 (the random initial population) and
    after generation ``generations``: ``2 * len(classes)`` images per run.

    Args:
        target: a :class:`~keras_fool.target.Target`, or what ``Target`` accepts (a Keras model
            that outputs probabilities, a preset name, a ``.keras`` path, or a list for an ensemble).
        runs: independent runs (>= 1), each with its own seed derived from ``seed``.
        generations: generations per run (>= 1; the paper: 200 on MNIST).
        population: offspring per generation (the paper: 200).
        encoding: ``"direct"``, ``"cppn"`` or a :class:`~keras_fool.encodings.Encoding`, built
            with :func:`~keras_fool.encodings.make_encoding`'s defaults (as ``keras-fool evolve``).
        classes: the class indices to evolve images for; all of the target's by default. A model
            with a fooling class evolves for the real classes only: ``range(n)``.
        seed: the seed the runs' seeds derive from.
        log: callable taking one progress line, or None.
        strategy: a ``tf.distribute.Strategy`` over which every run spreads its population
            (see :class:`~keras_fool.evolution.MapElites`), or None for one device; the images
            equal the one-device runs'. ``population`` must split evenly across its replicas.

    Returns:
        An :class:`EvolvedImages` with ``2 * runs * len(classes)`` images.

    Raises:
        TypeError, ValueError: bad arguments.
    """
    target = as_target(target)
    runs = check_int("runs", runs)
    generations = check_int("generations", generations)
    population = check_int("population", population)
    seed = check_seed(seed)
    genome_encoding = make_encoding(encoding, target.image_shape)
    parts = {"images": [], "labels": [], "confidences": [], "generations": [], "runs": []}

    def keep(evolver, run):
        archive = evolver.archive
        parts["images"].append(np.asarray(genome_encoding.decode(archive.genomes), np.float32))
        parts["labels"].append(archive.labels.astype(np.int32))
        parts["confidences"].append(archive.confidences.astype(np.float32))
        parts["generations"].append(np.full(archive.cells, evolver.generation, np.int32))
        parts["runs"].append(np.full(archive.cells, run, np.int32))

    for run in range(runs):
        evolver = MapElites(target, genome_encoding, population=population, classes=classes,
                            seed=derive_seed(seed, run), strategy=strategy)
        evolver.run(0)
        keep(evolver, run)
        evolver.run(generations)
        keep(evolver, run)
        if log is not None:
            log(f"run {run + 1}/{runs}: median confidence {100 * np.median(parts['confidences'][-1]):.2f}%")
    return EvolvedImages(**{k: np.concatenate(v) for k, v in parts.items()})


def output_files(out):
    """The files an evolution run writes into ``out``, in the order the CLI lists them."""
    return [Path(out) / name for name in OUTPUT_FILES]
