"""The original CPPN code's add-connection and add-node rules as options (issue 23, item 2)."""

import json

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from keras_fool.encodings import CPPNEncoding, encoding_from_config
from keras_fool.encodings.cppn import CPPN_RULES, NUM_INPUTS, check_genomes, rules_name
from keras_fool.io import load_npz, save_npz

# Only the structural step under test: every other mutation off.
STILL = dict(weight_rate=0.0, activation_rate=0.0, add_connection_rate=0.0, delete_connection_rate=0.0,
             add_node_rate=0.0, delete_node_rate=0.0)


def _numpy(genomes):
    return {k: np.array(v) for k, v in genomes.items()}


def _tensors(genomes):
    return {k: tf.constant(v) for k, v in genomes.items()}


def _evolved(encoding, n=8, steps=25, seed=0):
    genomes = encoding.random(n, tf.constant([seed, 0]))
    for i in range(steps):
        genomes = encoding.mutate(genomes, tf.constant([seed, i + 1]))
    return genomes


def _two_parallel_hidden_nodes(encoding, n):
    """n copies of: x -> h1 -> output and x -> h2 -> output, h1 (slot 5) before h2 (slot 6), no edge between them."""
    g = _numpy(encoding.random(n, tf.constant([0, 0])))
    out, h1, h2 = NUM_INPUTS, NUM_INPUTS + 1, NUM_INPUTS + 2
    g["alive"][:, [h1, h2]] = True
    g["position"][:, h1], g["position"][:, h2] = 1 / 3, 2 / 3
    for target, source in ((h1, 0), (h2, 0), (out, h1), (out, h2)):
        g["connected"][:, target, source] = True
        g["weight"][:, target, source] = 0.6
    return g


def _new_edges(before, after):
    """(genome, target, source) of the connections in ``after`` but not in ``before``."""
    return np.argwhere(after["connected"] & ~before["connected"])


def test_acyclic_add_connection_can_go_against_the_order_and_orders_the_nodes_again():
    enc = CPPNEncoding(capacity=8, add_connection="acyclic", **{**STILL, "add_connection_rate": 1.0})
    before = _two_parallel_hidden_nodes(enc, 64)
    after = _numpy(enc.mutate(_tensors(before), tf.constant([3, 1])))
    check_genomes(enc, after)
    h1, h2 = NUM_INPUTS + 1, NUM_INPUTS + 2
    backward = [g for g, target, source in _new_edges(before, after) if (target, source) == (h1, h2)]
    assert backward, "h2 -> h1 (against the stored order) is a candidate and should be drawn in 64 tries"
    assert (after["position"][backward, h2] < after["position"][backward, h1]).all()
    untouched = [g for g in range(64) if g not in backward]
    np.testing.assert_array_equal(after["position"][untouched], before["position"][untouched])
    ordered = CPPNEncoding(capacity=8, **{**STILL, "add_connection_rate": 1.0})
    after = _numpy(ordered.mutate(_tensors(before), tf.constant([3, 1])))
    assert not any((t, s) == (h1, h2) for _, t, s in _new_edges(before, after))


def test_acyclic_add_connection_never_closes_a_cycle():
    enc = CPPNEncoding(capacity=8, add_connection="acyclic", **{**STILL, "add_connection_rate": 1.0})
    g = _two_parallel_hidden_nodes(enc, 64)
    h1, h2 = NUM_INPUTS + 1, NUM_INPUTS + 2
    g["connected"][:, h2, h1], g["weight"][:, h2, h1] = True, 0.3  # h1 -> h2: h2 -> h1 would close a cycle
    for step in range(4):
        before, g = g, _numpy(enc.mutate(_tensors(g), tf.constant([4, step])))
        assert not g["connected"][:, h1, h2].any()
        assert len(_new_edges(before, g)) > 0  # other connections are still added


@pytest.mark.parametrize("rules", list(CPPN_RULES))
def test_many_random_mutations_keep_every_connection_forward(rules):
    enc = CPPNEncoding(capacity=12, add_connection_rate=0.9, **CPPN_RULES[rules])
    genomes = enc.random(24, tf.constant([1, 0]))
    backward = 0
    for i in range(40):
        before = _numpy(genomes)
        genomes = enc.mutate(genomes, tf.constant([1, i + 1]))
        after = _numpy(genomes)
        check_genomes(enc, after)  # among others: every connected j -> i has pos_j < pos_i
        for g, target, source in _new_edges(before, after):
            was_there = before["alive"][g, source] and before["alive"][g, target]  # not a split's new connection
            backward += int(was_there and before["position"][g, source] >= before["position"][g, target])
    assert (backward > 0) == (rules == "original")


def test_ordering_the_nodes_again_renders_the_same_images():
    enc = CPPNEncoding(capacity=14)
    genomes = _evolved(enc, n=10, steps=30)
    hidden = _numpy(genomes)["alive"][:, NUM_INPUTS + 1:].sum(axis=1)
    assert hidden.max() >= 3
    reordered = dict(genomes, position=enc._reorder(genomes["alive"], genomes["connected"], genomes["position"]))
    check_genomes(enc, _numpy(reordered))
    np.testing.assert_array_equal(enc.decode(reordered).numpy(), enc.decode(genomes).numpy())


