"""``keras-fool audit``: how easily is this classifier fooled? One self-contained report."""

from __future__ import annotations

import time

import click

from keras_fool.audit.budgets import BUDGET_NAMES
from keras_fool.cli.options import (
    CLASS_NAMES,
    INPUT_RANGE,
    LOGITS,
    MAX_QUERIES,
    OVERWRITE,
    PREPROCESS,
    SURROGATE,
    seed_option,
)


@click.command()
@click.argument("model")
@click.option("--data", type=click.Path(), default=None,
              help="Labelled images: an .npz with x (N, H, W[, C]; uint8 or floats in [0, 1]) and y (N,), or a folder "
              "with one subfolder of images per class (named after the class or its index). [default: the MNIST "
              "test set for a 28x28x1 model, else none: the sections that need data say so]")
@click.option("--budget", type=click.Choice(BUDGET_NAMES), default="quick", show_default=True,
              help="quick: minutes on a CPU; standard: about ten times more; thorough: paper-sized, for a GPU host "
              "(README's 'Audit your own model' gives each one's sizes and cost).")
@click.option("--compare", multiple=True,
              help="Another model (preset or .keras) to show the fooling images to; repeat for more.")
@click.option("--classes", default=None,
              help="Classes to fool, by index or name (0,3,7 or \"king penguin,starfish\"). [default: all, or at most "
              "10 (quick) / 100 (standard), evenly spaced]")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Output folder; refused if it holds an audit, unless --resume or --overwrite.")
@seed_option(0)
@click.option("--resume", is_flag=True, help="Continue the audit in --out from its finished stages.")
@OVERWRITE
@LOGITS
@INPUT_RANGE
@PREPROCESS
@CLASS_NAMES
@SURROGATE
@MAX_QUERIES
@click.option("--no-detectors", "detectors", is_flag=True, flag_value=False, default=True,
              help="Skip 'Would a detector catch these?' (out-of-distribution detectors against the fooling images "
              "and an attacker who evolves against each: one more direct-encoding search per detector).")
@click.option("--quiet", is_flag=True, help="No progress bars or progress lines (stage lines stay).")
def audit(model, data, budget, compare, classes, out, seed, resume, overwrite, logits, input_range, preprocess,
          class_names, surrogate, max_queries, detectors, quiet):
    """Audit MODEL: fooling images, confidence, robustness, transfer, detectors, verdict.

    MODEL is a preset, a .keras file, or a deployed model: a .tflite or .onnx file, a SavedModel
    directory, or a TensorFlow Serving URL (http://host:8501/v1/models/NAME:predict; a token for it is
    read from the environment variable KERAS_FOOL_TOKEN). A deployed model answers queries only: the
    searches run against it, the gradient attacks on --surrogate (or are reported as not run).

    Writes OUT/report.html (self-contained: open it in any browser, or print it), OUT/report.json
    (every number; a versioned schema) and the figures as PNG. Each finished stage is kept in
    OUT/stages: after Ctrl-C, the same command with --resume continues from there.
    """
    from keras_fool.audit.options import check_audit_options
    from keras_fool.cli import import_tensorflow_quietly
    from keras_fool.backends import check_source

    if classes is not None and not classes.strip():
        raise click.BadParameter("no class given.", param_hint="--classes")
    check_audit_options(out, data, budget, list(compare), seed, resume, overwrite, input_range, preprocess,
                        class_names, surrogate)
    check_source(model)
    started = time.perf_counter()
    tensorflow = import_tensorflow_quietly()
    tensorflow.get_logger().setLevel("ERROR")
    from keras_fool.audit.stages import STAGE_TITLES
    from keras_fool.audit.run import audit_model

    current = {"stage": None}

    def announce(index, count, stage, state, seconds):
        current["stage"] = STAGE_TITLES[stage]
        prefix = f"[{index}/{count}] {STAGE_TITLES[stage]}"
        elapsed = time.perf_counter() - started
        if state == "start":
            click.echo(f"{prefix} ...", err=True)
        elif state == "kept":
            click.echo(f"{prefix}: kept from the earlier run ({seconds:.1f} s then)", err=True)
        else:
            click.echo(f"{prefix}: done in {seconds:.1f} s (elapsed {elapsed:.0f} s)", err=True)

    def log(line):
        if not quiet:
            click.echo(f"    {line}", err=True)

    click.echo(f"Auditing {model} with the {budget} budget (seed {seed}) into {out}", err=True)
    try:
        report = audit_model(model, out, data=data, budget=budget, compare=list(compare), classes=classes, seed=seed,
                             logits=logits, input_range=input_range, preprocess=preprocess, class_names=class_names,
                             resume=resume, overwrite=overwrite, progress=not quiet, log=log, announce=announce,
                             surrogate=surrogate, max_queries=max_queries, detectors=detectors)
    except KeyboardInterrupt:
        where = f" during {current['stage']}" if current["stage"] else ""
        click.echo(f"Interrupted{where}; the finished stages are kept in {out}/stages: run the same command with "
                   "--resume to continue.", err=True)
        raise SystemExit(130) from None
    click.echo(report.markdown)
    click.echo(f"seconds: {time.perf_counter() - started:.1f}")
    click.echo("wrote:")
    for path in report.files:
        click.echo(f"  {path}")
    click.echo(f"  {report.out / 'stages'}/ (the finished stages, for --resume)")
