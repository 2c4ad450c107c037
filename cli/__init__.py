"""The ``keras-fool`` command line.

Subcommands are imported only when they run (a lazy Click group), and each imports TensorFlow
only once its options are parsed and checked, so every ``--help`` and every usage error is
answered without TensorFlow. The CLI holds no logic beyond parsing, progress and printing: each
command calls one library function. Errors end in one line on stderr: exit code 2 for bad input (``ValueError``,
``TypeError``, missing files, Click usage errors), 1 for failures of the run itself
(:class:`keras_fool.errors.KerasFoolError`, other OS errors); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import time

STARTED = time.perf_counter()  # for start-up time reports

import click  # noqa: E402

import keras_fool  # noqa: E402

__all__ = ["main"]

# name -> "module:attribute"; loaded on first use.
_COMMANDS = {
    "ascend": "keras_fool.cli.ascend:ascend",
    "audit": "keras_fool.cli.audit:audit",
    "evolve": "keras_fool.cli.evolve:evolve",
    "experiment": "keras_fool.cli.experiment:experiment",
    "human-study": "keras_fool.cli.human_study:human_study",
    "render": "keras_fool.cli.render:render",
    "zoo": "keras_fool.cli.zoo:zoo",
}


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow_quietly():
    """Import TensorFlow with its native start-up chatter hidden (what a command calls once its options are checked).

    TF 2.21 prints absl INFO lines (oneDNN, CPU features) from C++ before its log level is read,
    so ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them; file descriptor 2 points at /dev/null for the
    import only (:func:`keras_fool.lazy.native_stderr_hidden`). Python-level errors during the import
    still propagate normally.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    from keras_fool.lazy import native_stderr_hidden

    with native_stderr_hidden():
        import tensorflow
    return tensorflow


def echo_written(files):
    """A command's closing line: the files it wrote, or why there are none (a worker that is not the chief)."""
    if files:
        click.echo("wrote: " + ", ".join(str(path) for path in files))
    else:
        click.echo("wrote nothing: this worker is not the chief, which writes the outputs.")


def echo_report(report, start):
    """An experiment's report, its seconds since ``start`` (``time.perf_counter()``) and what it wrote."""
    click.echo(report.markdown.rstrip())
    click.echo("")
    click.echo(f"seconds: {time.perf_counter() - start:.1f}")
    echo_written(report.files)


def _cause(error):
    """One line that names what went wrong, even when the exception's first line does not.

    TensorFlow and Keras put their cause last ("Graph execution error:" ... "OOM when allocating
    tensor ..."; "in user code:" ... "ValueError: ..."), and a chained exception may hold it.
    """
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        cause = error.__cause__ or error.__context__
        return _cause(cause) if cause is not None else type(error).__name__
    first = lines[0]
    if len(lines) > 1 and first.endswith(":"):
        informative = [line for line in lines[1:] if not line.startswith(("File ", "Traceback", "[[", "^", "Node:"))]
        if informative:
            last = informative[-1]
            if "OOM" in text or "ResourceExhausted" in type(error).__name__:
                return f"out of memory: {last[:300]} (try a smaller --population or --batch-size)"
            return last[:300]
    if "ResourceExhausted" in type(error).__name__:
        return f"out of memory: {first[:300]}"
    return first[:300]


def _exit_code(error):
    """2 for the caller's bad input (ValueError, TypeError, a missing file), 1 for a failure of the run."""
    from keras_fool.errors import KerasFoolError

    usage = isinstance(error, (ValueError, TypeError, FileNotFoundError, IsADirectoryError))
    return 2 if usage and not isinstance(error, KerasFoolError) else 1


# The library's messages name parameters ("pass overwrite=True", "simulate=N"); the CLI user sees the
# flag: a true flag becomes --its-name, an upper-case placeholder follows the flag (--simulate N).
_PARAMETER = re.compile(r"\b([a-z][a-z0-9_]*)=(True\b|[A-Z][A-Z_]*\b)")


def as_flags(message):
    """``message`` with every ``name=True`` written ``--name`` and every ``name=PLACEHOLDER`` ``--name PLACEHOLDER``."""
    def flag(match):
        name = "--" + match.group(1).replace("_", "-")
        return name if match.group(2) == "True" else f"{name} {match.group(2)}"

    return _PARAMETER.sub(flag, message)


def _to_click_error(error):
    """Turn a library exception into a one-line Click error with the right exit code, in flags."""
    exc = click.ClickException(as_flags(_cause(error)))
    exc.exit_code = _exit_code(error)
    return exc


class LazyGroup(click.Group):
    """A Click group whose subcommands are imported on demand from ``"module:attr"`` strings."""

    def __init__(self, *args, lazy_commands=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, name):
        if name in self.lazy_commands:
            module_name, attr = self.lazy_commands[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as e:
            if (ctx.obj or {}).get("debug"):
                raise
            raise _to_click_error(e) from e

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as e:
            # One line, whatever kind of error: no usage dump, no traceback.
            click.echo(f"Error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as e:  # only with --debug: shown in full, with the exit code it would have had
            import traceback

            traceback.print_exc()
            sys.exit(_exit_code(e))
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=LazyGroup, lazy_commands=_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(keras_fool.__version__, prog_name="keras-fool")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx, debug):
    """Find out how easily an image classifier is fooled, and make it harder.

    \b
    Start with:
      keras-fool zoo list            the models that ship with keras-fool
      keras-fool zoo eval lenet_mnist
    """
    _quiet_tensorflow()
    ctx.ensure_object(dict)["debug"] = debug
