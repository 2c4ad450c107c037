"""The experiments under a strategy: every evolution run data-parallel, the same results as on one device.

Two logical CPU devices must be configured before TensorFlow starts its devices, so the mirrored
runs happen in fresh processes: the ensemble, fooling-class and ImageNet experiments run in one
twice, on the default strategy and under ``MirroredStrategy`` over the two devices, on a tiny
budget and with the same seed, and ``keras-fool experiment transfer`` runs with and without
``--strategy mirrored --cpu-replicas 2`` (the two processes run side by side).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from keras_fool.cli.fooling import transfer

TRANSFER = ["experiment", "transfer", "--runs", "1", "--generations", "2", "--population", "10", "--images",
            "first-and-last", "--test-images", "50", "--seed", "7"]

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from click.testing import CliRunner

    from keras_fool.cli import main
    from keras_fool.evolution.map_elites import MapElites
    from keras_fool.experiments.ensemble import run_ensemble_experiment
    from keras_fool.experiments.fooling_class import run_fooling_class_experiment
    from keras_fool.experiments.imagenet import run_imagenet_experiment
    from keras_fool.zoo.imagenet_classes import IMAGENET_CLASSES

    sys.path.insert(0, sys.argv[3])  # this folder, for the tests' shared stand-in network
    from conftest import toy_imagenet_model

    root = Path(sys.argv[1])
    replicas = []  # of every evolver made, whatever made it
    made = MapElites.__init__


    def counting(self, *args, **kwargs):
        made(self, *args, **kwargs)
        replicas.append(1 if self.strategy is None else self.strategy.num_replicas_in_sync)


    MapElites.__init__ = counting
    # The command without a strategy (the test runs it with --strategy mirrored in a process of its own).
    result = CliRunner().invoke(main, [*json.loads(sys.argv[2]), "--out", str(root / "cli_default")])
    assert result.exit_code == 0, result.output
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2


    tiny = {"generations": 2, "population": 10, "test_images": 50, "seed": 5}
    evolvers = {}
    for mode, strategy in (("default", None), ("mirrored", mirrored)):
        replicas.clear()
        run_ensemble_experiment(root / mode / "ensemble", runs=1, members=False, strategy=strategy, **tiny)
        run_fooling_class_experiment(root / mode / "fooling_class", iterations=2, images_per_iteration=2,
                                     train_steps=2, min_runs=1, train_images=64, strategy=strategy, **tiny)
        run_imagenet_experiment(root / mode / "imagenet", model=toy_imagenet_model(16, name="toy_imagenet_16"),
                                class_names=IMAGENET_CLASSES,
                                classes="king penguin,starfish,Windsor tie", generations=2, population=4,
                                methods=("direct", "gradient"), stop_at=None, seed=5, strategy=strategy,
                                second_model=toy_imagenet_model(20, seed=5, name="toy_imagenet_20"))
        evolvers[mode] = list(replicas)
    (root / "evolvers.json").write_text(json.dumps(evolvers))

    # A worker that is not the chief of its cluster computes the same report and writes nothing.
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                                          "task": {"type": "worker", "index": 1}})
    report = run_ensemble_experiment(root / "worker_1" / "ensemble", runs=1, members=False, **tiny)
    (root / "worker_1.json").write_text(json.dumps({"summary": report.summary, "files": report.files,
                                                    "wrote": (root / "worker_1").exists()}))
    print("OK")
    """
)
NOT_COMPARED = {"replicas", "evolve_seconds", "train_seconds", "data_seconds", "seconds", "evolution_seconds",
                "trace_seconds", "evaluations_per_second", "image_steps_per_second", "raw_images_per_second",
                "speed_vs_raw_pct", "files"}  # the replica count, timings, and the paths written (other folders)


def _same_summary(a, b, where="summary"):
    """The same summary, timings aside: equal keys, strings and integers; floats within float32 tolerance."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (where, sorted(a), sorted(b))
        for key in a:
            if key not in NOT_COMPARED:
                _same_summary(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            _same_summary(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, (str, type(None))):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=where)
    else:
        assert a == b, (where, a, b)


def _summary(folder):
    return json.loads((folder / "summary.json").read_text())


def _same_arrays(a, b, confidences=("confidences",)):
    """Equal arrays in two .npz files: images and labels exactly, confidences within float tolerance."""
    a, b = np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        if key in confidences:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-7, err_msg=key)
        else:
            np.testing.assert_array_equal(b[key], a[key], err_msg=key)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The script above, and beside it ``keras-fool experiment transfer --strategy mirrored --cpu-replicas 2``."""
    root = tmp_path_factory.mktemp("strategies")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    command = [sys.executable, "-m", "keras_fool", *TRANSFER, "--strategy", "mirrored", "--cpu-replicas", "2",
               "--out", str(root / "cli_mirrored")]
    script = [sys.executable, "-c", SCRIPT, str(root), json.dumps(TRANSFER), os.path.dirname(__file__)]
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for argv in (script, command)]
    try:
        (script_out, script_err), (cli_out, cli_err) = (p.communicate(timeout=400) for p in processes)
    finally:
        for process in processes:
            process.kill()
    assert processes[0].returncode == 0 and "OK" in script_out, script_err[-3000:]
    assert processes[1].returncode == 0, cli_err[-3000:]
    (root / "cli_mirrored.out").write_text(cli_out)
    return root


