"""``keras-fool experiment detectors``: out-of-distribution detectors against non-adaptive and adaptive fooling images.

TensorFlow is imported inside the command only, so ``--help`` and bad options stay fast.
"""

from __future__ import annotations

import time

import click

from keras_fool.cli import echo_report
from keras_fool.cli.options import OVERWRITE, out_option, population_option

_DETECTORS = "msp,max_logit,energy,odin,mahalanobis,reconstruction,union"  # DETECTOR_NAMES, without importing TF


@click.command("detectors")
@click.option("--model", default="lenet_mnist", show_default=True,
              help="Preset name or .keras file: an MNIST classifier (28x28x1, 10 classes) or an ImageNet one.")
@click.option("--detectors", default=_DETECTORS, show_default=True,
              help="Comma-separated detectors: msp (max softmax), max_logit, energy, odin, mahalanobis, reconstruction "
              "(MagNet's autoencoder error; MNIST only), union (flagged by mahalanobis or reconstruction). On ImageNet, "
              "mahalanobis, reconstruction and union are reported as not run.")
@click.option("--encodings", default="direct,cppn", show_default=True,
              help="Comma-separated MAP-Elites encodings (direct, cppn), or 'none'.")
@click.option("--gradient/--no-gradient", default=True, show_default=True,
              help="Also gradient ascent (adaptive: through the detector's score).")
@click.option("--steps", type=click.IntRange(min=1), default=50, show_default=True,
              help="Gradient-ascent steps per class.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds; one study per seed.")
@click.option("--generations", type=click.IntRange(min=1), default=200, show_default=True,
              help="Generations of each evolution (with the default population: 40,200 evaluations).")
@population_option(200)
@click.option("--ood", default=None,
              help="Comma-separated out-of-distribution sets: animal_mnist, textures, science_photos. "
              "[default: animal_mnist for MNIST, textures,science_photos for ImageNet]")
@click.option("--classes", default=None,
              help="Class names and/or indices to attack, comma-separated. [default: every MNIST class; the ten "
              "classes of 'keras-fool experiment imagenet' for ImageNet]")
@click.option("--fit-images", type=click.IntRange(10, 60000), default=10000, show_default=True,
              help="MNIST training images the detectors are fitted on.")
@click.option("--held-out", type=click.IntRange(4, 10000), default=None,
              help="MNIST test images, half to calibrate each threshold, half to measure. [default: all 10,000]")
@click.option("--unbounded-factor", type=click.IntRange(min=2), default=5, show_default=True,
              help="Under a detector that keeps a class from the black-box attacker, the adaptive searches go on to "
              "this many times the budget.")
@out_option("runs/detectors")
@OVERWRITE
def detectors(model, detectors, encodings, gradient, steps, seeds, generations, population, ood, classes, fit_images,
              held_out, unbounded_factor, out, overwrite):
    """Would an out-of-distribution detector catch fooling images, even from an attacker who knows it?

    Per detector: AUROC and false-positive rate at 95% true-positive rate on fooling images
    evolved against the bare classifier, on adaptive ones evolved against the classifier behind
    the detector, and on real out-of-distribution images; the share of classes still fooled at
    >= 99% unflagged (non-adaptive, adaptive, worst case, black-box worst case; median and range
    over seeds); clean
    accuracy and flagged rate; and the checks against a false sense of security. Writes
    OUT/detectors.md, OUT/detectors.csv, OUT/summary.json, OUT/worst_case.png (.svg),
    OUT/adaptive_montage.png and OUT/adaptive_images.npz.
    """
    from keras_fool.experiments.detectors import check_detector_options
    from keras_fool.io import check_output_dir
    from keras_fool.zoo import check_model_source

    try:
        seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"seeds must be integers separated by commas. Received: {seeds!r}",
                                 param_hint="--seeds") from None
    encoding_list = () if encodings.strip() == "none" else encodings
    options = check_detector_options(detectors, encoding_list, gradient, seed_list, generations, population, steps,
                                     ood, fit_images, held_out, unbounded_factor=unbounded_factor, classes=classes)
    check_output_dir(out, "summary.json", overwrite=overwrite, resumable=False)
    check_model_source(model)
    start = time.perf_counter()
    from keras_fool.cli import import_tensorflow_quietly

    import_tensorflow_quietly().get_logger().setLevel("ERROR")
    from keras_fool.experiments.detectors import detector_study

    report = detector_study(out, model=model, overwrite=overwrite, log=lambda line: click.echo(line, err=True),
                            **{k: v for k, v in options.items() if k != "tpr"})
    echo_report(report, start)
