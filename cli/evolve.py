"""``keras-fool evolve``: evolve fooling images against a classifier with MAP-Elites."""

from __future__ import annotations

import click

from keras_fool.cli import echo_written
from keras_fool.cli.options import (
    CLASS_NAMES,
    CPU_REPLICAS,
    INPUT_RANGE,
    LOGDIR,
    LOGITS,
    MAX_QUERIES,
    OVERWRITE,
    POPULATION,
    SEED,
    FiniteFloatRange,
    SlotsOrGrow,
    check_strategy_options,
    preprocess_option,
    strategy_option,
)


@click.command()
@click.option("--model", "models", multiple=True,
              help="Preset name or .keras file (repeat for an ensemble target: mean probabilities), or one deployed "
              "model scored by queries alone: a .tflite or .onnx file, or a SavedModel directory. "
              "[default: lenet_mnist]")
@click.option("--search", type=click.Choice(["map-elites", "nes", "cma-me"]), default=None,
              help="map-elites: the paper's algorithm, one elite per class; nes: a gradient estimated from queries "
              "(natural evolution strategies, per class, over low-resolution pixels or CPPN weights); cma-me: "
              "CMA-ME's separable CMA-ES emitters (Fontaine et al. 2020), each climbing its own class, over "
              "low-resolution pixels or CPPN weights (below nes on ImageNet). [default: nes "
              "for a colour model's direct encoding (it measured far stronger on ImageNet, RESULTS.md), map-elites "
              "otherwise and with --paper]")
@click.option("--encoding", type=click.Choice(["direct", "cppn"]), default=None,
              help="direct: one gene per pixel; cppn: a NEAT-style pattern-producing network. [default: direct]")
@click.option("--capacity", type=SlotsOrGrow(), default=None, metavar="SLOTS|grow",
              help="CPPN node slots per genome, inputs and outputs included; or 'grow': start at 16 and add 8 "
              "whenever half the elites use every slot, up to 64 (checked every 10 generations; summary.json "
              "records the capacity reached). [default: 16]")
@click.option("--cppn-rules", type=click.Choice(["ours", "original"]), default=None,
              help="How CPPNs add connections and nodes. ours: a new connection only goes forward in the stored node "
              "order, and a split connection a->b becomes a->new with weight +1 and new->b with the old weight; "
              "original: the original code's (Nguyen et al. 2015), any new connection that keeps the network acyclic "
              "(the nodes are ordered again), and both halves of a split keep the old weight. [default: ours; "
              "original with --paper]")
@click.option("--surrogate", default=None, metavar="MODEL",
              help="A Keras model of the same classes (preset or .keras, read as --model is) whose gradient ascent "
              "gives NES over pixels each class's start; --model is still only queried (a transfer prior: on "
              "EfficientNet-Lite0 with Lite1 as the surrogate it measured far stronger, RESULTS.md). Implies --search "
              "nes; direct encoding only.")
@click.option("--generations", type=click.IntRange(min=0), default=None,
              help="Total generations (generation 0 is the random initial population); NES runs past them while "
              "the evaluations they would have cost, left by classes that reached 99.99%, allow. [default: 200; with "
              "--resume, the run's own]")
@POPULATION
@click.option("--classes", default=None,
              help="'all', class indices such as 0,3,7, or class names such as 'king penguin,starfish'. "
              "[default: all]")
@SEED
@click.option("--crossover", type=FiniteFloatRange(0.0, 1.0), default=None,
              help="Fraction of offspring made by SBX crossover before mutation. [default: 0]")
@click.option("--mutation-rate", type=FiniteFloatRange(0.0, 1.0, min_open=True), default=None,
              help="Per-gene (direct) or per-weight (cppn) mutation probability. [default: 0.1]")
@click.option("--eta", type=FiniteFloatRange(0.0, min_open=True), default=None,
              help="Polynomial mutation index; smaller means bigger steps. [default: 3 for direct (the fastest "
              "measured), 15 for cppn and with --paper]")
@click.option("--selection", type=click.Choice(["uniform", "weakest"]), default=None,
              help="Parents uniformly from the classes (the paper), or favouring the least-fooled classes. "
              "[default: weakest for direct, uniform for cppn and with --paper]")
@click.option("--variation", type=click.Choice(["mutation", "iso-line"]), default=None,
              help="How a parent becomes a child: the encoding's mutation (the paper), or iso-line: Gaussian noise "
              "plus a step along the line to a second elite (Vassiliades & Mouret 2018; for cppn, on the weights, "
              "with the structural mutations kept). [default: mutation]")
@click.option("--paper", is_flag=True,
              help="The paper's algorithm: eta 15, uniform parents and mutation (and for cppn the original code's "
              "--cppn-rules) instead of the measured best settings.")
@click.option("--stop-at", type=FiniteFloatRange(0.0, 1.0, min_open=True), default=None,
              help="Stop once every class's elite reaches this confidence (e.g. 0.9999); NES also stops searching "
              "each class there, and its queries go to the classes still below. [default: never; with "
              "--resume, the run's own]")
