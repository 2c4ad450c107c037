"""``keras-fool experiment imagenet``: direct encoding vs CPPN vs gradient ascent on an ImageNet network."""

from __future__ import annotations

import time

import click

from keras_fool.cli import echo_report
from keras_fool.cli.options import (
    CLASS_NAMES,
    CPU_REPLICAS,
    LOGDIR,
    OVERWRITE,
    check_strategy_options,
    population_option,
    seed_option,
    strategy_option,
)


@click.command("imagenet")
@click.option("--model", default="efficientnet_lite0_imagenet", show_default=True,
              help="Preset name or .keras file of an ImageNet classifier taking RGB images in [0, 1].")
@click.option("--classes", default=None,
              help="'all', or class names and/or indices, comma-separated. [default: ten classes of the paper's "
              "figures: king penguin, starfish, baseball, electric guitar, freight car, remote control, peacock, "
              "African grey, lesser panda, Windsor tie]")
@click.option("--generations", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Generations of each evolution (the paper: 5000).")
@population_option(16, "Offspring per generation (the paper: 400; 16-32 is EfficientNet-Lite0's fastest batch on CPU).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Gradient steps per class. [default: the evolutions' budget, population x (generations + 1) "
              "/ classes - 1]")
@click.option("--methods", default="direct,cppn,nes,gradient", show_default=True,
              help="Comma-separated methods to run: direct, cppn (MAP-Elites, the paper's), nes (natural evolution "
              "strategies over low-resolution pixels: the strongest black-box search measured), gradient.")
@click.option("--second-model", default="auto", show_default=True,
              help="Second ImageNet network (preset or .keras file, same classes) for the transfer and ensemble "
              "studies; 'auto': efficientnet_lite1_imagenet beside the default model, efficientnet_lite0_imagenet "
              "beside Lite1 and Lite2, none for other models; 'none': no studies.")
@click.option("--studies", default="transfer,ensemble", show_default=True,
              help="Comma-separated studies with the second network: transfer (supplement A.2), ensemble "
              "(supplement B); 'none' for neither. Each is one more CPPN evolution at the same budget.")
@click.option("--crops", type=click.Choice(["1", "10"]), default="1", show_default=True,
              help="10: Caffe's ten crops, as the paper scored its images (ten times the compute).")
@click.option("--regularization", type=click.Choice(["none", "s5", "s6", "s7"]), default="none",
              show_default=True, help="Gradient ascent's regularizer (keras-fool ascend --help).")
@click.option("--stop-at", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.9999, show_default=True,
              help="Each method stops once every class reaches this confidence.")
@click.option("--no-stop", is_flag=True, help="Spend the whole budget, whatever the confidence.")
@click.option("--paper", is_flag=True, help="Evolve with the paper's settings (eta 15, uniform parents).")
@CLASS_NAMES
@seed_option(0)
@click.option("--out", type=click.Path(file_okay=False), default="runs/imagenet", show_default=True,
              help="Output folder; refused if it holds results, unless --resume or --overwrite.")
@click.option("--resume", is_flag=True, help="Continue the evolutions checkpointed in --out.")
@OVERWRITE
@LOGDIR
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=50, show_default=True)
@strategy_option("Spread the population of both evolutions (gradient ascent stays on one device)")
@CPU_REPLICAS
@click.option("--quiet", is_flag=True, help="No progress bars.")
def imagenet(model, classes, generations, population, steps, methods, second_model, studies, crops, regularization,
             stop_at, no_stop, paper, class_names, seed, out, resume, overwrite, logdir, checkpoint_every, strategy,
             cpu_replicas, quiet):
    """Fool an ImageNet classifier three ways at equal budgets (Nguyen et al., Figure 1 and supplement E).

    Writes OUT/imagenet.md (median and max confidence per method beside the paper's 88.11% for
    CPPNs, 21.59% for the direct encoding and 99.99% for gradient ascent), OUT/imagenet.csv,
    OUT/summary.json, OUT/figure1.png and OUT/<method>/ in evolve's format. With a second
    network, two studies follow: CPPN images evolved against it (OUT/second_cppn/) and each
    network's images shown to the other (supplement A.2: 20.7% and 17.3% top-1 matches), and CPPN
    images evolved against the two networks' mean (OUT/ensemble_cppn/; supplement B: 231 of 1000
    classes >= 90%). --resume reuses what a run with the same options finished. RESULTS.md says how
    long the defaults take on 2 CPU cores.
    """
    from keras_fool.cli import import_tensorflow_quietly
    from keras_fool.distribute import is_chief
    from keras_fool.experiments.imagenet import DEFAULT_CLASSES, check_imagenet_options
    from keras_fool.io import check_output_dir
    from keras_fool.zoo import check_model_source

    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    study_list = [] if studies.strip() == "none" else [s.strip() for s in studies.split(",") if s.strip()]
    check_imagenet_options(generations, population, steps, method_list, int(crops), regularization,
                           None if no_stop else stop_at, seed, checkpoint_every, study_list)
    second_model = None if second_model == "none" else second_model
    check_strategy_options(strategy, cpu_replicas)
    if is_chief():  # another worker of a cluster writes nothing into --out
        check_output_dir(out, "summary.json", resume, overwrite)
    check_model_source(model)
    if second_model not in (None, "auto") and study_list:
        check_model_source(second_model)
    start = time.perf_counter()
    tensorflow = import_tensorflow_quietly()
    tensorflow.get_logger().setLevel("ERROR")
    from keras_fool.experiments.imagenet import run_imagenet_experiment

    report = run_imagenet_experiment(
        out, model=model, classes=DEFAULT_CLASSES if classes is None else classes, generations=generations,
        population=population, steps=steps, methods=method_list, crops=int(crops), regularization=regularization,
        stop_at=None if no_stop else stop_at, paper=paper, class_names=class_names, seed=seed, resume=resume,
        overwrite=overwrite, checkpoint_every=checkpoint_every, logdir=logdir, progress=not quiet,
        log=lambda line: click.echo(line, err=True), strategy=strategy, cpu_replicas=cpu_replicas,
        second_model=second_model, studies=study_list)
    echo_report(report, start)
