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
    from keras_fool.cli import import_tensorflow_quietly
    from keras_fool.errors import CorruptFileError
    from keras_fool.io import check_npz_file, npz_shapes
    from keras_fool.validation import check_memory

    check_npz_file(archive, "an archive .npz file")
    try:
        shape = npz_shapes(archive).get("images")
        if shape is not None and len(shape) == 4:  # each image rendered, then drawn into the montage
            count, height, width, channels = shape
            check_memory(2 * 4 * count * height * scale * width * scale * channels,
                         f"Rendering {count:,} images at {height * scale}x{width * scale}", "scale=N")
        import_tensorflow_quietly()
        from keras_fool.evolution.outputs import render_archive

        result = render_archive(archive, scale=scale, out=out)
    except CorruptFileError as e:  # the user's own file: bad input, not a failure of the run
        raise ValueError(f"{e} It is not an archive.npz written by keras-fool evolve.") from None
    click.echo(f"rendered {result['images']} genomes at {result['height']}x{result['width']}: {result['out']}")
