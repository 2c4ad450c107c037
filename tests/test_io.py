import os

import numpy as np
import pytest

from keras_fool import io
from keras_fool.errors import CorruptFileError


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "result.json"
    io.save_json(target, {"version": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_write(target, "w") as f:
            f.write('{"version": 2, "half')
            raise RuntimeError("crash in the middle")
    assert target.read_text().strip().startswith('{\n  "version": 1')
    assert os.listdir(tmp_path) == ["result.json"], "temporary file left behind"


def test_npz_round_trip_never_unpickles(tmp_path):
    io.save_npz(tmp_path / "a.npz", x=np.arange(6).reshape(2, 3), name=np.array("lenet"))
    arrays = io.load_npz(tmp_path / "a.npz", required=["x"])
    assert arrays["x"].tolist() == [[0, 1, 2], [3, 4, 5]] and str(arrays["name"]) == "lenet"
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "obj.npz", o=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CorruptFileError):
        io.load_npz(tmp_path / "obj.npz")
    with pytest.raises(CorruptFileError, match="lacks"):
        io.load_npz(tmp_path / "a.npz", required=["genomes"])


def test_ensure_writable_dir_refuses_a_file_path(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        io.ensure_writable_dir(tmp_path / "file")
    with pytest.raises(ValueError, match="not writable"):
        io.ensure_writable_dir(tmp_path / "file" / "below")
    assert io.ensure_writable_dir(tmp_path / "new" / "deep").is_dir()


def test_montage_has_a_title_row_labels_wraps_and_fits_its_captions():
    images = np.random.default_rng(0).random((7, 28, 28, 1)).astype(np.float32)
    captions = [f"class {i}: 99.9999%" for i in range(7)]
    sheet = io.montage(images, captions, columns=3, scale=3, title="lenet_mnist, direct encoding, generation 200",
                       row_labels=["run 1", "run 2", "run 3"])
    plain = io.montage(images, None, columns=3, scale=3)
    assert sheet.width > plain.width and sheet.height > plain.height  # title, labels and captions take room
    pixels = np.asarray(sheet.convert("L"))
    assert (pixels[:20] < 128).any()  # the title is drawn at the top
    with pytest.raises(ValueError, match="2 row labels for 3 rows"):
        io.montage(images, captions, columns=3, row_labels=["a", "b"])
    bigger = io.montage(images[:1], captions[:1], scale=8)
    smaller = io.montage(images[:1], captions[:1], scale=2)
    assert bigger.width > smaller.width and bigger.height > smaller.height