@click.option("--out", type=click.Path(file_okay=False), default="runs/evolve", show_default=True,
              help="Output folder.")
@click.option("--resume", is_flag=True,
              help="Continue the run checkpointed in --out with its own settings, to its own --generations and "
              "--stop-at unless given (other options given must agree).")
@OVERWRITE
@LOGDIR
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=50, show_default=True)
@LOGITS
@INPUT_RANGE
@preprocess_option(None)  # None: a resumed run takes its checkpoint's
@click.option("--crops", type=click.Choice(["1", "10"]), default=None,
              help="10: score Caffe's ten crops (corners, centre, mirrored), images evolve 32 px larger. "
              "[default: 1]")
@CLASS_NAMES
@MAX_QUERIES
@click.option("--eval-batch-size", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Offspring decoded and scored at once; larger populations are evaluated in batches.")
@click.option("--ignore-memory-limit", is_flag=True,
              help="Start even if the run's estimated memory exceeds what the machine has available.")
@strategy_option()
@CPU_REPLICAS
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evolve(models, search, encoding, capacity, cppn_rules, surrogate, generations, population, classes, seed, crossover,
           mutation_rate, eta, selection, variation, paper, stop_at, out, resume, overwrite, logdir, checkpoint_every,
           logits, input_range, preprocess, crops, class_names, max_queries, eval_batch_size,
           ignore_memory_limit, strategy, cpu_replicas, quiet):
    """Evolve images that MODEL labels with high confidence but no person would recognise.

    Writes OUT/archive.npz, OUT/montage.png and OUT/summary.json, and a checkpoint that
    --resume continues from (also written when you press Ctrl-C). The defaults are the fastest
    settings measured (RESULTS.md); --paper runs the paper's algorithm.
    """
    from keras_fool.cli import STARTED, import_tensorflow_quietly
    from keras_fool.io import check_output_dir
    from keras_fool.backends import check_source

    from keras_fool.distribute import is_chief

    if classes is not None and not classes.strip():
        raise click.BadParameter("no class given.", param_hint="--classes")
    check_strategy_options(strategy, cpu_replicas)
    if is_chief():  # a non-chief worker of a cluster writes nothing into --out
        check_output_dir(out, "checkpoint.npz", resume, overwrite)
    for model in models:
        check_source(model)
    if surrogate is not None:
        check_source(surrogate)
    if paper and (eta is not None or selection is not None or variation is not None):
        raise click.UsageError("--paper sets --eta, --selection and --variation; give either --paper or those "
                               "options.")
    import_tensorflow_quietly()
    from keras_fool.evolution.runs import run_evolution

    try:
        summary = run_evolution(
            out, models=list(models) or None, search=search, encoding=encoding, generations=generations,
            population=population,
            classes=classes, seed=seed, crossover=crossover, mutation_rate=mutation_rate, eta=eta,
            selection=selection, variation=variation, capacity=capacity, cppn_rules=cppn_rules,
            surrogate=surrogate, logits=logits or None, input_range=input_range,
            preprocess=preprocess, crops=None if crops is None else int(crops), class_names=class_names,
            paper=paper, stop_at=stop_at,
            resume=resume, overwrite=overwrite, logdir=logdir, checkpoint_every=checkpoint_every,
            eval_batch_size=eval_batch_size, ignore_memory_limit=ignore_memory_limit, strategy=strategy,
            cpu_replicas=cpu_replicas, max_queries=max_queries, progress=not quiet, started=STARTED,
            log=lambda line: click.echo(line, err=True))
    except KeyboardInterrupt as e:
        reached = f" ({e})" if str(e) else ""
        click.echo(f"Interrupted{reached}; the checkpoint in {out} holds it: add --resume to continue.", err=True)
        raise SystemExit(130) from None
    confidences = [c["confidence"] for c in summary["classes"]]
    at_target = sum(c is not None and c >= 0.9999 for c in confidences)
    speed = summary["evaluations_per_second"]  # None when no generation was timed
    speed = "" if speed is None else f" ({speed:,.0f}/s)"
    queries = f", {summary['queries']:,} queries" if "queries" in summary else ""  # a deployed model's
    # A run told to stop lower (--stop-at 0.99) is also counted at its own level, which is what it aimed for.
    at_stop = ("" if stop_at is None or stop_at >= 0.9999 else
               f", {sum(c is not None and c >= stop_at for c in confidences)}/{len(confidences)} at >= "
               f"{stop_at * 100:g}% (--stop-at)")
    click.echo(
        f"{summary['generations']} generations, {summary['evaluations']:,} evaluations{speed}{queries}; "
        f"{at_target}/{len(confidences)} classes at >= 99.99%{at_stop}."
    )
    echo_written(summary["files"])
    if summary["files"]:
        click.echo(f"montage: {summary['files'][1]}")
