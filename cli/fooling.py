"""``keras-fool experiment fooling-class | transfer | ensemble``: the supplement of Nguyen et al. (2015).

TensorFlow is imported inside the commands only, so ``--help`` stays fast.
"""

from __future__ import annotations

import time

import click

from keras_fool.cli import echo_report
from keras_fool.cli.options import (
    CPU_REPLICAS,
    LOGDIR,
    OVERWRITE,
    check_strategy_options,
    out_option,
    population_option,
    seed_option,
    strategy_option,
)

_ENCODING = click.option("--encoding", type=click.Choice(["direct", "cppn"]), default="direct", show_default=True,
                         help="direct: one gene per pixel (fast); cppn: the paper's pattern-producing networks "
                         "(slower; RESULTS.md measures by how much).")
_GENERATIONS = click.option("--generations", type=click.IntRange(min=1), default=200, show_default=True,
                            help="Generations per evolution run (the paper: 200 on MNIST).")
_POPULATION = population_option(200)
_TEST_IMAGES = click.option("--test-images", type=click.IntRange(1, 10000), default=None,
                            help="Use only the first N MNIST test images (default: all 10,000).")
_SEED = seed_option(0)
_LOGDIR = LOGDIR
_STRATEGY = strategy_option("Spread the population of every evolution run")


def _start(out, overwrite, strategy, cpu_replicas, models=()):
    from keras_fool.cli import import_tensorflow_quietly
    from keras_fool.distribute import is_chief
    from keras_fool.io import check_output_dir
    from keras_fool.zoo import check_model_source

    check_strategy_options(strategy, cpu_replicas)
    for model in models:  # a missing or unreadable model file is refused before TensorFlow starts
        check_model_source(model)
    # A folder that holds results is refused before TensorFlow starts (by the chief only: another
    # worker of a cluster writes nothing into it); the experiment creates it once its sizes are accepted.
    if is_chief():
        check_output_dir(out, "summary.json", overwrite=overwrite, resumable=False)
    tensorflow = import_tensorflow_quietly()
    # Every evolution run compiles its own loop; TensorFlow's retracing warnings say nothing useful here.
    tensorflow.get_logger().setLevel("ERROR")
    return time.perf_counter()


def _log(line):
    click.echo(line, err=True)


@click.command("fooling-class")
@click.option("--iterations", type=click.IntRange(min=1), default=15, show_default=True,
              help="K: the networks DNN_1..DNN_K (the paper: 15).")
@click.option("--images-per-iteration", type=click.IntRange(min=1), default=100, show_default=True,
              help="M: fooling images added per iteration (6M + M validation the first time, then M + M/10; "
              "the paper: 1000).")
@_GENERATIONS
@_POPULATION
@_ENCODING
@click.option("--train-steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Training steps (batches of 64) of each DNN_i, i >= 2.")
@click.option("--from-scratch", is_flag=True,
              help="Train every DNN_i from scratch with the LeNet recipe instead of warm-starting from DNN_{i-1}.")
@click.option("--min-runs", type=click.IntRange(min=1), default=5, show_default=True,
              help="Evolution runs per iteration at least (more when the next iteration needs more images).")
@click.option("--model", default="lenet_mnist", show_default=True, help="Zoo preset of DNN_1.")
@click.option("--train-images", type=click.IntRange(64, 60000), default=None,
              help="Use only the first N MNIST training images (default: all 60,000).")
@_TEST_IMAGES
@_SEED
@out_option("runs/fooling_class")
@OVERWRITE
@_LOGDIR
@_STRATEGY
@CPU_REPLICAS
def fooling_class(iterations, images_per_iteration, generations, population, encoding, train_steps, from_scratch,
                  min_runs, model, train_images, test_images, seed, out, overwrite, logdir, strategy, cpu_replicas):
    """Retrain with the fooling images in an 11th class, again and again (supplement C, Table S2).

    Writes OUT/table_s2.md (beside the paper's numbers), OUT/table_s2.csv,
    OUT/median_confidence.png, OUT/summary.json, OUT/fooling_images.npz and OUT/models/.
    RESULTS.md says how long the defaults (15 iterations, M = 100, direct encoding, 1000 steps
    per network) take. With --strategy the evolution runs are data-parallel; each DNN_i trains
    on one device (its weights would otherwise differ in their last bits).
    """
    start = _start(out, overwrite, strategy, cpu_replicas)
    from keras_fool.experiments.fooling_class import run_fooling_class_experiment

    report = run_fooling_class_experiment(
        out, iterations=iterations, images_per_iteration=images_per_iteration, generations=generations,
        population=population, encoding=encoding, train_steps=train_steps, from_scratch=from_scratch,
        min_runs=min_runs, model=model, train_images=train_images, test_images=test_images, seed=seed,
        logdir=logdir, log=_log, strategy=strategy, cpu_replicas=cpu_replicas, overwrite=overwrite)
    echo_report(report, start)


