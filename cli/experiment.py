"""``keras-fool experiment``: the papers' experiments, one command each."""

from __future__ import annotations

import click

from keras_fool.cli import LazyGroup

_EXPERIMENTS = {
    "detectors": "keras_fool.cli.detectors:detectors",
    "ensemble": "keras_fool.cli.fooling:ensemble",
    "fooling-class": "keras_fool.cli.fooling:fooling_class",
    "imagenet": "keras_fool.cli.imagenet:imagenet",
    "robustness": "keras_fool.cli.robustness:robustness",
    "transfer": "keras_fool.cli.fooling:transfer",
}


@click.group(cls=LazyGroup, lazy_commands=_EXPERIMENTS)
def experiment():
    """Reproduce the papers' experiments (tables, curves, plots) with one command."""
