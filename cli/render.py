"""``keras-fool render``: re-render an archive's CPPN genomes at any resolution."""

from __future__ import annotations

import click


@click.command()
@click.argument("archive", type=click.Path(dir_okay=False))
@click.option("--scale", type=click.IntRange(min=1, max=64), default=8, show_default=True,
              help="Render at this many times the archive's image size.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="PNG to write [ARCHIVE's folder/montage_xSCALE.png].")
def render(archive, scale, out):
    """Render the CPPN elites of ARCHIVE (an archive.npz) SCALE times larger, as one labelled montage.

    CPPNs are functions of pixel coordinates, so a larger rendering shows the same pattern in
    finer detail rather than bigger pixels.
    """
    import json
    from pathlib import Path

    import tensorflow as tf

    from keras_fool.encodings import CPPNEncoding, encoding_from_config
    from keras_fool.evolution.callbacks import format_confidence
    from keras_fool.evolution.outputs import load_archive
    from keras_fool.io import montage, save_png

    path = Path(archive)
    arrays = load_archive(path)
    try:
        config = json.loads(str(arrays["encoding"]))
        encoding = encoding_from_config(config)
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"{path} does not say which encoding made it; it is not a keras-fool archive.") from None
    if not isinstance(encoding, CPPNEncoding):
        raise ValueError(f"{path} holds {config.get('name')!r} genomes; only CPPN genomes can be re-rendered.")
    try:
        genomes = {k: arrays[f"genomes/{k}"] for k in ("activation", "alive", "position", "connected", "weight")}
    except KeyError as e:
        raise ValueError(f"{path} lacks the CPPN genome array {e.args[0]}.") from None
    encoding.validate(genomes)
    height, width = encoding.image_shape[0] * scale, encoding.image_shape[1] * scale
    images = encoding.render({k: tf.constant(v) for k, v in genomes.items()}, height, width).numpy()
    names = arrays["class_names"]
    captions = [f"{names[label]}: {format_confidence(float(conf))}" for label, conf in zip(arrays["labels"], arrays["confidences"])]
    out = Path(out) if out else path.parent / f"montage_x{scale}.png"
    save_png(out, montage(images, captions, columns=min(len(images), 5), scale=1))
    click.echo(f"rendered {len(images)} genomes at {height}x{width}: {out}")
