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
    assert "not a loadable" in _one_line_error(run("zoo", "eval", str(tmp_path / "broken.keras")), 2)
    (tmp_path / "w.npz").write_bytes(b"garbage")
    assert "not a zip file" in _one_line_error(run("zoo", "eval", "lenet_mnist", "--weights", str(tmp_path / "w.npz")), 2)
    _one_line_error(run("zoo", "train", "lenet_mnist", "--epochs", "0"), 2)
    _one_line_error(run("zoo", "train", "lenet_mnist", "--max-steps", "-3"), 2)
    (tmp_path / "a-file").write_text("x")
    message = _one_line_error(run("zoo", "train", "lenet_mnist", "--out", str(tmp_path / "a-file" / "sub")), 2)
    assert "not writable" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "broken.keras", "w.npz"]


def test_debug_shows_the_original_exception(run):
    result = run("--debug", "zoo", "show", "alexnet")
    # The traceback of the original ValueError, and the exit code of a usage error (2) as without --debug.
    assert result.exit_code == 2 and "Traceback" in result.stderr and "ValueError: Unknown preset" in result.stderr


@pytest.mark.slow  # measured over 2.5 s: kept out of the fast loop
def test_zoo_train_tiny_budget(run, tmp_path):
    result = run("zoo", "train", "lenet_mnist", "--max-steps", "10", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "lenet_mnist.weights.npz").is_file() and "sha256" in result.output
    result = run("zoo", "eval", "lenet_mnist", "--weights", str(tmp_path / "lenet_mnist.weights.npz"))
    assert result.exit_code == 0 and "test accuracy" in result.output


def test_debug_keeps_the_exit_code_and_shows_the_traceback():
    result = subprocess.run([sys.executable, "-m", "keras_fool", "--debug", "zoo", "show", "alexnet"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" in result.stderr and "Unknown preset" in result.stderr


def test_errors_name_their_cause_not_a_framing_first_line():
    from keras_fool.cli import _cause

    graph = RuntimeError("Graph execution error:\n\nDetected at node foo\nFile \"x.py\", line 3\n"
                         "OOM when allocating tensor with shape[1000000000,28,28,1]")
    assert _cause(graph).startswith("out of memory: OOM when allocating tensor")
    user = ValueError("in user code:\n\n    File \"model.py\", line 9\n\n"
                      "    ValueError: the model must return one (batch, classes) tensor")
    assert _cause(user) == "ValueError: the model must return one (batch, classes) tensor"
    assert _cause(ValueError("plain message\nsecond line")) == "plain message"
    try:
        try:
            raise KeyError("evaluations")
        except KeyError as e:
            raise RuntimeError() from e
    except RuntimeError as chained:
        assert _cause(chained) == "'evaluations'"


def test_commands_that_write_a_folder_refuse_one_that_holds_results(run, tmp_path):
    (tmp_path / "lenet_mnist.weights.npz").write_bytes(b"keep me")
    message = _one_line_error(run("zoo", "train", "lenet_mnist", "--max-steps", "1", "--out", str(tmp_path)), 2)
    assert "--overwrite" in message and (tmp_path / "lenet_mnist.weights.npz").read_bytes() == b"keep me"
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "summary.json").write_text("{}")
    for experiment in ("transfer", "ensemble", "fooling-class"):
        message = _one_line_error(run("experiment", experiment, "--out", str(tmp_path / "t")), 2)
        assert "already holds a run" in message and "--overwrite" in message
    assert (tmp_path / "t" / "summary.json").read_text() == "{}"


def test_shell_completion_as_the_readme_documents_it():
    import os

    env = {**os.environ, "COMP_WORDS": "keras-fool evolve --enc", "COMP_CWORD": "2",
           "_KERAS_FOOL_COMPLETE": "bash_complete"}
    result = subprocess.run([sys.executable, "-m", "keras_fool"], env=env, capture_output=True, text=True, timeout=60)
    assert "--encoding" in result.stdout


def _option_help(run, command, option):
    """The help text of ``option`` in ``command --help``, its wrapped lines joined."""
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    lines, inside = [], False
    for line in result.output.splitlines():
        stripped = line.strip()
        if stripped.startswith("-"):
            inside = stripped.startswith(option + " ") or stripped == option
        if inside:
            lines.append(stripped)
    assert lines, f"{option} missing from {command} --help"
    return " ".join(lines)


def test_each_command_shows_its_own_population_and_seed_default(run):
    assert "[default: 200;" in _option_help(run, ["experiment", "transfer"], "--population")
    imagenet = _option_help(run, ["experiment", "imagenet"], "--population")
    assert "[default: 16;" in imagenet and "200]" not in imagenet
    assert "[default: the preset's]" in _option_help(run, ["zoo", "train"], "--seed")
    assert "[default: 0;" in _option_help(run, ["experiment", "robustness"], "--seed")


def test_every_command_checks_that_the_class_names_file_exists(run, tmp_path):
    gone = str(tmp_path / "gone.txt")
    for command in (["evolve"], ["ascend"], ["audit", "lenet_mnist"], ["experiment", "imagenet"]):
        message = _one_line_error(run(*command, "--class-names", gone, "--out", str(tmp_path / "o")), 2)
        assert "gone.txt" in message and "does not exist" in message, (command, message)


def test_library_messages_name_parameters_and_the_cli_shows_flags():
    from keras_fool.cli import as_flags

    assert as_flags("pass resume=True to continue it or overwrite=True to start again.") == (
        "pass --resume to continue it or --overwrite to start again.")
    assert as_flags("pass ignore_memory_limit=True; or simulate=N.") == "pass --ignore-memory-limit; or --simulate N."
    assert as_flags("Received: preprocess='x', seed=3") == "Received: preprocess='x', seed=3"
