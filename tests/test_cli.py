import subprocess
import sys

import pytest
from click.testing import CliRunner

from keras_fool.cli import main


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args))

    return invoke


def test_help_and_version(run):
    result = run("--help")
    assert result.exit_code == 0 and "zoo" in result.output
    result = run("--version")
    assert result.exit_code == 0 and "keras-fool, version" in result.output
    for sub in (["zoo", "--help"], ["zoo", "train", "--help"], ["zoo", "eval", "--help"]):
        assert run(*sub).exit_code == 0


def test_help_and_zoo_list_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from keras_fool.cli import main\n"
        "for args in (['--help'], ['zoo', '--help'], ['zoo', 'list'], ['zoo', 'show', 'lenet_mnist']):\n"
        "    main(args, standalone_mode=False)\n"
        "print('TF', 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("TF False")


def test_zoo_list_and_show(run):
    result = run("zoo", "list")
    assert result.exit_code == 0
    assert "lenet_mnist " in result.output and "shipped" in result.output
    result = run("zoo", "show", "lenet_mnist")
    assert result.exit_code == 0 and '"weights_sha256": "' in result.output


def test_zoo_eval_prints_accuracy(run):
    result = run("zoo", "eval", "lenet_mnist")
    assert result.exit_code == 0, result.output
    accuracy = float(result.output.split("test accuracy ")[1].split("%")[0])
    assert accuracy >= 99.0


def _one_line_error(result, code):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_bad_inputs_give_one_line_and_the_right_exit_code(run, tmp_path):
    assert "Unknown preset 'alexnet'" in _one_line_error(run("zoo", "show", "alexnet"), 2)
    assert "Unknown preset" in _one_line_error(run("zoo", "train", "alexnet"), 2)
    assert "No model file" in _one_line_error(run("zoo", "eval", str(tmp_path / "gone.keras")), 2)
    (tmp_path / "broken.keras").write_bytes(b"\x00" * 100)
    assert "not a loadable" in _one_line_error(run("zoo", "eval", str(tmp_path / "broken.keras")), 1)
    (tmp_path / "w.npz").write_bytes(b"garbage")
    _one_line_error(run("zoo", "eval", "lenet_mnist", "--weights", str(tmp_path / "w.npz")), 1)
    _one_line_error(run("zoo", "train", "lenet_mnist", "--epochs", "0"), 2)
    _one_line_error(run("zoo", "train", "lenet_mnist", "--max-steps", "-3"), 2)
    (tmp_path / "a-file").write_text("x")
    message = _one_line_error(run("zoo", "train", "lenet_mnist", "--out", str(tmp_path / "a-file" / "sub")), 2)
    assert "not writable" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "broken.keras", "w.npz"]


def test_debug_shows_the_original_exception(run):
    result = run("--debug", "zoo", "show", "alexnet")
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)


def test_zoo_train_tiny_budget(run, tmp_path):
    result = run("zoo", "train", "lenet_mnist", "--max-steps", "10", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "lenet_mnist.weights.npz").is_file() and "sha256" in result.output
    result = run("zoo", "eval", "lenet_mnist", "--weights", str(tmp_path / "lenet_mnist.weights.npz"))
    assert result.exit_code == 0 and "test accuracy" in result.output