@pytest.mark.slow
def test_every_evolution_run_of_the_experiments_spreads_its_population_over_the_replicas(runs):
    evolvers = json.loads((runs / "evolvers.json").read_text())
    # ensemble 1 run, fooling class 1 run in each of 2 iterations, imagenet 3 (direct, and the CPPNs against the
    # second network and against the ensemble of the two); gradient ascent has none.
    assert evolvers == {"default": [1] * 6, "mirrored": [2] * 6}
    for experiment in ("ensemble", "fooling_class", "imagenet"):
        assert _summary(runs / "default" / experiment)["replicas"] == 1
        assert _summary(runs / "mirrored" / experiment)["replicas"] == 2
    assert _summary(runs / "mirrored" / "imagenet" / "direct")["replicas"] == 2


@pytest.mark.slow
def test_transfer_command_takes_the_strategy_options_and_gives_the_same_results(runs):
    assert "wrote: " in (runs / "cli_mirrored.out").read_text()
    default, mirrored = runs / "cli_default", runs / "cli_mirrored"
    assert _summary(default)["replicas"] == 1 and _summary(mirrored)["replicas"] == 2
    _same_arrays(default / "transfer_images.npz", mirrored / "transfer_images.npz")
    assert np.load(default / "transfer_images.npz")["images_a"].shape == (20, 28, 28, 1)  # first and last: 2 x 10
    _same_summary(_summary(default), _summary(mirrored))


@pytest.mark.slow
def test_ensemble_under_a_mirrored_strategy_equals_the_one_device_experiment(runs):
    default, mirrored = runs / "default" / "ensemble", runs / "mirrored" / "ensemble"
    _same_arrays(default / "ensemble_images.npz", mirrored / "ensemble_images.npz")
    saved = np.load(mirrored / "ensemble_images.npz")
    # one run keeps its last elites: one image for each of the ten digits
    assert len(saved["images"]) == 10 and sorted(saved["labels"].tolist()) == list(range(10))
    _same_summary(_summary(default), _summary(mirrored))


@pytest.mark.slow
def test_fooling_class_iterations_under_a_mirrored_strategy_equal_the_one_device_experiment(runs):
    default, mirrored = runs / "default" / "fooling_class", runs / "mirrored" / "fooling_class"
    # The images sampled into the fooling class after DNN_1, and DNN_2 trained on them (on one device in both).
    _same_arrays(default / "fooling_images.npz", mirrored / "fooling_images.npz")
    assert np.load(default / "fooling_images.npz")["train"].shape == (12, 28, 28, 1)
    for name in ("dnn_1.weights.npz", "dnn_2.weights.npz"):
        _same_arrays(default / "models" / name, mirrored / "models" / name)
    _same_summary(_summary(default), _summary(mirrored))
    assert [row["iteration"] for row in _summary(mirrored)["rows"]] == [1, 2]


@pytest.mark.slow
def test_imagenet_experiment_under_a_mirrored_strategy_equals_the_one_device_experiment(runs):
    default, mirrored = runs / "default" / "imagenet", runs / "mirrored" / "imagenet"
    for method in ("direct", "gradient", "second_cppn", "ensemble_cppn"):
        _same_arrays(default / method / "archive.npz", mirrored / method / "archive.npz")
        _same_summary(_summary(default / method), _summary(mirrored / method), method)
    _same_summary(_summary(default), _summary(mirrored))
    assert _summary(mirrored)["rows"][0]["evaluations"] == 4 * 3
    assert _summary(mirrored)["ensemble"]["members"] == ["toy_imagenet_16", "toy_imagenet_20_at_16x16"]
    assert [row["shown"] for row in _summary(mirrored)["transfer"]["rows"]] == [
        "cppn_b_to_a", "direct_a_to_b", "gradient_a_to_b"]


@pytest.mark.slow
def test_a_worker_that_is_not_the_chief_writes_nothing_and_reports_the_same_numbers(runs):
    worker = json.loads((runs / "worker_1.json").read_text())
    assert worker["files"] == [] and not worker["wrote"]
    _same_summary(_summary(runs / "default" / "ensemble"), worker["summary"])


def test_cpu_replicas_without_a_strategy_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(transfer, ["--cpu-replicas", "2", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "needs --strategy" in result.output
    assert not (tmp_path / "x").exists()
