"""CPPN node capacity that grows while MAP-Elites runs (issue 23, item 1b: growth on demand)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_fool.encodings import CPPNEncoding, DirectEncoding
from keras_fool.encodings.cppn import check_genomes


def _evolved(encoding, n=6, steps=25, seed=0):
    genomes = encoding.random(n, tf.constant([seed, 0]))
    for i in range(steps):
        genomes = encoding.mutate(genomes, tf.constant([seed, i + 1]))
    return genomes


@pytest.mark.parametrize("shape", [(28, 28, 1), (16, 16, 3)])
def test_padded_networks_render_the_same_images(shape):
    small = CPPNEncoding(shape, capacity=12, color_space="hsv")
    genomes = _evolved(small, n=8, steps=30)
    assert small.full(genomes).any()  # some networks use every slot: padding must keep them whole
    big = small.with_capacity(20)
    padded = big.padded(genomes)
    check_genomes(big, {k: v.numpy() for k, v in padded.items()})
    assert padded["connected"].shape == (8, 20, 20) and not padded["alive"].numpy()[:, 12:].any()
    assert not padded["connected"].numpy()[:, 12:, :].any() and not padded["connected"].numpy()[:, :, 12:].any()
    np.testing.assert_array_equal(small.decode(genomes).numpy(), big.decode(padded).numpy())
    assert not big.full(padded).any()


def test_a_grown_encoding_keeps_every_other_setting_and_refuses_to_shrink():
    enc = CPPNEncoding(capacity=10, coordinates="pixel", add_node_rate=0.9, eta=7.0)
    grown = enc.with_capacity(18)
    assert grown.get_config() == {**enc.get_config(), "capacity": 18}
    with pytest.raises(ValueError, match="fewer slots"):
        grown.padded(enc.random(2, tf.constant([0, 0])) | {"alive": tf.ones((2, 30), tf.bool)})
    with pytest.raises(ValueError, match="at least 10"):
        enc.with_capacity(8)


def test_full_marks_networks_that_use_every_hidden_slot():
    enc = CPPNEncoding(capacity=7, add_node_rate=1.0, delete_node_rate=0.0)
    assert not enc.full(enc.random(3, tf.constant([1, 0]))).any()
    assert enc.full(_evolved(enc, n=5, steps=20)).all()


def test_grow_capacity_is_checked():
    from keras_fool.evolution import MapElites
    from keras_fool.target import Target

    target = Target("lenet_mnist")
    with pytest.raises(ValueError, match="node capacity.*direct"):
        MapElites(target, DirectEncoding((28, 28, 1)), population=4, grow_capacity=(8, 64))
    for bad in [(0, 64), (8, 12), (8,), "grow", (8.5, 64)]:
        with pytest.raises(ValueError, match="grow_capacity"):
            MapElites(target, CPPNEncoding(capacity=16), population=4, grow_capacity=bad)


class _Capacities:
    """A callback that keeps each generation's logged capacity."""

    sync_every = None

    def __init__(self):
        self.seen = {}

    def set_evolver(self, evolver):
        pass

    def on_run_begin(self, logs):
        pass

    def on_run_end(self, logs):
        pass

    def on_generation_end(self, generation, logs):
        self.seen[generation] = logs["capacity"]


def _grower(target, **kwargs):
    from keras_fool.evolution import MapElites

    return MapElites(target, CPPNEncoding(capacity=6), population=16, seed=3, classes=[0, 5, 8], steps_per_call=2,
                     grow_capacity=(2, 10), **kwargs)


