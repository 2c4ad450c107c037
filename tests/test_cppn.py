import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_fool.encodings import CPPNEncoding, encoding_from_config
from keras_fool.encodings.cppn import NUM_INPUTS, WEIGHT_RANGE, check_genomes


def _numpy(genomes):
    return {k: v.numpy() for k, v in genomes.items()}


def _evolved(encoding, n=6, steps=25, seed=0):
    genomes = encoding.random(n, tf.constant([seed, 0]))
    for i in range(steps):
        genomes = encoding.mutate(genomes, tf.constant([seed, i + 1]))
    return genomes


def _reference_render(encoding, genome, height, width):
    """Evaluate one CPPN node by node in position order, in NumPy (no batching tricks)."""
    inputs = encoding.coordinate_inputs(height, width)
    funcs = [np.sin, lambda p: 2.0 / (1.0 + np.exp(-p)) - 1.0, lambda p: np.exp(-p * p), lambda p: np.clip(p, -3, 3) / 3]
    values = {j: inputs[j].astype(np.float64) for j in range(NUM_INPUTS)}
    outputs = list(range(NUM_INPUTS, NUM_INPUTS + encoding.channels))
    hidden = [j for j in range(encoding.capacity) if genome["alive"][j] and j >= NUM_INPUTS + encoding.channels]
    for node in sorted(hidden, key=lambda j: genome["position"][j]) + outputs:
        total = np.zeros(inputs.shape[1])
        for src in np.flatnonzero(genome["connected"][node]):
            weight = genome["weight"][node, src] * 2 * WEIGHT_RANGE - WEIGHT_RANGE
            total += weight * values[src]
        values[node] = funcs[genome["activation"][node]](total)
    return np.stack([np.abs(values[o]) for o in outputs], axis=-1).reshape(height, width, -1)


def test_batched_render_equals_a_node_by_node_reference():
    enc = CPPNEncoding(capacity=20)
    genomes = _numpy(_evolved(enc, n=8, steps=30))
    hidden = genomes["alive"][:, NUM_INPUTS + 1 :].sum(axis=1)
    assert len(set(hidden.tolist())) > 1, "the batch should mix topologies"
    images = enc.decode({k: tf.constant(v) for k, v in genomes.items()}).numpy()
    for i in range(len(images)):
        one = {k: v[i] for k, v in genomes.items()}
        np.testing.assert_allclose(images[i], np.clip(_reference_render(enc, one, 28, 28), 0, 1), atol=2e-4)


def test_start_topology_connects_inputs_to_outputs_only():
    enc = CPPNEncoding((16, 16, 3), capacity=12)
    g = _numpy(enc.random(3, tf.constant([0, 1])))
    assert g["connected"].sum(axis=(1, 2)).tolist() == [4 * 3] * 3
    assert g["alive"].sum(axis=1).tolist() == [NUM_INPUTS + 3] * 3
    check_genomes(enc, g)


@pytest.mark.slow  # hypothesis: many mutation sequences
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    steps=st.integers(1, 12),
    capacity=st.integers(5, 14),
    colour=st.booleans(),
    add_node=st.floats(0.0, 1.0),
    delete_node=st.floats(0.0, 1.0),
)
def test_random_mutation_sequences_keep_every_invariant(seed, steps, capacity, colour, add_node, delete_node):
    shape = (9, 7, 3) if colour else (9, 7, 1)
    if capacity < NUM_INPUTS + shape[-1]:
        capacity = NUM_INPUTS + shape[-1]
    enc = CPPNEncoding(shape, capacity=capacity, add_node_rate=add_node, delete_node_rate=delete_node)
    genomes = enc.random(4, tf.constant([seed, 0]))
    for i in range(steps):
        genomes = enc.mutate(genomes, tf.constant([seed, i + 1]))
        check_genomes(enc, _numpy(genomes))
    images = enc.decode(genomes).numpy()
    assert images.shape == (4, *shape)
    assert np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0


