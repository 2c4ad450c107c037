"""``keras-fool zoo``: list, show, train and evaluate zoo models."""

from __future__ import annotations

import json

import click

from keras_fool.cli.options import OVERWRITE, seed_option


@click.group()
def zoo():
    """The model zoo: shipped, verified classifiers to attack and defend."""


@zoo.command("list")
def list_command():
    """List the registered presets."""
    from keras_fool.zoo import get_preset, list_presets, weights_state

    width = max(len(n) for n in list_presets()) + 2
    for name in list_presets():
        preset = get_preset(name)
        state = weights_state(preset)
        if preset.test_accuracy is not None:
            measured = f"acc {100 * preset.test_accuracy:.2f}%"
        elif preset.test_reconstruction_mse is not None:
            measured = f"mse {preset.test_reconstruction_mse:.4f}"
        else:
            measured = "acc -"
        click.echo(f"{name:<{width}}{preset.dataset:<8} {measured:<12} weights {state}")


@zoo.command("show")
@click.argument("name")
def show_command(name):
    """Print a preset's metadata (recipe, weights checksum, measured accuracy) as JSON."""
    from keras_fool.zoo import get_preset

    click.echo(json.dumps(get_preset(name).to_dict(), indent=2))


@zoo.command("train")
@click.argument("name")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Passes over the training set [recipe's].")
@seed_option(None, "Random seed.", unset="the preset's")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder [the zoo cache].")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many SGD iterations.")
@OVERWRITE
def train_command(name, epochs, seed, out, max_steps, overwrite):
    """Train preset NAME from scratch with its recorded recipe.

    Refuses to replace weights already in the output folder (the shipped ones in zoo/weights
    included) unless --overwrite.
    """
    from pathlib import Path

    from keras_fool.cli import import_tensorflow_quietly
    from keras_fool.zoo import get_preset, trained_weights_path

    preset = get_preset(name)  # unknown names fail before TensorFlow starts
    target = trained_weights_path(preset) if out is None else Path(out) / trained_weights_path(preset).name
    if target.exists() and not overwrite and not preset.members:
        raise click.UsageError(f"{target} already holds {name}'s weights; pass --overwrite to replace them.")
    import_tensorflow_quietly()
    from keras_fool.training.recipes import train_preset

    report = train_preset(name, epochs=epochs, seed=seed, out=out, max_steps=max_steps, verbose=2)
    if "test_accuracy" in report:
        line = f"{name}: test accuracy {100 * report['test_accuracy']:.2f}% (error {100 * report['test_error']:.2f}%)"
    else:
        line = f"{name}: test reconstruction MSE {report['test_reconstruction_mse']:.5f}"
    if "iterations" in report:
        line += f", {report['iterations']} iterations"
    if "seconds" in report:
        line += f", {report['seconds']:.0f} s"
    click.echo(line)
    if "weights" in report:
        click.echo(f"weights: {report['weights']}  sha256 {report['weights_sha256']}")
    else:
        click.echo(f"members: {', '.join(report['members'])} (trained now: {', '.join(report['trained_members']) or 'none'})")


@zoo.command("export")
@click.argument("model")
@click.argument("out", type=click.Path(dir_okay=False))
@OVERWRITE
def export_command(model, out, overwrite):
    """Write MODEL (a preset or a .keras file) as OUT, a .tflite (float) or .onnx file.

    The file is written only once its probabilities on random images match the Keras model's (within
    1e-4). Search it by queries with `keras-fool evolve --model OUT`: on a CPU, TFLite scored
    EfficientNet-Lite0 for the searches 1.5-2 times as fast as TensorFlow. A preset's class names are
    written beside it (OUT without its suffix, plus .classes.txt).
    """
    from pathlib import Path

    from keras_fool import zoo as zoo_lib
    from keras_fool.backends.export import FORMATS, export_model  # NumPy only: TensorFlow starts after the checks
    from keras_fool.cli import import_tensorflow_quietly

    if Path(out).suffix.lower() not in FORMATS:
        raise click.UsageError(f"{out} does not end in .tflite or .onnx, the files keras-fool zoo export writes.")
    if Path(out).exists() and not overwrite:
        raise click.UsageError(f"{out} exists; pass --overwrite to replace it.")
    zoo_lib.check_model_source(model)  # a missing or unknown model fails before TensorFlow starts
    import_tensorflow_quietly()
    done = export_model(model, out, overwrite=overwrite)
    click.echo(f"{done['path']}: {done['format']}, {done['bytes'] / 1e6:.1f} MB, converted in {done['seconds']:.1f} s; "
               f"probabilities within {done['max_abs_diff']:.1e} of the Keras model's on 16 random images")
    command = f"keras-fool evolve --model {done['path']}"
    if done["logits"]:
        command += " --logits"
    if done["class_names"]:
        click.echo(f"class names: {done['class_names']}")
        command += f" --class-names {done['class_names']}"
    click.echo(f"search it by queries: {command}")


@zoo.command("eval")
@click.argument("model")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Weights file (.weights.npz) to use instead of the preset's.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True)
def eval_command(model, weights, batch_size):
    """Test accuracy and error of MODEL (a preset name or a .keras file) on the MNIST test set."""
    from keras_fool import zoo as zoo_lib
    from keras_fool.cli import import_tensorflow_quietly
    from keras_fool.errors import CorruptFileError
    from keras_fool.io import check_npz_file

    if weights is not None and not zoo_lib.is_preset(model):
        raise click.UsageError("--weights needs a preset name as MODEL.")
    zoo_lib.check_model_source(model)
    if weights is not None:
        check_npz_file(weights, "a weights .npz file")
    import_tensorflow_quietly()
    from keras_fool.data import load_mnist
    from keras_fool.evaluation.metrics import accuracy

    if weights is not None:
        try:
            net = zoo_lib.load_weights(zoo_lib.build_model(model), weights)
        except CorruptFileError as e:  # the user's own file: bad input, not a failure of the run
            raise ValueError(str(e)) from None
    else:
        net = zoo_lib.load_model(model)
    if len(net.output_shape) != 2 or net.output_shape[-1] < 2:
        raise click.UsageError(f"{model} is not a classifier (its output shape is {net.output_shape[1:]}).")
    _, (x_test, y_test) = load_mnist()
    if tuple(net.input_shape[1:]) != x_test.shape[1:]:
        raise click.UsageError(f"{model} takes inputs of shape {net.input_shape[1:]}, MNIST is {x_test.shape[1:]}.")
    acc = accuracy(net, x_test, y_test, batch_size=batch_size)
    click.echo(f"{model}: test accuracy {100 * acc:.2f}%  error {100 * (1 - acc):.2f}%  ({len(y_test)} MNIST test images)")
