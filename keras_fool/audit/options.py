"""The checks of an audit's options that need no TensorFlow (what the command line runs first)."""

from __future__ import annotations

from pathlib import Path

from keras_fool.audit.budgets import check_budget
from keras_fool.io import check_output_dir
from keras_fool.validation import check_seed

__all__ = ["MARKER", "check_audit_options", "check_data_source"]

MARKER = "stages/settings.json"  # an output folder holding this holds an audit (finished or not)


def check_data_source(data):
    """Refuse a ``data`` that is neither an ``.npz`` file nor a folder.

    Raises:
        FileNotFoundError: nothing at that path.
        ValueError: a file that is not ``.npz``.
    """
    if data is None:
        return None
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"No data at {path}: give an .npz file with x and y, or a folder of class folders.")
    if path.is_file() and path.suffix != ".npz":
        raise ValueError(f"{path} is neither an .npz file (arrays x and y) nor a folder with one subfolder per class.")
    return path


def check_audit_options(out, data=None, budget="quick", compare=(), seed=0, resume=False, overwrite=False,
                        input_range=None, preprocess="none", class_names=None, surrogate=None):
    """Check what can be checked before a model is loaded.

    Raises:
        TypeError, ValueError, FileNotFoundError: one sentence naming the bad option.
    """
    from keras_fool.zoo import check_model_source

    check_budget(budget)
    check_seed(seed)
    check_output_dir(out, MARKER, resume, overwrite)
    check_data_source(data)
    if isinstance(compare, (str, Path)):
        compare = [compare]
    for source in [*compare, surrogate]:
        if isinstance(source, (str, Path)):
            check_model_source(source)
    if input_range not in (None, "0-1", "0-255"):
        raise ValueError(f"input_range must be '0-1' or '0-255'. Received: input_range={input_range!r}")
    if preprocess not in ("none", "tf", "torch", "caffe"):
        raise ValueError(f"preprocess must be none, tf, torch or caffe. Received: preprocess={preprocess!r}")
    if isinstance(class_names, (str, Path)) and not Path(class_names).is_file():
        raise FileNotFoundError(f"No class-names file at {class_names}")
