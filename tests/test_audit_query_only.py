"""``keras-fool audit`` of a model that answers queries only: what runs, what is transferred, what is counted.

The audited model is LeNet (the zoo's ``lenet_mnist``) behind a :class:`~keras_fool.backends.QueryTarget`
that asks the Keras model in NumPy, so the numbers are a real model's while the audit sees only its
answers. The audits run on test_audit's tiny budget.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from keras_fool.audit.budgets import AuditBudget
from keras_fool.backends import QueryTarget
from keras_fool.cli import main

TINY = AuditBudget("tiny", max_classes=10, population=10, direct_generations=5, cppn_generations=3, ascent_steps=10,
                   test_images=100, levels=4, worst_case_images=30, distortions=(0.1, 0.2), pgd_steps=5,
                   square_queries=10, diagnostic_images=10)
CLASSES = "0,3,7"
SURROGATE = "lenet_mnist_pgd"
PROBE = 8  # the images a QueryTarget asks about when it is built
_RUNS = {}


class QueriedLeNet(QueryTarget):
    """lenet_mnist, asked through NumPy: images in, probabilities out, no gradients."""

    backend = "numpy"

    def __init__(self, **options):
        from keras_fool import zoo

        self.model = zoo.load_model("lenet_mnist")
        self._setup((28, 28, 1), batch_size=500, **options)

    def _raw_outputs(self, inputs):
        return np.asarray(self.model(inputs, training=False))

    def source(self):
        return {"model": "queried_lenet"}


def query_only_audit(tmp_path_factory, surrogate=None):
    """The tiny audit of a fresh QueriedLeNet (with ``surrogate`` or none), once per session: (result, target)."""
    if surrogate not in _RUNS:
        from keras_fool.audit import audit_model

        target = QueriedLeNet()
        out = tmp_path_factory.mktemp("query_only") / "out"
        # The detectors are measured without a surrogate (here) and skipped with one (test_audit measures them).
        _RUNS[surrogate] = (audit_model(target, out, budget=TINY, classes=CLASSES, seed=3, progress=False,
                                        surrogate=surrogate, detectors=surrogate is None), target)
    return _RUNS[surrogate]


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    return query_only_audit(tmp_path_factory)


@pytest.fixture(scope="module")
def transferred(tmp_path_factory):
    return query_only_audit(tmp_path_factory, SURROGATE)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, code):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[-1]


def _validates(report):
    from keras_fool.audit.schema import REPORT_SCHEMA, validate_report

    validate_report(report)
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(report)


# --------------------------------------------------------------------------- without a surrogate


@pytest.mark.slow  # a tiny audit by queries (~15 s)
def test_without_a_surrogate_the_gradient_stages_say_not_run_and_the_rest_runs_by_queries(alone):
    from keras_fool.audit.access import NOT_RUN

    result, _ = alone
    report = result.summary
    assert json.loads((result.out / "report.json").read_text()) == report
    _validates(report)
    card = report["model_card"]
    assert card["access"] == "queries only" and card["backend"] == "numpy" and card["parameters"] is None
    assert card["name"] == "queried_lenet" and card["accuracy"] > 0.95  # the real LeNet answers

    methods = report["fooling"]["methods"]
    assert methods["gradient"] == {"method": "gradient", "available": False, "reason": NOT_RUN}
    for method in ("direct", "cppn"):
        assert methods[method]["access"] == "queries" and len(methods[method]["classes"]) == 3
    assert report["confidence"]["fooling"]["images"] == 2 * 3  # the two evolutions' images only
    assert sorted(report["files"]["figures"]) == sorted(
        ["fooling_direct.png", "fooling_cppn.png", "fooling_progress.png", "confidence.png", "robustness.png"])
    assert not (result.out / "fooling_gradient.png").exists()

    curves = report["robustness"]["curves"]
    assert list(curves["curves"]) == ["gaussian"] and curves["curves"]["gaussian"]["access"] == "queries"
    assert curves["not_run"] == {"gradient_sign": NOT_RUN}
    worst = report["robustness"]["worst_case"]
    assert worst["attacks"] == ["square"] and worst["access"] == "queries" and worst["surrogates"] == []
    assert worst["not_run"] == {"fgsm": NOT_RUN, "pgd": NOT_RUN}
    assert "lower bound on the white-box worst case" in worst["bound"]
    assert all(level["eps_from"] == "distortion" and level["fgsm_error"] is None for level in worst["levels"])

    text = report["verdict"]["text"]
    assert "gradient ascent not run (the model answers queries only and no --surrogate was given)" in text
    assert "FGSM not run" in text and "over square only" in text and "lower bound" in text


@pytest.mark.slow  # the tiny audit by queries
def test_every_query_is_counted_per_stage_and_in_all(alone):
    result, target = alone
    queries = result.summary["queries"]
    assert queries["counted"] and queries["runs"] == 1 and queries["setup"] == PROBE
    stages = queries["stages"]
    assert list(stages) == ["model_card", "fooling_direct", "fooling_cppn", "fooling_gradient", "robustness_curves",
                            "worst_case", "transfer", "detectors"]
    assert stages["model_card"] == TINY.test_images  # each real image asked once
    assert stages["robustness_curves"] == TINY.levels * TINY.test_images  # the Gaussian curve only
    assert stages["fooling_gradient"] == 0 and stages["transfer"] == 0
    assert stages["fooling_direct"] > TINY.population * TINY.direct_generations and stages["worst_case"] > 0
    assert stages["detectors"] > 2 * TINY.population * TINY.direct_generations  # an adaptive search per detector
    assert queries["total"] == PROBE + sum(stages.values()) == target.queries  # the target's own count
    for name, count in stages.items():  # stored with each stage, for --resume
        assert json.loads((result.out / "stages" / f"{name}.json").read_text())["queries"] == count


@pytest.mark.slow  # the tiny audit by queries
def test_the_page_shows_what_did_not_run_and_the_queries(alone):
    result, _ = alone
    page = (result.out / "report.html").read_text()
    queries = result.summary["queries"]
    assert "Queries to the model" in page and f"<b>{queries['total']:,}</b>" in page
    assert "queries only (numpy)" in page and "gradient attacks not run (no surrogate)" in page
    not_run = re.findall(r'<span class="no">not run</span>: ([^<]+)<', page)
    surrogate = [reason for reason in not_run if "no --surrogate was given" in reason]  # ascent, FGSM
    detectors = [reason for reason in not_run if "answers queries only, so its" in reason]
    # max logit, energy, ODIN, Mahalanobis and their union need more than probabilities
    assert len(surrogate) == 2 and len(detectors) == 5 and len(not_run) == 7
    assert "Attacks that ran: square; not run: fgsm:" in page and "lower bound" in page
    assert "fooling images (the 2 methods that ran)" in page and "all three methods" not in page


@pytest.mark.slow  # the tiny audit by queries
def test_a_model_that_answers_queries_only_meets_the_detectors_that_read_only_its_answers(alone):
    report = alone[0].summary
    section = report["detectors"]
    rows = {row["detector"]: row for row in section["detectors"]}
    # Max softmax reads the probabilities; the autoencoder reads the images (MNIST's, so dae_mnist applies).
    assert [name for name, row in rows.items() if row["available"]] == ["msp", "reconstruction"]
    for name in ("max_logit", "energy", "odin"):
        assert rows[name] == {"detector": name, "available": False,
                              "reason": "the model answers queries only, so its logits are not given"}
    assert rows["mahalanobis"]["reason"] == "the model answers queries only, so its penultimate features are not given"
    for name in ("msp", "reconstruction"):
        row = rows[name]
        assert row["adaptive"]["generations"] == TINY.direct_generations
        assert row["worst_case_fooled_99_unflagged"] >= row["non_adaptive_fooled_99_unflagged"]
        assert list(row["methods"]) == ["direct", "cppn"]  # gradient ascent did not run
    text = report["verdict"]["text"]
    best = rows[section["best"]]
    assert f"{best['worst_case_fooled_99_unflagged']} of 3 classes fooled at >= 99% unflagged" in text


@pytest.mark.slow  # the tiny audit by queries, with the surrogate
def test_the_detectors_can_be_skipped(transferred):
    report = transferred[0].summary
    assert report["detectors"] == {"available": False, "reason": "skipped (--no-detectors)"}
    assert "No detector was measured: skipped (--no-detectors)." in report["verdict"]["text"]
    assert "Not measured: skipped (--no-detectors)." in (transferred[0].out / "report.html").read_text()


# --------------------------------------------------------------------------- with a surrogate


@pytest.mark.slow  # a tiny audit by queries, with the surrogate (~20 s)
def test_with_a_surrogate_the_gradient_stages_are_transfer_attacks_scored_on_the_model(transferred):
    from keras_fool.audit.access import WHITE_BOX_ONLY
    from keras_fool.io import load_npz

    result, target = transferred
    report = result.summary
    _validates(report)
    assert report["settings"]["surrogate"] == SURROGATE
    gradient = report["fooling"]["methods"]["gradient"]
    assert gradient["access"] == "transfer" and gradient["surrogate"] == SURROGATE
    # The confidences are the audited model's own, in the images the surrogate made.
    arrays = load_npz(result.out / "stages" / "fooling_gradient.npz")
    asked = target.predict(arrays["images"])[np.arange(3), arrays["labels"]]
    np.testing.assert_allclose([c["confidence"] for c in gradient["classes"]], asked, rtol=1e-5)
    for c in gradient["classes"]:
        assert (c["first_99"] is not None) == (c["confidence"] >= 0.99)
    assert report["queries"]["stages"]["fooling_gradient"] == 3  # each transferred image asked once

    fgsm = report["robustness"]["curves"]["curves"]["gradient_sign"]
    assert fgsm["access"] == "transfer" and fgsm["surrogate"] == SURROGATE
    assert "not_run" not in report["robustness"]["curves"]
    worst = report["robustness"]["worst_case"]
    assert worst["attacks"] == ["transfer", "square"] and worst["surrogates"] == [SURROGATE]
    assert worst["not_run"] == {"fgsm": WHITE_BOX_ONLY, "pgd": WHITE_BOX_ONLY} and "lower bound" in worst["bound"]
    assert all(level["eps_from"] == "surrogate_fgsm" for level in worst["levels"])
    assert all(f"transfer:{SURROGATE}" in level["fooled"] for level in worst["levels"])

    text = report["verdict"]["text"]
    assert f"gradient ascent on the surrogate {SURROGATE} (a transfer attack)" in text
    assert f"FGSM transferred from {SURROGATE}" in text and "over transfer, square only" in text
    page = (result.out / "report.html").read_text()
    assert f"Gradient ascent (transfer from {SURROGATE})" in page and f"transferred from {SURROGATE}" in page
    assert "(by the surrogate)" in page and f"Gradient ascent on the surrogate {SURROGATE}:" in page


# --------------------------------------------------------------------------- resume


@pytest.mark.slow  # an interrupted tiny audit by queries, then its resume (~15 s)
def test_a_resumed_audit_keeps_the_queries_its_first_run_spent(alone, tmp_path, monkeypatch):
    from keras_fool.audit import audit_model, stages

    out = tmp_path / "interrupted"
    kwargs = dict(budget=TINY, classes=CLASSES, seed=3, progress=False)

    def interrupt(ctx, results):
        raise KeyboardInterrupt

    monkeypatch.setitem(stages.STAGES, "worst_case", interrupt)
    first = QueriedLeNet()
    with pytest.raises(KeyboardInterrupt):
        audit_model(first, out, **kwargs)
    monkeypatch.undo()
    second = QueriedLeNet()  # a new process would open the model again
    resumed = audit_model(second, out, resume=True, **kwargs)
    queries = resumed.summary["queries"]
    assert queries["runs"] == 2 and queries["setup"] == 2 * PROBE
    assert queries["stages"] == alone[0].summary["queries"]["stages"]  # each stage's own seed: the same queries
    assert queries["total"] == first.queries + second.queries  # every image either run asked about
    assert resumed.summary["timings"]["resumed_stages"] == ["model_card", "fooling_direct", "fooling_cppn",
                                                            "fooling_gradient", "robustness_curves"]


# --------------------------------------------------------------------------- the pieces, fast


def test_the_query_model_asks_the_target_and_counts_each_image_once():
    from keras_fool.audit.access import query_model
    from keras_fool.evaluation.curves import robustness_curves

    target = QueriedLeNet()
    model = query_model(target)
    images = np.random.default_rng(0).uniform(size=(20, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(images)), target.predict(images), rtol=1e-5, atol=1e-7)
    spent = target.queries
    labels = np.zeros(20, np.int64)
    # The levels of a curve run in a loop of the graph; every one of them is asked and counted.
    curves = robustness_curves({"lenet": model}, images, labels, noise_types=("gaussian",), num_levels=5)
    assert target.queries - spent == 5 * 20 and curves.error.shape == (1, 1, 5)


def test_a_stage_keeps_its_query_count_and_a_damaged_count_is_named(tmp_path):
    from keras_fool.audit.stages import StageStore
    from keras_fool.errors import ResumeError

    store = StageStore(tmp_path)
    store.start({"budget": "tiny"}, resume=False)
    store.save("model_card", {"available": False, "reason": "no data given"}, {}, 0.5, queries=42)
    assert store.load("model_card")[3] == 42
    assert store.add_setup_queries(8) == [8] and store.add_setup_queries(8) == [8, 8]
    record = json.loads((store.folder / "model_card.json").read_text())
    (store.folder / "model_card.json").write_text(json.dumps({**record, "queries": -1}))
    with pytest.raises(ResumeError, match="model_card.json is corrupt"):
        store.load("model_card")
    (store.folder / "setup_queries.json").write_text('["eight"]')
    with pytest.raises(ResumeError, match="setup_queries.json is corrupt"):
        store.add_setup_queries(8)


def test_a_surrogate_of_other_images_or_classes_is_refused_in_one_sentence(tmp_path):
    from keras_fool.audit import audit_model

    rgb = _save_model(tmp_path / "rgb.keras", (28, 28, 3), 10)
    three = _save_model(tmp_path / "three.keras", (28, 28, 1), 3)
    target = QueriedLeNet()
    for surrogate, shown in ((rgb, "(28, 28, 3) with 10 classes"), (three, "(28, 28, 1) with 3 classes")):
        with pytest.raises(ValueError, match=re.escape(f"The surrogate {surrogate.name} takes images of shape "
                                                       f"{shown}, the audited model (28, 28, 1) with 10")):
            audit_model(target, tmp_path / "out", budget=TINY, surrogate=surrogate, progress=False)
        assert not (tmp_path / "out").exists()


def test_a_surrogate_that_answers_queries_only_is_refused(tmp_path):
    from keras_fool.audit import audit_model

    with pytest.raises(ValueError, match="The surrogate queried_lenet answers queries only, so it has no gradients"):
        audit_model(QueriedLeNet(), tmp_path / "out", budget=TINY, surrogate=QueriedLeNet(), progress=False)
    assert not (tmp_path / "out").exists()


def _save_model(path, input_shape, outputs):
    import keras

    inputs = keras.Input(input_shape)
    outputs = keras.layers.Dense(outputs, activation="softmax")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(path)
    return path


def test_the_command_refuses_a_surrogate_for_a_keras_model_or_of_other_images(tmp_path):
    """A Keras model has gradients: its gradient stages attack it directly, so a surrogate is refused, not ignored."""
    cases = [
        ([SURROGATE], "A surrogate is for a model that answers queries only; lenet_mnist has gradients"),
        ([_save_model(tmp_path / "rgb.keras", (28, 28, 3), 10)], "The surrogate rgb.keras takes images of shape"),
        ([tmp_path / "missing.keras"], "missing.keras"),
    ]
    for i, (surrogate, text) in enumerate(cases):
        out = tmp_path / f"out{i}"
        message = one_line_error(run("audit", "lenet_mnist", "--surrogate", *surrogate, "--out", out), 2)
        assert text in message, message
        assert "--compare" in message or i > 0  # where a model to transfer from goes instead
        assert not out.exists()


def _contract_target():
    import tensorflow as tf

    from keras_fool.target import BaseTarget

    class Linear(BaseTarget):
        image_shape, num_classes, class_names = (4, 4, 1), 3, ["a", "b", "c"]
        weights = tf.constant(np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32))

        def __call__(self, images):
            return tf.nn.softmax(tf.reshape(tf.cast(images, tf.float32), (-1, 16)) @ self.weights)

        def get_config(self):
            return {"models": [{"model": "linear"}]}

    return Linear()


@pytest.mark.slow  # a whole (very small) audit, ~10 s of compiling the searches
def test_a_target_with_only_the_contract_is_audited_and_its_queries_said_not_counted(tmp_path):
    from keras_fool.audit import audit_model

    small = AuditBudget("tiny", max_classes=2, population=4, direct_generations=1, cppn_generations=1,
                        ascent_steps=1, test_images=10, levels=2, worst_case_images=2)
    report = audit_model(_contract_target(), tmp_path / "out", budget=small, progress=False).summary
    card, queries = report["model_card"], report["queries"]
    assert card["name"] == "linear" and card["access"] == "queries only" and card["backend"] == "Linear"
    assert (card["outputs"], card["input_range"], card["preprocess"]) == ("probabilities", "0-1", "none")
    assert not queries["counted"] and queries["total"] is None
    assert "does not count" in queries["reason"] and "Keras" not in queries["reason"]
    assert "It answers queries only: the images it was asked about were not counted" in report["verdict"]["text"]


class _QueriedColour(QueryTarget):
    """A small colour Keras model asked through NumPy (no gradients)."""

    backend = "numpy"

    def __init__(self, model):
        self.model = model
        self._setup(tuple(model.input_shape[1:]), batch_size=500)

    def _raw_outputs(self, inputs):
        return np.asarray(self.model(inputs, training=False))

    def source(self):
        return {"model": "queried_colour"}


def test_a_colour_model_that_answers_queries_only_starts_its_nes_search_on_the_surrogate():
    """The direct stage's NES starts each class from gradient ascent on the surrogate; without one, from grey."""
    from types import SimpleNamespace

    import keras

    from keras_fool.audit.stages import _search
    from keras_fool.target import Target

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs)))
    target = _QueriedColour(model)
    budget = TINY
    runs = {}
    for surrogate in (None, ("itself.keras", Target(model))):  # the surrogate is the model itself: a perfect prior
        ctx = SimpleNamespace(progress=False, budget=budget, classes=[0, 1, 2, 3], surrogate=surrogate)
        runs[surrogate is not None] = _search(ctx, target, "direct", budget.direct_generations, seed=0)
    (grey, grey_extra), (started, extra) = runs[False], runs[True]
    assert extra["search"] == grey_extra["search"] == "nes"
    assert extra["surrogate"] == "itself.keras" and "surrogate" not in grey_extra
    assert started.first_evaluations == 4 and grey.first_evaluations == 1
    assert started.evaluations <= 10 * 6 * 4  # the query budget of MAP-Elites' 10 offspring x 6 generations
    assert np.min(started.archive.confidences) > 0.9 > np.median(grey.archive.confidences)
