"""Atomic file writing, checksums and safe loading.

Every file keras-fool writes goes through :func:`atomic_write`: the bytes land in a temporary file
in the destination folder, are flushed to disk, and replace the destination with ``os.replace``.
A crash (even ``kill -9``) leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from keras_fool.errors import CorruptFileError

__all__ = [
    "atomic_write",
    "check_keras_archive",
    "check_npz_file",
    "check_output_dir",
    "ensure_writable_dir",
    "load_npz",
    "montage",
    "npz_shapes",
    "remove_stale_temporaries",
    "save_json",
    "save_npz",
    "save_png",
    "save_text",
    "sha256_file",
]


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically.

    Args:
        path: destination file. Its folder must exist.
        mode: ``"wb"`` or ``"w"``.

    Yields:
        The open temporary file. If the ``with`` block raises, the temporary file is removed and
        ``path`` is left untouched.

    Raises:
        ValueError: the folder does not exist or cannot be written (the message names ``path``).
        IsADirectoryError: ``path`` is a directory.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write supports modes 'wb' and 'w'. Received: mode={mode!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"Cannot write {path}: it is a directory.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # name the user's file, not the temporary one beside it
        raise ValueError(f"Cannot write {path}: {e.strerror or e} (its folder {path.parent}).") from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(path):
    """Delete temporary files that an interrupted :func:`atomic_write` to ``path`` left behind.

    Only call this when no other process is writing ``path``. Returns the number removed.
    """
    path = Path(path)
    removed = 0
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            removed += 1
    return removed


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npz(path, **arrays):
    """Write arrays to an uncompressed ``.npz`` atomically (no pickled objects allowed)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


def _npz_problem(path):
    """Why ``path`` (an existing file) is not an ``.npz`` archive, or None when it is a zip."""
    size = path.stat().st_size
    if size == 0:
        return "an empty file"
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(b"PK"):
        return None
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array, not an .npz archive"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:  # the PROTO opcode of pickle protocols 2-5
        return "a pickle, not an .npz archive (pickles are never loaded: they can run code)"
    return "not an .npz archive (not a zip file)"


def check_npz_file(path, what="an .npz file"):
    """Refuse, without reading it whole, a file given as ``what`` that cannot be an ``.npz`` archive.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an empty file, a pickle, a ``.npy`` or anything else that is not a zip archive
            (the message names the file and which of these it is).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    problem = _npz_problem(path)
    if problem is not None:
        raise ValueError(f"{path} is not {what}: it is {problem}.")
    return path


def load_npz(path, required=()):
    """Load every array of an ``.npz`` without ever unpickling.

    Args:
        path: the file.
        required: keys that must be present.

    Returns:
        A dict of name -> ``np.ndarray``.

    Raises:
        FileNotFoundError: no such file.
        CorruptFileError: not a readable npz, holds pickled objects, or lacks a required key.
    """
    try:
        path = check_npz_file(path, "a readable .npz file")
    except ValueError as e:  # a file of ours that is no npz: a corrupt file, not a bad argument
        raise CorruptFileError(str(e)) from None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise CorruptFileError(f"{path} is not a readable .npz file ({e}).") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CorruptFileError(f"{path} lacks the arrays {missing}; it holds {sorted(arrays)}.")
    return arrays


def _defined(value):
    """``value`` with every NaN or infinite float (an undefined number) replaced by None, recursively."""
    if isinstance(value, dict):
        return {k: _defined(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_defined(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def npz_shapes(path):
    """``{name: shape}`` of the arrays of an ``.npz``, read from their headers alone (no array is loaded).

    Raises:
        FileNotFoundError: no such file.
        CorruptFileError: not a readable npz.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    shapes = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as f:
                    if np.lib.format.read_magic(f) == (1, 0):
                        header = np.lib.format.read_array_header_1_0(f)
                    else:
                        header = np.lib.format.read_array_header_2_0(f)
                    shapes[member[:-len(".npy")]] = tuple(header[0])
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise CorruptFileError(f"{path} is not a readable .npz file ({e}).") from None
    return shapes


def _uses_lambda(config):
    """Whether a Keras config holds a ``Lambda`` layer or a serialised Python lambda (what safe mode refuses)."""
    if isinstance(config, dict):
        return config.get("class_name") in ("Lambda", "__lambda__") or any(_uses_lambda(v) for v in config.values())
    if isinstance(config, list):
        return any(_uses_lambda(v) for v in config)
    return False


def check_keras_archive(path):
    """Refuse, without TensorFlow, a ``.keras`` file that Keras could not load safely, naming the file and why.

    A ``.keras`` file is a zip archive holding ``config.json`` (the architecture) and the weights.
    Keras's own error for a file that is no zip says "File not found"; this says what the file is.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an empty file, not a zip archive, an archive without a readable
            ``config.json``, or a model with a ``Lambda`` layer (Python code, which safe mode
            refuses to run).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}")
    prefix = f"{path} is not a loadable .keras model"
    if path.stat().st_size == 0:
        raise ValueError(f"{prefix}: it is an empty file.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{prefix}: it is not a Keras archive (not a zip file).")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except KeyError:
        raise ValueError(f"{prefix}: the zip archive holds no config.json, so it is not a Keras archive.") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise ValueError(f"{prefix}: its config.json cannot be read ({e}).") from None
    if _uses_lambda(config):
        raise ValueError(f"{prefix}: it uses a Lambda layer (Python code), which cannot be loaded safely "
                         "(safe_mode); rebuild the model without it, as a layer subclass registered with Keras.")
    return path


def save_json(path, obj):
    """Write ``obj`` as indented, strict JSON atomically: an undefined number (NaN, infinity) is written null."""
    with atomic_write(path, "w") as f:
        json.dump(_defined(obj), f, indent=2, sort_keys=False, allow_nan=False)
        f.write("\n")


def save_text(path, text):
    """Write a text file atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)