def test_capacity_is_respected_and_mutations_that_need_room_are_skipped():
    enc = CPPNEncoding(capacity=7, add_node_rate=1.0, delete_node_rate=0.0)
    g = _numpy(_evolved(enc, n=5, steps=20))
    assert g["alive"].sum(axis=1).max() == 7  # inputs, one output, two hidden: full
    check_genomes(enc, g)


@pytest.mark.slow  # renders large images
def test_renders_at_any_resolution_and_bigger_is_smoother():
    enc = CPPNEncoding(capacity=16)
    genomes = _evolved(enc, n=6, steps=20, seed=4)
    small = enc.render(genomes, 28, 28).numpy()
    np.testing.assert_array_equal(small, enc.decode(genomes).numpy())
    big = enc.render(genomes, 224, 224).numpy()
    assert big.shape == (6, 224, 224, 1)
    # A function of coordinates: neighbouring pixels get closer as the grid gets finer.
    step = lambda im: np.abs(np.diff(im, axis=2)).mean()  # noqa: E731
    assert step(big) < step(small) / 3
    # Corners are the same points of the plane at both resolutions.
    np.testing.assert_allclose(big[:, 0, 0], small[:, 0, 0], atol=1e-5)
    np.testing.assert_allclose(big[:, -1, -1], small[:, -1, -1], atol=1e-5)
    # The renderer's scratch buffer follows the image size back down (and row count up).
    np.testing.assert_array_equal(enc.decode(genomes).numpy(), small)
    more = _evolved(enc, n=9, steps=30, seed=5)
    np.testing.assert_array_equal(enc.decode(more).numpy()[:3], enc.render(more, 28, 28, batch_size=3).numpy()[:3])


def test_pixel_coordinates_option_and_config_round_trip():
    enc = CPPNEncoding(capacity=10, coordinates="pixel")
    inputs = enc.coordinate_inputs(28, 28)
    assert inputs[0].max() == pytest.approx(27.0) and inputs[1].max() == pytest.approx(27.0)
    again = encoding_from_config(enc.get_config())
    assert isinstance(again, CPPNEncoding) and again.get_config() == enc.get_config()


def test_colour_images_in_hsv_and_hls():
    for space in ("hsv", "hls"):
        enc = CPPNEncoding((12, 12, 3), capacity=12, color_space=space)
        images = enc.decode(_evolved(enc, n=3, steps=5)).numpy()
        assert images.shape == (3, 12, 12, 3) and 0.0 <= images.min() and images.max() <= 1.0


def test_an_empty_batch_renders_to_no_images_and_the_next_batch_still_renders():
    for shape in ((28, 28, 1), (12, 12, 3)):
        enc = CPPNEncoding(shape, capacity=12)
        assert enc.decode(enc.random(0, tf.constant([0, 0]))).shape == (0, *shape)
        genomes = _evolved(enc, n=4, steps=10)
        np.testing.assert_array_equal(enc.decode(genomes).numpy(), CPPNEncoding(shape, capacity=12).decode(genomes).numpy())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="at least 5"):
        CPPNEncoding((28, 28, 1), capacity=4)
    with pytest.raises(ValueError, match="at least 7"):
        CPPNEncoding((28, 28, 3), capacity=6)
    with pytest.raises(ValueError, match="colour target"):
        CPPNEncoding((28, 28, 1), color_space="hls")
    with pytest.raises(ValueError, match="add_node_rate"):
        CPPNEncoding(add_node_rate=1.5)


