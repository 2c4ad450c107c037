"""``keras-fool ascend``: fooling images by gradient ascent, with supplement E's regularizers."""

from __future__ import annotations

from pathlib import Path

import click

from keras_fool.cli.options import (
    CLASS_NAMES,
    INPUT_RANGE,
    LOGDIR,
    LOGITS,
    OVERWRITE,
    PREPROCESS,
    SEED,
    FiniteFloatRange,
)

# The regularization presets of keras_fool.evolution.gradient.REGULARIZATIONS (that module imports no
# TensorFlow, so the choices are read from it).
from keras_fool.evolution.gradient import REGULARIZATIONS


@click.command()
@click.option("--model", "models", multiple=True, default=["lenet_mnist"], show_default=True,
              help="Preset name or .keras file; repeat for an ensemble target (mean probabilities).")
@click.option("--classes", default="all", show_default=True,
              help="'all', or class indices and/or names, comma-separated: 0,3,7 or \"king penguin,starfish\".")
@click.option("--steps", type=click.IntRange(min=1), default=200, show_default=True, help="Gradient steps per class.")
@click.option("--regularization", type=click.Choice(list(REGULARIZATIONS)), default="none", show_default=True,
              help="Supplement E's figures: none; s5 (L2 decay 0.01); s6 (decay 0.001, blur 0.3, pseudo-L1 at the "
              "20th percentile); s7 (decay 0.001, blur 0.5, a quarter of the step). The knobs below override it.")
@click.option("--objective", type=click.Choice(["probability", "logit"]), default="probability", show_default=True,
              help="Ascend the class's softmax probability (the paper) or its logit.")
@click.option("--step-size", type=FiniteFloatRange(0.0, min_open=True), default=None,
              help="RMS change of a pixel per step, in [0, 1] units. [default: 0.01; s7: 0.0025]")
@click.option("--decay", type=FiniteFloatRange(0.0, 1.0, max_open=True), default=None,
              help="L2 decay gamma: the mean-subtracted image is multiplied by 1 - gamma each step.")
@click.option("--blur-radius", type=FiniteFloatRange(0.0, 50.0), default=None,
              help="Standard deviation (pixels) of the Gaussian blur; 0 for none.")
@click.option("--blur-every", type=click.IntRange(min=1), default=None, help="Steps between blurs. [default: 1]")
@click.option("--percentile", type=FiniteFloatRange(0.0, 100.0, max_open=True), default=None,
              help="Pseudo-L1: pixels whose norm is below this percentile are set to the mean; 0 for none.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Classes ascending together in one compiled loop.")
@click.option("--stop-at", type=FiniteFloatRange(0.0, 1.0, min_open=True), default=None,
              help="Stop a batch once all its classes reach this confidence (e.g. 0.9999).")
@SEED
@LOGITS
@INPUT_RANGE
@PREPROCESS
@click.option("--crops", type=click.Choice(["1", "10"]), default="1", show_default=True,
              help="10: score Caffe's ten crops and average; the images are then the model's size + 32.")
@CLASS_NAMES
@click.option("--out", type=click.Path(file_okay=False), default="runs/ascend", show_default=True,
              help="Output folder; refused if it holds results, unless --overwrite.")
@OVERWRITE
@LOGDIR
@click.option("--quiet", is_flag=True, help="No progress lines.")
def ascend(models, classes, steps, regularization, objective, step_size, decay, blur_radius, blur_every, percentile,
           batch_size, stop_at, seed, logits, input_range, preprocess, crops, class_names, out, overwrite, logdir,
           quiet):
    """Fooling images by gradient ascent on each class's confidence (supplement E of Nguyen et al.).

    Starts from the mean image plus noise of standard deviation 1/255 and follows the gradient,
    with the supplement's regularizers if asked. Writes OUT/archive.npz, OUT/montage.png and
    OUT/summary.json in evolve's format.
    """
    from keras_fool.cli import STARTED, import_tensorflow_quietly
    from keras_fool.evolution.gradient import ascent_settings
    from keras_fool.io import check_output_dir
    from keras_fool.zoo import check_model_source

    ascent_settings(regularization, step_size, decay, blur_radius, blur_every, percentile, objective)
    check_output_dir(out, "archive.npz", overwrite=overwrite, resumable=False)
    for model in models:
        check_model_source(model)
    seed = 0 if seed is None else seed
    import_tensorflow_quietly()
    from keras_fool.evolution.gradient import run_gradient_ascent

    # A history of --steps that cannot fit in memory is refused by the library before the folder is made.
    summary = run_gradient_ascent(
        out, models=list(models), classes=classes, steps=steps, regularization=regularization, objective=objective,
        step_size=step_size, decay=decay, blur_radius=blur_radius, blur_every=blur_every, percentile=percentile,
        batch_size=batch_size, stop_at=stop_at, seed=seed, logits=logits, input_range=input_range,
        preprocess=preprocess, crops=int(crops), class_names=class_names, overwrite=overwrite, logdir=logdir,
        started=STARTED, log=None if quiet else (lambda line: click.echo(line, err=True)))
    confidences = [c["confidence"] for c in summary["classes"]]
    at_target = sum(c is not None and c >= 0.9999 for c in confidences)
    speed = summary["evaluations_per_second"]  # None when no step was timed
    speed = "" if speed is None else f" ({speed:,.1f} image-steps/s)"
    click.echo(f"{summary['generations']} steps, {len(confidences)} classes{speed}; {at_target}/{len(confidences)} "
               "classes at >= 99.99%.")
    click.echo(f"montage: {Path(out) / 'montage.png'}")