def sha256_file(path, chunk_size=1 << 20):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_writable_dir(path):
    """Create ``path`` (and parents) if needed and check that files can be written in it.

    Raises:
        ValueError: the path is a file, or the folder cannot be created or written to.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"Output path {path} exists and is not a directory.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        reason = e.strerror or str(e)
        raise ValueError(f"Output directory {path} is not writable ({reason}).") from None
    return path


def check_output_dir(out, marker, resume=False, overwrite=False, resumable=True):
    """Refuse to write a run into ``out`` when it already holds one (``out/marker`` exists), unless told to.

    Args:
        out: the output folder.
        marker: a file whose presence means the folder holds results (e.g. ``checkpoint.npz``).
        resume: the caller will continue that run.
        overwrite: the caller will replace it.
        resumable: the command offers ``--resume``; if not, the refusal names only ``overwrite=True``.

    Raises:
        ValueError: ``out`` is a file, ``resume`` and ``overwrite`` are both set, or ``out`` holds
            results and neither is set.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"Output path {out} exists and is not a directory.")
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True exclude each other.")
    if not resume and not overwrite and (out / marker).exists():
        if not resumable:
            raise ValueError(f"{out} already holds a run; pass overwrite=True to replace it.")
        raise ValueError(f"{out} already holds a run; pass resume=True to continue it or overwrite=True to start again.")
    return out


def montage(images, captions=None, columns=None, scale=3, caption_height=None, background=255, title=None,
            row_labels=None, font_size=None):
    """Arrange images (N, H, W, C) in [0, 1] in a labelled grid, like Figures 1 and 4 of Nguyen et al.

    Captions are drawn with a scalable font (legible at 100%: 13 px at ``scale`` 3, growing with
    it), each cell is as wide as the wider of its image and the longest caption, and the grid
    wraps after ``columns`` images.

    Args:
        images: array (N, H, W, C) with C in (1, 3), values in [0, 1].
        captions: N strings printed under the images (or None).
        columns: images per row; about sqrt(N) by default.
        scale: integer nearest-neighbour upscaling of each image.
        caption_height: pixels reserved under each image for its caption (from the font by default).
        background: grey level of the margins.
        title: a line of text above the grid (e.g. model, encoding, generation), or None.
        row_labels: one label per grid row, drawn left of the row (e.g. ``"run 1"``), or None.
        font_size: the captions' size in pixels; ``max(12, 4 * scale + 1)`` by default.

    Returns:
        An RGB ``PIL.Image.Image``.
    """
    from PIL import Image, ImageDraw, ImageFont

    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
        raise ValueError(f"images must have shape (N, H, W, 1 or 3) with N >= 1. Received: {images.shape}")
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"{len(captions)} captions for {len(images)} images.")
    n, h, w, _ = images.shape
    columns = max(1, min(columns or int(np.ceil(np.sqrt(n))), n))
    rows = int(np.ceil(n / columns))
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"{len(row_labels)} row labels for {rows} rows.")
    size = font_size or max(12, 4 * scale + 1)
    font = ImageFont.load_default(size=size)
    title_font = ImageFont.load_default(size=int(size * 1.3))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_width(text, which=font):
        box = probe.textbbox((0, 0), str(text), font=which)
        return box[2] - box[0]

    pad = max(4, size // 3)
    caption_height = caption_height if caption_height is not None else (size + pad if captions is not None else 0)
    widest_caption = max((text_width(c) for c in captions), default=0) if captions is not None else 0
    cell_w = max(w * scale, widest_caption) + 2 * pad
    cell_h = h * scale + 2 * pad + caption_height
    left = max((text_width(r) for r in row_labels), default=0) + 2 * pad if row_labels is not None else 0
    top = int(size * 1.3) + 2 * pad if title else 0
    width = max(left + columns * cell_w, text_width(title, title_font) + 2 * pad if title else 0)
    sheet = Image.new("RGB", (width, top + rows * cell_h), (background,) * 3)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, pad), str(title), fill=(0, 0, 0), font=title_font)
    pixels = (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    for i in range(n):
        r, c = divmod(i, columns)
        tile = Image.fromarray(pixels[i]).resize((w * scale, h * scale), Image.NEAREST)
        x0 = left + c * cell_w + (cell_w - w * scale) // 2
        y0 = top + r * cell_h + pad
        sheet.paste(tile, (x0, y0))
        if captions is not None:
            caption = str(captions[i])
            draw.text((left + c * cell_w + (cell_w - text_width(caption)) // 2, y0 + h * scale + pad // 2),
                      caption, fill=(0, 0, 0), font=font)
    for r, label in enumerate(row_labels or ()):
        draw.text((pad, top + r * cell_h + pad + (h * scale - size) // 2), str(label), fill=(0, 0, 0), font=font)
    return sheet


def save_png(path, image):
    """Save a PIL image as PNG atomically."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    with atomic_write(path) as f:
        f.write(buffer.getvalue())
