"""``keras-fool evolve``: evolve fooling images against a classifier with MAP-Elites."""

from __future__ import annotations

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
@click.option("--capacity", type=click.IntRange(min=1), default=None,
              help="CPPN node slots per genome, inputs and outputs included [the CPPN encoding's default, 16].")
@click.option("--generations", type=click.IntRange(min=0), default=200, show_default=True,
              help="Total generations (generation 0 is the random initial population).")
@click.option("--population", type=int, default=200, show_default=True, help="Offspring per generation.")
@click.option("--classes", default="all", show_default=True, help="'all' or class indices such as 0,3,7.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--crossover", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Fraction of offspring made by SBX crossover before mutation.")
@click.option("--mutation-rate", type=click.FloatRange(0.0, 1.0, min_open=True), default=None,
              help="Per-gene (direct) or per-weight (cppn) mutation probability [the encoding's default, 0.1].")
@click.option("--eta", type=click.FloatRange(0.0, min_open=True), default=None,
              help="Polynomial mutation index: smaller means bigger steps [the encoding's default, 15; "
              "RESULTS.md measures 3].")
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
    from keras_fool.cli import STARTED, import_tensorflow_quietly
    from keras_fool.io import check_output_dir
    from keras_fool.zoo import check_model_source

    if population < 1:
        raise click.BadParameter(f"population must be at least 1, got {population}.", param_hint="--population")
    class_list = parse_classes(classes)
    check_output_dir(out, "checkpoint.npz", resume, overwrite)
    for model in models:
        check_model_source(model)
    import_tensorflow_quietly()
    from keras_fool.evolution.runs import output_files, run_evolution

    try:
        summary = run_evolution(
            out, models=list(models), encoding=encoding, generations=generations, population=population,
            classes=class_list, seed=seed, crossover=crossover, mutation_rate=mutation_rate, eta=eta,
            selection=selection, capacity=capacity, stop_at=stop_at, resume=resume, overwrite=overwrite,
            logdir=logdir, checkpoint_every=checkpoint_every, logits=logits, progress=not quiet, started=STARTED,
            log=lambda line: click.echo(line, err=True))
    except KeyboardInterrupt:
        raise click.ClickException(
            f"Interrupted; `--resume` continues from the last checkpoint in {out}."
        ) from None
    confidences = [c["confidence"] for c in summary["classes"]]
    at_target = sum(c is not None and c >= 0.9999 for c in confidences)
    click.echo(
        f"{summary['generations']} generations, {summary['evaluations']:,} evaluations "
        f"({summary['evaluations_per_second']:,.0f}/s); {at_target}/{len(confidences)} classes at >= 99.99%."
    )
    click.echo(f"montage: {Path(out) / 'montage.png'}")