@pytest.mark.parametrize("add_node, in_gene", [("old-weight", None), ("unit-in", 11.0 / 20.0)])
def test_add_node_gives_the_new_connections_their_genes(add_node, in_gene):
    enc = CPPNEncoding(capacity=8, add_node=add_node, **{**STILL, "add_node_rate": 1.0})
    before = _numpy(enc.random(16, tf.constant([2, 0])))
    after = _numpy(enc.mutate(_tensors(before), tf.constant([2, 1])))
    check_genomes(enc, after)
    for g in range(16):
        (new,) = np.flatnonzero(after["alive"][g] & ~before["alive"][g])
        ((b, a),) = np.argwhere(before["connected"][g] & ~after["connected"][g])  # the split connection a -> b
        assert after["connected"][g, new, a] and after["connected"][g, b, new]
        old = before["weight"][g, b, a]
        assert after["weight"][g, b, new] == old
        assert after["weight"][g, new, a] == (old if in_gene is None else np.float32(in_gene))


def test_the_rules_are_in_the_config_and_an_old_config_reads_as_the_default():
    enc = CPPNEncoding(capacity=10, add_connection="acyclic", add_node="old-weight")
    config = enc.get_config()
    assert (config["add_connection"], config["add_node"]) == ("acyclic", "old-weight")
    assert rules_name(config) == "original"
    assert encoding_from_config(json.loads(json.dumps(config))).get_config() == config
    assert enc.with_capacity(16).get_config() == {**config, "capacity": 16}
    old = {k: v for k, v in CPPNEncoding().get_config().items() if k not in ("add_connection", "add_node")}
    rebuilt = encoding_from_config(old)
    assert (rebuilt.add_connection, rebuilt.add_node) == ("ordered", "unit-in") and rules_name(old) == "ours"
    assert rules_name({"add_connection": "acyclic"}) is None  # a mix of the two


def test_bad_rules_are_refused_with_one_clear_sentence(tmp_path):
    from keras_fool.evolution import run_evolution

    with pytest.raises(ValueError, match=r"^add_connection must be 'ordered' or 'acyclic'\. "
                                         r"Received: add_connection='any'$"):
        CPPNEncoding(add_connection="any")
    with pytest.raises(ValueError, match=r"^add_node must be 'unit-in' or 'old-weight'\. Received: add_node=1$"):
        CPPNEncoding(add_node=1)
    with pytest.raises(ValueError, match=r"cppn_rules must be one of 'ours', 'original'\. Received: cppn_rules='x'"):
        run_evolution(tmp_path / "a", encoding="cppn", cppn_rules="x")
    with pytest.raises(ValueError, match="this run uses the direct encoding; add encoding='cppn'"):
        run_evolution(tmp_path / "b", cppn_rules="original")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_paper_takes_the_original_rules_for_a_cppn_unless_told():
    from keras_fool.evolution.runs import _DEFAULTS, _settle_options

    def rules(paper, encoding, given=None):
        return _settle_options({**dict.fromkeys(_DEFAULTS), "encoding": encoding, "cppn_rules": given}, None,
                               paper)["cppn_rules"]

    assert (rules(False, "cppn"), rules(True, "cppn"), rules(True, "cppn", "ours")) == ("ours", "original", "ours")
    assert rules(True, "direct") is None and rules(False, "direct") is None


def _run(*args):
    from keras_fool.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.slow  # two tiny MNIST runs through the CLI
def test_the_cli_runs_the_original_rules_and_resume_keeps_them(tmp_path):
    out = tmp_path / "original"
    common = ("--population", 6, "--classes", "1,2", "--out", out, "--quiet", "--checkpoint-every", 1)
    result = _run("evolve", "--encoding", "cppn", "--cppn-rules", "original", "--generations", 2, *common)
    assert result.exit_code == 0, result.output
    encoding = json.loads((out / "summary.json").read_text())["config"]["encoding"]
    assert (encoding["add_connection"], encoding["add_node"]) == ("acyclic", "old-weight")
    result = _run("evolve", "--out", out, "--generations", 3, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generations"] == 3 and summary["config"]["encoding"]["add_node"] == "old-weight"
    result = _run("evolve", "--out", out, "--generations", 4, "--resume", "--cppn-rules", "ours")
    assert result.exit_code == 2 and "has cppn_rules original;" in result.stderr, result.output
    assert "--cppn-rules" in _run("evolve", "--help").output
    result = _run("evolve", "--cppn-rules", "original", "--out", tmp_path / "direct")
    assert result.exit_code == 2 and "uses the direct encoding" in result.stderr.splitlines()[-1], result.output


@pytest.mark.slow  # a tiny MNIST run, resumed
def test_a_checkpoint_written_before_the_rules_existed_resumes_with_ours(tmp_path):
    from keras_fool.evolution import run_evolution

    out = tmp_path / "old"
    run_evolution(out, encoding="cppn", generations=1, population=4, classes="1,2", progress=False)
    arrays = load_npz(out / "checkpoint.npz")
    config = json.loads(str(arrays["config"]))
    for key in ("add_connection", "add_node"):
        del config["encoding"][key]
    save_npz(out / "checkpoint.npz", **{**arrays, "config": np.array(json.dumps(config, sort_keys=True))})
    summary = run_evolution(out, generations=2, resume=True, progress=False)
    assert summary["generations"] == 2
    assert (summary["config"]["encoding"]["add_connection"], summary["config"]["encoding"]["add_node"]) == (
        "ordered", "unit-in")