@pytest.mark.slow  # three tiny MNIST runs, retraced at every growth
def test_capacity_grows_at_call_boundaries_and_a_resumed_run_continues_identically(tmp_path):
    from keras_fool.evolution import Checkpoint
    from keras_fool.target import Target

    target = Target("lenet_mnist")
    straight, seen = _grower(target), _Capacities()
    straight.run(12, [seen])
    seen = seen.seen
    assert straight.encoding.capacity > 6 and straight.archive.genomes["alive"].shape == (3, straight.encoding.capacity)
    # Growth happens only between generations that are multiples of steps_per_call, and never past the maximum.
    changes = [g for g in range(1, 13) if seen[g] != seen[g - 1]]
    assert changes and all((g - 1) % 2 == 0 for g in changes) and max(seen.values()) <= 10
    assert straight.get_config()["encoding"]["capacity"] == seen[12]
    assert straight.get_config()["grow_capacity"] == [2, 10, 2]  # step, maximum, generations between checks

    # A checkpoint at a generation that is no multiple of steps_per_call, written after growth.
    first = _grower(target)
    first.run(7, [Checkpoint(tmp_path / "ck.npz", every=3)])
    assert first.encoding.capacity > 6
    resumed = _grower(target)  # built at the start capacity: the checkpoint's grown one is adopted
    resumed.load_checkpoint(tmp_path / "ck.npz")
    assert resumed.encoding.capacity == first.encoding.capacity
    resumed.run(12)
    assert resumed.encoding.capacity == straight.encoding.capacity
    for key in straight.archive.genomes:
        np.testing.assert_array_equal(straight.archive.genomes[key].numpy(), resumed.archive.genomes[key].numpy())
    np.testing.assert_array_equal(straight.archive.fitness.numpy(), resumed.archive.fitness.numpy())
    assert straight.history == resumed.history

    # An evolver that does not grow refuses a growing run's checkpoint, naming the difference.
    from keras_fool.errors import ResumeError

    with pytest.raises(ResumeError, match="grow_capacity"):
        _plain(target).load_checkpoint(tmp_path / "ck.npz")


def _plain(target):
    from keras_fool.evolution import MapElites

    return MapElites(target, CPPNEncoding(capacity=6), population=16, seed=3, classes=[0, 5, 8], steps_per_call=2)


@pytest.mark.slow  # two tiny MNIST runs through run_evolution and the CLI
def test_evolve_capacity_grow_records_the_final_capacity_and_resumes(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from keras_fool.cli import main
    from keras_fool.evolution import runs

    growth = runs.CAPACITY_GROWTH
    help_text = " ".join(CliRunner().invoke(main, ["evolve", "--help"]).output.split())
    assert (f"start at {growth['start']} and add {growth['step']} whenever half the elites use every slot, up to "
            f"{growth['maximum']}") in help_text
    monkeypatch.setattr(runs, "CAPACITY_GROWTH", {"start": 6, "step": 2, "maximum": 10})
    options = dict(encoding="cppn", capacity="grow", population=12, classes="0,5", seed=1, progress=False)
    straight = runs.run_evolution(tmp_path / "a", generations=20, logdir=tmp_path / "tb", **options)
    config = straight["config"]
    assert config["grow_capacity"] == [2, 10, 10] and config["encoding"]["capacity"] > 6
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb" / "a"), size_guidance={"tensors": 0}).Reload()
    logged = [int(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("cppn/capacity")]
    assert len(logged) == 21 and logged[0] == 6 and logged[-1] == config["encoding"]["capacity"]
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["config"] == config
    result = CliRunner().invoke(main, ["evolve", "--encoding", "cppn", "--capacity", "grow", "--generations", "12",
                                       "--population", "12", "--classes", "0,5", "--seed", "1", "--quiet",
                                       "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    half = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert half["config"]["encoding"]["capacity"] > 6  # its checkpoint was written after a growth
    lines = []
    resumed = runs.run_evolution(tmp_path / "b", generations=20, resume=True, log=lines.append)
    assert resumed["config"] == config and any("resuming" in line for line in lines)
    a, b = np.load(tmp_path / "a" / "archive.npz"), np.load(tmp_path / "b" / "archive.npz")
    np.testing.assert_array_equal(a["images"], b["images"])
    with pytest.raises(ValueError, match="capacity grow"):
        runs.run_evolution(tmp_path / "b", generations=22, resume=True, capacity=16)

    result = CliRunner().invoke(main, ["evolve", "--encoding", "cppn", "--capacity", "lots", "--out",
                                       str(tmp_path / "c")])
    assert result.exit_code == 2 and "'lots' is neither a number of node slots nor 'grow'" in result.stderr
    assert not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match="capacity must be"):
        runs.run_evolution(tmp_path / "d", encoding="cppn", capacity="lots")
    with pytest.raises(ValueError, match="this run uses NES"):
        runs.run_evolution(tmp_path / "f", encoding="cppn", capacity="grow", search="nes")
    with pytest.raises(ValueError, match="CPPN encoding only"):
        runs.run_evolution(tmp_path / "e", capacity="grow")
    assert not any((tmp_path / name).exists() for name in "def")
