"""``keras-fool human-study``: run the human study of Uličný et al. (Figure 8) and export its analysis."""

from __future__ import annotations

import click

from keras_fool.cli import LazyGroup, import_tensorflow_quietly
from keras_fool.cli.options import seed_option


@click.group(name="human-study", cls=LazyGroup)
def human_study():
    """People against LeNets on noisy digits (Uličný et al., section 4.2, Figure 8).

    \b
    keras-fool human-study serve                 open the study at http://127.0.0.1:8000/
    keras-fool human-study export --out report   answers, statistics, plot and table
    keras-fool human-study export --out demo --simulate 30   the pipeline with simulated people
    """


_db_option = click.option(
    "--db", default="study.sqlite", show_default=True,
    help="SQLite file, or a SQLAlchemy URL such as postgresql+psycopg://user:password@host/study.")
_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="JSON file of study settings (keys of StudyConfig); the paper's design by default.")
_images_option = click.option(
    "--images", type=click.Path(dir_okay=False), default=None,
    help="The image set (.npz); by default cached under $KERAS_FOOL_HOME/human_study, made on first use.")


def _check_model_if_images_are_made(config, path):
    """Whether the image set at ``path`` (None: the cache) must be made; if so, its model is checked first.

    Raises:
        FileNotFoundError, ValueError: the config's model is a missing or bad ``.keras`` file
            (:func:`keras_fool.zoo.check_model_source`), refused before any image is made.
    """
    from pathlib import Path

    from keras_fool.human_study.images import default_image_path
    from keras_fool.zoo import check_model_source

    if Path(path or default_image_path(config)).is_file():
        return False
    check_model_source(config.model)
    return True


@human_study.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 or the machine's LAN address opens it to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="TCP port (0: any free port).")
@_db_option
@_config_option
@_images_option
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Worker threads of the server.")
def serve(host, port, db, config_path, images, threads):
    """Serve the study to participants until Ctrl-C.

    The admin token (for /admin/status, /admin/answers.csv and /admin/reset) is read from
    $KERAS_FOOL_STUDY_ADMIN_TOKEN, or made up and printed.
    """
    from keras_fool.human_study.config import load_config
    from keras_fool.human_study.server import serve as run_server
    from keras_fool.human_study.storage import database_url

    config = load_config(config_path)
    database_url(db)
    if _check_model_if_images_are_made(config, images):
        import_tensorflow_quietly()  # the images are made first (the server itself never needs TensorFlow)
    run_server(db=db, host=host, port=port, config=config, images=images, threads=threads,
               announce=lambda line: click.echo(line))


@human_study.command()
@_db_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the files.")
@_images_option
@click.option("--lenets", type=click.IntRange(1, 20), default=6, show_default=True,
              help="LeNets to compare with (1-20; the paper used 20): the zoo's six, then extra seeds "
                   "trained on demand (about 5 minutes each on two cores) and cached.")
@click.option("--simulate", type=click.IntRange(0, 10000), default=0, show_default=True,
              help="Add this many SIMULATED participants (labelled as such in every file).")
@seed_option(0, "Seed of the simulated participants.")
@click.option("--include-unfinished", is_flag=True, help="Count participants who did not answer every image.")
@_config_option
def export(db, out, images, lenets, simulate, seed, include_unfinished, config_path):
    """Write answers.csv, the statistics, a Figure-8 plot and a Markdown table.

    With --simulate it also runs before anyone has taken part (no database yet), on the
    design of --config.
    """
    from keras_fool.human_study.config import load_config
    from keras_fool.human_study.storage import check_database

    config = load_config(config_path) if config_path else None
    if not simulate:
        check_database(db)  # a missing or foreign database is refused before TensorFlow loads
    import_tensorflow_quietly()
    from keras_fool.human_study.export import export_study

    summary = export_study(db, out, images=images, lenets=lenets, simulate=simulate, seed=seed,
                           include_unfinished=include_unfinished, config=config, verbose=True)
    click.echo(summary["table"], nl=False)
    click.echo(f"Wrote {len(summary['files'])} files to {out}: " + ", ".join(sorted(summary["files"])))


@human_study.command()
@_config_option
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Where to write the image set (.npz); the cache by default.")
def images(config_path, out):
    """Make the study's image set now (serve and export make it on first use otherwise)."""
    from keras_fool.human_study.config import load_config

    config = load_config(config_path)
    _check_model_if_images_are_made(config, out)
    import_tensorflow_quietly()
    from keras_fool.human_study.images import ensure_image_set

    image_set, path = ensure_image_set(config, out, verbose=True)
    click.echo(f"{path}: {image_set.pool_size} digits x {len(image_set.noise)} conditions "
               f"(digest {image_set.digest[:12]})")
