"""``keras-fool evolve``: evolve fooling images against a classifier with MAP-Elites."""

from __future__ import annotations

import time
from pathlib import Path

import click


def parse_classes(value):
    """``"all"`` -> None, ``"0,3,7"`` -> [0, 3, 7]."""
    if value is None or value.strip().lower() == "all":
        return None
    try:
        classes = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected 'all' or comma-separated class indices, got {value!r}.") from None
    if not classes:
        raise click.BadParameter("no class given.")
    return classes


@click.command()
@click.option("--model", "models", multiple=True, default=["lenet_mnist"], show_default=True,
              help="Preset name or .keras file; repeat for an ensemble target (mean probabilities).")
@click.option("--encoding", type=click.Choice(["direct", "cppn"]), default="direct", show_default=True,
              help="direct: one gene per pixel; cppn: a NEAT-style pattern-producing network.")
@click.option("--capacity", type=click.IntRange(min=1), default=16, show_default=True,
              help="CPPN node slots per genome (inputs and outputs included).")
@click.option("--generations", type=click.IntRange(min=0), default=200, show_default=True,
              help="Total generations (generation 0 is the random initial population).")
@click.option("--population", type=int, default=200, show_default=True, help="Offspring per generation.")
@click.option("--classes", default="all", show_default=True, help="'all' or class indices such as 0,3,7.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--crossover", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Fraction of offspring made by SBX crossover before mutation.")
@click.option("--mutation-rate", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.1, show_default=True,
              help="Per-gene (direct) or per-weight (cppn) mutation probability.")
@click.option("--eta", type=click.FloatRange(0.0, min_open=True), default=15.0, show_default=True,
              help="Polynomial mutation index: smaller means bigger steps (3 fools LeNet about twice as fast).")
@click.option("--selection", type=click.Choice(["uniform", "weakest"]), default="uniform", show_default=True,
              help="Parents uniformly from the classes (the paper), or favouring the least-fooled classes.")
@click.option("--stop-at", type=click.FloatRange(0.0, 1.0, min_open=True), default=None,
              help="Stop once every class's elite reaches this confidence (e.g. 0.9999).")
@click.option("--out", type=click.Path(file_okay=False), default="runs/evolve", show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run checkpointed in --out.")
@click.option("--overwrite", is_flag=True, help="Start afresh even if --out holds a run.")
@click.option("--logdir", type=click.Path(file_okay=False), default=None, help="Write TensorBoard logs here.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--logits", is_flag=True, help="The model outputs logits; apply softmax.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evolve(models, encoding, capacity, generations, population, classes, seed, crossover, mutation_rate, eta, selection,
           stop_at, out,
           resume, overwrite, logdir, checkpoint_every, logits, quiet):
    """Evolve images that MODEL labels with high confidence but no person would recognise.

    Writes OUT/archive.npz, OUT/montage.png and OUT/summary.json, and a checkpoint that
    --resume continues from.
    """
    from keras_fool.cli import STARTED

    if population < 1:
        raise click.BadParameter(f"population must be at least 1, got {population}.", param_hint="--population")
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other.")
    class_list = parse_classes(classes)

    from keras_fool.encodings import make_encoding
    from keras_fool.errors import ResumeError
    from keras_fool.evolution import Checkpoint, EarlyStopping, MapElites, ProgressBar, Target, TensorBoard
    from keras_fool.evolution.outputs import write_outputs
    from keras_fool.io import ensure_writable_dir

    out = ensure_writable_dir(out)
    checkpoint = out / "checkpoint.npz"
    if resume and not checkpoint.is_file():
        raise ResumeError(f"Cannot resume: there is no checkpoint in {out}.")
    if not resume and not overwrite and checkpoint.is_file():
        raise click.UsageError(f"{out} already holds a run; pass --resume to continue it or --overwrite to start again.")
    if logdir is not None:
        ensure_writable_dir(logdir)

    target = Target(list(models), logits=logits)
    if encoding == "cppn":
        genome_encoding = make_encoding("cppn", target.image_shape, capacity=capacity, weight_rate=mutation_rate, eta=eta)
    else:
        genome_encoding = make_encoding("direct", target.image_shape, rate=mutation_rate, eta=eta)
    evolver = MapElites(target, genome_encoding, population=population, classes=class_list, seed=seed,
                        crossover=crossover, selection=selection)
    if resume:
        evolver.load_checkpoint(checkpoint)
        click.echo(f"Resuming from generation {evolver.generation} ({checkpoint}).", err=True)

    callbacks = [Checkpoint(checkpoint, every=checkpoint_every)]
    if stop_at is not None:
        callbacks.append(EarlyStopping(stop_at))
    if logdir is not None:
        callbacks.append(TensorBoard(logdir, image_every=checkpoint_every))
    if not quiet:
        callbacks.append(ProgressBar())
    evolver.trace()
    startup_seconds = time.perf_counter() - STARTED
    loop_start = time.perf_counter()
    try:
        evolver.run(generations, callbacks)
    except KeyboardInterrupt:
        raise click.ClickException(
            f"Interrupted at generation {evolver.generation}; `--resume` continues from the last checkpoint in {out}."
        ) from None
    summary = write_outputs(
        evolver,
        out,
        {
            "wall_seconds": time.perf_counter() - STARTED,
            "evolution_seconds": time.perf_counter() - loop_start,
            "startup_seconds": startup_seconds,
        },
    )
    confidences = [c["confidence"] for c in summary["classes"]]
    at_target = sum(c is not None and c >= 0.9999 for c in confidences)
    click.echo(
        f"{summary['generations']} generations, {summary['evaluations']:,} evaluations "
        f"({summary['evaluations_per_second']:,.0f}/s); {at_target}/{len(confidences)} classes at >= 99.99%."
    )
    click.echo(f"montage: {Path(out) / 'montage.png'}")
