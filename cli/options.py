"""Options shared by the commands, so that each is spelled, checked and explained the same way everywhere."""

from __future__ import annotations

import math

import click

from keras_fool.distribute import STRATEGIES

__all__ = ["CLASS_NAMES", "FiniteFloatRange", "SlotsOrGrow", "CPU_REPLICAS", "INPUT_RANGE", "LOGDIR", "LOGITS", "MAX_QUERIES", "OVERWRITE", "PREPROCESS", "POPULATION", "SEED", "SURROGATE", "check_strategy_options", "out_option",
           "population_option", "preprocess_option", "seed_option", "strategy_option"]


def seed_option(default=0, help="The seed everything random derives from.", unset="0"):
    """``--seed``: an integer in 0..2**31-1; ``default`` None leaves it to the run (``unset`` says what that means)."""
    if default is None:
        return click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None,
                            help=f"{help} [default: {unset}]")
    return click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=default, show_default=True, help=help)


def population_option(default=200, help="Offspring per generation (the paper: 200)."):
    """``--population``: offspring per generation, at least 1; ``default`` None: 200, or a checkpoint's."""
    if default is None:
        return click.option("--population", type=click.IntRange(min=1), default=None,
                            help=f"{help} [default: 200]")
    return click.option("--population", type=click.IntRange(min=1), default=default, show_default=True, help=help)


def out_option(default, what="Output folder"):
    """``--out``: the folder a command writes its results into."""
    return click.option("--out", type=click.Path(file_okay=False), default=default, show_default=True,
                        help=f"{what}; refused if it holds results, unless --overwrite.")


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses ``inf`` and ``nan``, which Click lets through (NaN compares false
    with every bound, and an open upper bound takes infinity)."""

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return super().convert(value, param, ctx)  # Click's own words for what is no number at all
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(value, param, ctx)


class SlotsOrGrow(click.ParamType):
    """A CPPN node capacity: a whole number of slots (at least 1; the encoding names its own minimum) or ``grow``."""

    name = "SLOTS|grow"

    def convert(self, value, param, ctx):
        if value == "grow" or isinstance(value, int):
            return value
        text = str(value).strip()
        if text.isdigit() and int(text) >= 1:
            return int(text)
        self.fail(f"{value!r} is neither a number of node slots nor 'grow'.", param, ctx)


SEED = seed_option(None)
POPULATION = population_option(None)
OVERWRITE = click.option("--overwrite", is_flag=True, help="Replace the results already in --out.")
LOGDIR = click.option("--logdir", type=click.Path(file_okay=False), default=None,
                      help="Write TensorBoard logs into a folder of their own under this one (named after --out).")


def strategy_option(what="Score each generation data-parallel"):
    """``--strategy``: one of :data:`keras_fool.distribute.STRATEGIES`; ``what`` opens its help."""
    return click.option("--strategy", type=click.Choice(STRATEGIES), default="default", show_default=True,
                        help=f"{what}: over this host's GPUs (mirrored) or over the hosts of TF_CONFIG "
                        "(multi-worker; only the chief writes files). The results equal the one-device run's.")


CPU_REPLICAS = click.option("--cpu-replicas", type=click.IntRange(min=1), default=None,
                            help="Split the CPU into this many logical devices for --strategy (tests; machines "
                            "without GPUs).")


def check_strategy_options(strategy, cpu_replicas):
    """Refuse ``--cpu-replicas`` without a strategy that replicates (a usage error, before TensorFlow starts)."""
    if cpu_replicas is not None and strategy == "default":
        raise click.UsageError("--cpu-replicas needs --strategy mirrored or multi-worker.")


# How to read a model that is not a preset (keras_fool.target.Target's logits, input_range,
# preprocess and class names), the same for every command. `evolve` takes PREPROCESS with no default
# (preprocess_option(None)), so that a resumed run takes it from its checkpoint.
LOGITS = click.option("--logits", is_flag=True, help="The model outputs logits; apply softmax.")
INPUT_RANGE = click.option("--input-range", type=click.Choice(["0-1", "0-255"]), default=None,
                           help="Pixel range the model takes. [default: 0-255 with --preprocess, else 0-1]")


def preprocess_option(default="none"):
    """``--preprocess``: keras.applications' ``preprocess_input`` mode; ``default`` None: none, or a checkpoint's."""
    help = "keras.applications' preprocess_input of this mode, applied inside the target to 0-255 pixels."
    choice = click.Choice(["none", "tf", "torch", "caffe"])
    if default is None:
        return click.option("--preprocess", type=choice, default=None, help=f"{help} [default: none]")
    return click.option("--preprocess", type=choice, default=default, show_default=True, help=help)


PREPROCESS = preprocess_option()
CLASS_NAMES = click.option("--class-names", type=click.Path(dir_okay=False, exists=True), default=None,
                           help="Text file of class names, one per line (for a model that is not a preset).")
SURROGATE = click.option("--surrogate", default=None, metavar="MODEL",
                         help="For a model that answers queries only: a Keras model of the same images and classes "
                         "(preset or .keras, read as MODEL is) whose gradients the gradient attacks follow; their "
                         "images are then scored on MODEL (a transfer attack), and on a colour model the direct "
                         "encoding's NES starts each class from gradient ascent on it. Without it the gradient attacks "
                         "are reported as not run. Refused for a Keras model, which they attack directly.")
MAX_QUERIES = click.option("--max-queries", type=click.IntRange(min=1), default=None,
                           help="Query budget of a deployed model (.tflite, .onnx, SavedModel, URL): stop before "
                           "scoring more images than this, the probe and a resumed run's included. [default: no limit]")