@click.command("transfer")
@click.option("--model-a", default="lenet_mnist", show_default=True, help="DNN_A: preset name or .keras file.")
@click.option("--model-b", default="lenet_mnist_b", show_default=True, help="DNN_B: preset name or .keras file.")
@click.option("--runs", type=click.IntRange(min=1), default=30, show_default=True,
              help="Evolution runs per network; each gives one image per class (the paper: 300 images).")
@_GENERATIONS
@_POPULATION
@_ENCODING
@click.option("--images", "kept", type=click.Choice(["last", "first-and-last"]), default="last", show_default=True,
              help="Which elites of each run to show the other network: the last generation's (the finished fooling "
              "images), or also the first generation's (how the supplement samples images for its fooling class, "
              "20 per run: --runs 15 then gives the paper's 300).")
@_TEST_IMAGES
@_SEED
@out_option("runs/transfer")
@OVERWRITE
@_LOGDIR
@_STRATEGY
@CPU_REPLICAS
def transfer(model_a, model_b, runs, generations, population, encoding, kept, test_images, seed, out, overwrite,
             logdir, strategy, cpu_replicas):
    """Do images evolved against DNN_A fool DNN_B, and vice versa? (supplement A, Table S1)

    Writes OUT/table_s1.md (beside the paper's numbers), OUT/table_s1.csv, OUT/summary.json and
    OUT/transfer_images.npz.
    """
    start = _start(out, overwrite, strategy, cpu_replicas, (model_a, model_b))
    from keras_fool.experiments.transfer import run_transfer_experiment

    report = run_transfer_experiment(out, model_a=model_a, model_b=model_b, runs=runs, generations=generations,
                            population=population, encoding=encoding, images=kept.replace("-", "_"),
                            test_images=test_images, seed=seed, logdir=logdir, log=_log, strategy=strategy,
                            cpu_replicas=cpu_replicas, overwrite=overwrite)
    echo_report(report, start)


@click.command("ensemble")
@click.option("--model", "models", multiple=True, default=["lenet_mnist", "lenet_mnist_b"], show_default=True,
              help="A member of the ensemble (preset name or .keras file); repeat for each, two at least.")
@click.option("--runs", type=click.IntRange(min=1), default=10, show_default=True,
              help="Evolution runs per target; each gives one image per class.")
@_GENERATIONS
@_POPULATION
@_ENCODING
@click.option("--members/--no-members", default=True, show_default=True,
              help="Also evolve against each member alone, for comparison.")
@_TEST_IMAGES
@_SEED
@out_option("runs/ensemble")
@OVERWRITE
@_LOGDIR
@_STRATEGY
@CPU_REPLICAS
def ensemble(models, runs, generations, population, encoding, members, test_images, seed, out, overwrite, logdir,
             strategy, cpu_replicas):
    """Evolve against an ensemble (mean probabilities of several models; supplement B).

    Writes OUT/ensemble.md (beside the paper's numbers), OUT/ensemble.csv, OUT/summary.json and
    OUT/ensemble_images.npz.
    """
    start = _start(out, overwrite, strategy, cpu_replicas, models)
    from keras_fool.experiments.ensemble import run_ensemble_experiment

    report = run_ensemble_experiment(out, models=list(models), runs=runs, generations=generations, population=population,
                            encoding=encoding, members=members, test_images=test_images, seed=seed, logdir=logdir,
                            log=_log, strategy=strategy, cpu_replicas=cpu_replicas, overwrite=overwrite)
    echo_report(report, start)
