"""``keras-fool experiment``: the papers' experiments, one command each."""

from __future__ import annotations

import click

from keras_fool.cli import LazyGroup

_EXPERIMENTS = {
    "robustness": "keras_fool.cli.robustness:robustness",
}


@click.group(cls=LazyGroup, lazy_commands=_EXPERIMENTS)
def experiment():
    """Reproduce the papers' experiments (tables, curves, plots) with one command."""
