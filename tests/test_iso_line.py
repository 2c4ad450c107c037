"""The Iso+LineDD variation operator (Vassiliades & Mouret, 2018) of both encodings and of MapElites."""

import numpy as np
import pytest
import tensorflow as tf

from keras_fool.encodings import CPPNEncoding, DirectEncoding
from keras_fool.errors import ResumeError
from keras_fool.evolution import Checkpoint, MapElites
from keras_fool.target import Target

SEED = tf.constant([7, 8])


@pytest.fixture(scope="module")
def target():
    return Target("lenet_mnist")


def test_direct_children_step_along_the_line_to_their_mates():
    enc = DirectEncoding((6, 6, 1))
    parents = tf.random.stateless_uniform((40, 6, 6, 1), [1, 2], 0.2, 0.8)
    mates = tf.random.stateless_uniform((40, 6, 6, 1), [3, 4], 0.2, 0.8)
    # Without the isotropic step a child is parent + t (mate - parent), one t per child (clipped at the edges).
    line_only = enc.iso_line(parents, mates, SEED, 0, 0.0, 0.2).numpy()
    p, m = parents.numpy(), mates.numpy()
    t = np.median(((line_only - p) / (m - p)).reshape(40, -1), axis=1)[:, None, None, None]
    np.testing.assert_allclose(line_only, np.clip(p + t * (m - p), 0.0, 1.0), atol=1e-6)
    assert 0.1 < np.std(t) < 0.35  # t ~ N(0, 0.2) across children
    both = enc.iso_line(parents, mates, SEED, 0, 0.01, 0.2).numpy()
    assert 0.005 < np.std(both - line_only) < 0.02  # the isotropic noise on top
    assert both.min() >= 0.0 and both.max() <= 1.0
    np.testing.assert_array_equal(enc.iso_line(parents, mates, SEED, 0, 0.0, 0.0).numpy(), parents.numpy())


def _still(capacity=10):
    """A CPPN encoding whose mutation steps 2-6 never fire, so only iso_line's weight step acts."""
    return CPPNEncoding((8, 8, 1), capacity=capacity, activation_rate=0.0, add_connection_rate=0.0,
                        delete_connection_rate=0.0, add_node_rate=0.0, delete_node_rate=0.0)


def test_cppn_moves_only_the_parents_weights_and_follows_the_line_only_on_shared_connections():
    enc = _still()
    grow = CPPNEncoding((8, 8, 1), capacity=10, add_node_rate=1.0, add_connection_rate=1.0)
    parents = grow.mutate(grow.mutate(enc.random(30, tf.constant([1, 1])), tf.constant([2, 2])), tf.constant([3, 3]))
    mates = grow.mutate(enc.random(30, tf.constant([4, 4])), tf.constant([5, 5]))
    child = enc.iso_line(parents, mates, SEED, 0, 0.01, 0.2)
    for key in ("alive", "connected", "activation", "position"):
        np.testing.assert_array_equal(child[key].numpy(), parents[key].numpy())
    connected = parents["connected"].numpy()
    moved = child["weight"].numpy() != parents["weight"].numpy()
    assert moved[connected].mean() > 0.95 and not moved[~connected].any()
    # Without the isotropic step only connections both have move, all of a child's by one common t.
    line_only = enc.iso_line(parents, mates, SEED, 0, 0.0, 0.2)
    shared = connected & mates["connected"].numpy()
    moved = line_only["weight"].numpy() != parents["weight"].numpy()
    assert not moved[~shared].any() and moved[shared].mean() > 0.5
    assert (connected & ~shared).any()  # the test has unshared connections to keep still


def test_cppn_iso_line_keeps_the_structural_mutations():
    enc = CPPNEncoding((8, 8, 1), capacity=10, add_node_rate=1.0, delete_node_rate=0.0)
    parents = enc.random(20, tf.constant([1, 1]))
    child = enc.iso_line(parents, parents, SEED, 0, 0.01, 0.2)
    assert child["alive"].numpy().sum() == parents["alive"].numpy().sum() + 20  # one new node each
    enc.validate({k: v.numpy() for k, v in child.items()})


def test_map_elites_with_iso_line_fools_lenet_resumes_exactly_and_records_its_variation(target, tmp_path):
    def evolver():
        return MapElites(target, DirectEncoding(), population=40, seed=5, classes=[0, 3, 8], variation="iso-line")

    straight = evolver()
    straight.run(20)
    assert straight.history["median"][-1] > max(0.9, straight.history["median"][0] + 0.2)
    first = evolver()
    first.run(10, [Checkpoint(tmp_path / "ck.npz", every=5)])
    resumed = evolver()
    resumed.load_checkpoint(tmp_path / "ck.npz")
    resumed.run(20)
    np.testing.assert_array_equal(straight.archive.genomes.numpy(), resumed.archive.genomes.numpy())
    assert straight.get_config()["variation"] == "iso-line" and straight.get_config()["line_sigma"] == 0.2
    plain = MapElites(target, DirectEncoding(), population=40, seed=5, classes=[0, 3, 8])
    assert "variation" not in plain.get_config()  # the paper's runs keep the configuration they always had
    with pytest.raises(ResumeError, match="different iso_sigma, line_sigma, variation"):
        plain.load_checkpoint(tmp_path / "ck.npz")


def test_map_elites_refuses_a_bad_variation(target):
    with pytest.raises(ValueError, match="variation must be one of 'mutation', 'iso-line'. Received: variation='line'"):
        MapElites(target, DirectEncoding(), variation="line")
    with pytest.raises(ValueError, match="line_sigma"):
        MapElites(target, DirectEncoding(), variation="iso-line", line_sigma=-1.0)