def test_foreign_genomes_are_refused():
    enc = CPPNEncoding(capacity=10)
    g = _numpy(_evolved(enc, n=2, steps=10))
    cyclic = {k: v.copy() for k, v in g.items()}
    cyclic["connected"][0, NUM_INPUTS, NUM_INPUTS] = True  # output feeding itself
    with pytest.raises(ValueError):
        check_genomes(enc, cyclic)
    with pytest.raises(ValueError, match="shape"):
        check_genomes(CPPNEncoding(capacity=12), g)
    bad = dict(g, weight=g["weight"] * 3.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_genomes(enc, bad)


@pytest.mark.slow  # evolves, resumes and renders
def test_cppn_evolution_fools_lenet_resumes_exactly_and_renders_from_the_cli(tmp_path):
    from click.testing import CliRunner

    from keras_fool.cli import main
    from keras_fool.evolution import Checkpoint, MapElites
    from keras_fool.target import Target

    target = Target("lenet_mnist")
    straight = MapElites(target, CPPNEncoding(capacity=16), population=24, seed=2, classes=[0, 5])
    straight.run(8)
    first = MapElites(target, CPPNEncoding(capacity=16), population=24, seed=2, classes=[0, 5])
    first.run(4, [Checkpoint(tmp_path / "ck.npz", every=2)])
    resumed = MapElites(target, CPPNEncoding(capacity=16), population=24, seed=2, classes=[0, 5])
    resumed.load_checkpoint(tmp_path / "ck.npz")
    resumed.run(8)
    for key in straight.archive.genomes:
        np.testing.assert_array_equal(straight.archive.genomes[key].numpy(), resumed.archive.genomes[key].numpy())
    np.testing.assert_array_equal(straight.archive.fitness.numpy(), resumed.archive.fitness.numpy())
    assert straight.history["median"][-1] > 0.9  # CPPN patterns fool LeNet within a few generations

    run = CliRunner().invoke
    out = tmp_path / "run"
    result = run(main, ["evolve", "--encoding", "cppn", "--capacity", "12", "--generations", "3", "--population", "16",
                        "--classes", "1,2,3", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    archive = np.load(out / "archive.npz", allow_pickle=False)
    assert archive["genomes/connected"].shape == (3, 12, 12) and archive["images"].shape == (3, 28, 28, 1)
    result = run(main, ["render", str(out / "archive.npz"), "--scale", "4"])
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(out / "montage_x4.png") as picture:
        assert picture.size[0] >= 3 * 112
    # A foreign or damaged archive: one line, non-zero exit, nothing written.
    direct = tmp_path / "direct"
    assert run(main, ["evolve", "--generations", "1", "--population", "4", "--out", str(direct), "--quiet"]).exit_code == 0
    bad = run(main, ["render", str(direct / "archive.npz")])
    assert bad.exit_code == 2 and "only CPPN genomes" in bad.stderr
    arrays = dict(np.load(out / "archive.npz", allow_pickle=False))
    arrays["genomes/weight"] = arrays["genomes/weight"] * 5.0
    np.savez(tmp_path / "tampered.npz", **arrays)
    bad = run(main, ["render", str(tmp_path / "tampered.npz"), "--out", str(tmp_path / "x.png")])
    assert bad.exit_code == 2 and "[0, 1]" in bad.stderr and not (tmp_path / "x.png").exists()
    (tmp_path / "junk.npz").write_bytes(b"junk")
    bad = run(main, ["render", str(tmp_path / "junk.npz")])
    assert bad.exit_code == 2 and f"{tmp_path / 'junk.npz'} is not an archive .npz file" in bad.stderr
    result = run(main, ["evolve", "--encoding", "cppn", "--capacity", "4", "--out", str(tmp_path / "small")])
    assert result.exit_code == 2 and "at least 5" in result.stderr
    # Errors name the user's path (not a temporary file beside it) and a label beyond the class names.
    bad = run(main, ["render", str(out / "archive.npz"), "--out", str(tmp_path / "no" / "such" / "m.png")])
    assert bad.exit_code == 2 and "Cannot write " + str(tmp_path / "no" / "such" / "m.png") in bad.stderr
    assert ".tmp" not in bad.stderr
    arrays = dict(np.load(out / "archive.npz", allow_pickle=False))
    arrays["labels"] = np.array([1, 2, 12], np.int32)
    np.savez(tmp_path / "labels.npz", **arrays)
    bad = run(main, ["render", str(tmp_path / "labels.npz")])
    assert bad.exit_code == 2 and "'labels' run from 1 to 12 but there are 10 class names" in bad.stderr
