"""keras-fool experiment detectors: the study's numbers hold their invariants, its checks fire, its CLI writes and refuses."""

import json

import numpy as np

import pytest
from click.testing import CliRunner

from keras_fool.cli import main
from keras_fool.experiments.detectors import (
    DETECTOR_NAMES,
    adaptive_weaker,
    check_detector_options,
    security_checks,
)

TINY = ["--detectors", "msp,energy", "--encodings", "direct", "--seeds", "0", "--generations", "2", "--population",
        "10", "--steps", "3", "--fit-images", "200", "--held-out", "200", "--unbounded-factor", "2"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One tiny study through the command line: (its result, the folder it wrote)."""
    out = tmp_path_factory.mktemp("detectors") / "run"
    result = CliRunner().invoke(main, ["experiment", "detectors", *TINY, "--out", str(out)])
    return result, out


def _row(seed, non_adaptive, adaptive, unbounded=None):
    worst = max(non_adaptive, adaptive)
    return {"seed": seed, "fooled_pct": {"non_adaptive": non_adaptive, "adaptive": adaptive, "worst_case": worst,
                                         "black_box": worst},
            "unbounded": unbounded}


def test_the_detector_names_are_the_librarys():
    from keras_fool.detectors import DETECTORS

    assert DETECTOR_NAMES == tuple(DETECTORS)
    from keras_fool.cli.detectors import detectors as command

    default = next(p.default for p in command.params if p.name == "detectors")
    assert tuple(default.split(",")) == DETECTOR_NAMES  # the command's default is every detector


def test_the_real_photos_calibrate_imagenet_models_offline():
    from keras_fool.data import PHOTOS, VIEWS, load_real_photos

    images, photos = load_real_photos(32)
    assert images.shape == (len(PHOTOS) * len(VIEWS), 32, 32, 3) and images.dtype == "float32"
    assert 0.0 <= images.min() < images.max() <= 1.0
    assert photos == [p for p in PHOTOS for _ in VIEWS]


def test_an_adaptive_attack_weaker_than_the_non_adaptive_one_is_named():
    assert adaptive_weaker(40.0, 30.0) and not adaptive_weaker(40.0, 40.0) and not adaptive_weaker(40.0, 90.0)
    lines = security_checks("msp", [_row(0, 40.0, 30.0), _row(1, 40.0, 40.0), _row(2, 10.0, 60.0)])
    assert len(lines) == 1
    assert "msp, seed 0" in lines[0] and "adaptive weaker than non-adaptive" in lines[0]
    assert "rests on the non-adaptive images" in lines[0]


def test_an_adaptive_search_weaker_than_its_plain_twin_is_named():
    row = {**_row(0, 60.0, 90.0), "adaptive_weaker_methods": ["cppn"],
           "fooled_by_method_pct": {"cppn": 60.0, "adaptive_cppn": 10.0}}
    (line,) = security_checks("reconstruction", [row])
    assert "reconstruction, seed 0" in line and "cppn 10% against 60%" in line and "keeps the non-adaptive" in line


def test_the_unbounded_budget_says_whether_it_fooled_every_class():
    held = {"factor": 5, "evaluations": 201000, "adaptive_pct": 70.0, "worst_case_pct": 80.0, "black_box_pct": 60.0,
            "every_class": False, "black_box_every_class": False}
    by_gradient = {**held, "adaptive_pct": 100.0, "worst_case_pct": 100.0, "every_class": True}
    by_queries = {**by_gradient, "black_box_pct": 100.0, "black_box_every_class": True}
    lines = security_checks("odin", [_row(0, 50.0, 60.0, held), _row(1, 50.0, 60.0, by_gradient),
                                     _row(2, 50.0, 60.0, by_queries)])
    assert len(lines) == 3
    assert "did not fool every class" in lines[0] and "5x the budget (201,000 evaluations" in lines[0]
    assert "gradients were needed" in lines[1] and "black-box 60%" in lines[1]
    assert "eventually fooled every class, by queries alone" in lines[2]


@pytest.mark.parametrize("options, match", [
    ({"detectors": "msp,nope"}, "detectors must be distinct names"),
    ({"detectors": ("msp", "msp")}, "detectors must be distinct names"),
    ({"seeds": (1, 1)}, "none repeated"),
    ({"encodings": (), "gradient": False}, "needs a search"),
    ({"ood": "mnist"}, "ood must be distinct names"),
    ({"tpr": 1.0}, "tpr must be below 1"),
    ({"generations": 0}, "generations"),
])
def test_bad_options_are_refused_before_tensorflow(options, match):
    with pytest.raises(ValueError, match=match):
        check_detector_options(**options)


def test_help_lists_the_options():
    result = CliRunner().invoke(main, ["experiment", "detectors", "--help"])
    assert result.exit_code == 0
    for option in ("--model", "--detectors", "--encodings", "--seeds", "--generations", "--population", "--ood",
                   "--out", "--overwrite"):
        assert option in result.output


@pytest.mark.parametrize("arguments, words", [
    (["--detectors", "msp,bogus"], "detectors must be distinct names"),
    (["--seeds", "0,x"], "seeds must be integers"),
    (["--ood", "fashion"], "ood must be distinct names"),
    (["--encodings", "none", "--no-gradient"], "needs a search"),
])
def test_bad_input_is_one_sentence_with_exit_2_and_no_folder(tmp_path, arguments, words):
    out = tmp_path / "never"
    result = CliRunner().invoke(main, ["experiment", "detectors", *arguments, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.slow
def test_a_tiny_study_writes_its_files_and_holds_its_invariants(study):
    result, out = study
    assert result.exit_code == 0, result.output
    for name in ("detectors.md", "detectors.csv", "summary.json", "worst_case.png", "worst_case.svg",
                 "adaptive_montage.png", "adaptive_images.npz"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["detectors"] == ["msp", "energy"] and summary["config"]["seeds"] == [0]
    assert set(summary["detectors"]) == {"msp", "energy"}
    for name, row in summary["detectors"].items():
        assert row["status"] == "run"
        clean = row["clean"]
        # 100 calibration images at 95% TPR: at most 5 flagged, and ties aside no fewer than 4.
        assert 4.0 <= clean["calibration_flagged_pct"] <= 5.0, clean
        assert 0.0 <= clean["flagged_pct"] <= 15.0 and clean["accuracy_pct"] > 95.0
        assert set(row["ood"]) == {"ood_animal_mnist"}
        (seed,) = row["seeds"]
        assert set(seed["sources"]) == {"direct", "gradient", "adaptive_direct", "adaptive_gradient"}
        for source in seed["sources"].values():
            assert 0.0 <= source["auroc"] <= 1.0 and 0.0 <= source["fpr_pct"] <= 100.0
        fooled = seed["fooled_pct"]
        assert fooled["worst_case"] >= max(fooled["non_adaptive"], fooled["adaptive"])
        by_method = seed["fooled_by_method_pct"]
        # The black-box worst case counts the evolved images only, adaptive or not.
        assert max(by_method["direct"], by_method["adaptive_direct"]) <= fooled["black_box"] <= fooled["worst_case"]
        assert fooled["non_adaptive"] >= max(by_method["direct"], by_method["gradient"])
        assert seed["adaptive_weaker"] == (fooled["adaptive"] < fooled["non_adaptive"])
        assert (seed["unbounded"] is None) == (fooled["black_box"] == 100.0)
        if seed["unbounded"] is not None:
            assert seed["unbounded"]["worst_case_pct"] >= seed["unbounded"]["adaptive_pct"]
        assert row["checks"] == security_checks(name, row["seeds"])
        assert row["summary"]["fooled_pct"]["worst_case"]["median"] == fooled["worst_case"]
    markdown = (out / "detectors.md").read_text()
    assert "| msp |" in markdown and "fooling-class" in markdown and "99.15" in markdown  # the paper's DNN_15
    assert "wrote" in result.output or str(out) in result.output


@pytest.mark.slow
def test_a_folder_with_results_is_refused_unless_overwrite(study):
    result, out = study
    assert result.exit_code == 0
    again = CliRunner().invoke(main, ["experiment", "detectors", *TINY, "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output


@pytest.mark.slow  # two tiny MAP-Elites searches, traced
def test_adaptive_evolution_starts_from_the_plain_elites():
    """An adaptive MAP-Elites search begins with the non-adaptive elites in its archive (warm start), so its elites
    are at least as fit, under the guarded fitness, as the plain search's final images."""
    from keras_fool.data import load_mnist
    from keras_fool.detectors import GuardedTarget, MaxSoftmax
    from keras_fool.experiments import detectors as study
    from keras_fool.target import Target

    target = Target("lenet_mnist")
    detector = MaxSoftmax(target)
    detector.calibrate(load_mnist()[1][0][:200])
    guard = GuardedTarget(detector)
    config = {"encodings": ("direct",), "population": 20, "generations": 3, "steps": 2}
    plain = study._searches(target, [1, 4], config, 0, gradient=False)
    study._run(plain, config)
    adaptive = study._searches(guard, [1, 4], config, 0, gradient=False)
    study._warm_start(adaptive, plain, guard)
    search = adaptive["direct"][0]
    plain_fitness = np.asarray(guard(plain["direct"][0].images()))[np.arange(2), [1, 4]]
    assert np.all(search.archive.fitness.numpy() >= plain_fitness - 1e-7)
