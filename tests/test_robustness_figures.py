"""The robustness experiment's figures read as a paper's, its TensorBoard steps, and its refusal to overwrite.

Most tests draw synthetic curves of every method (no TensorFlow, no training); one runs the real
command at its smallest budget and reads back the files and the TensorBoard events it writes.
"""

import csv
import types

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_fool.evaluation.curves import RobustnessCurves
from keras_fool.experiments.robustness import (
    METHODS,
    PAPER_FIGURES,
    PAPER_TABLE2,
    ROW_LABELS,
    TABLE_DISTORTIONS,
    method_style,
    plot_curves,
    write_figures,
)

ATTACKS = ("fgsm", "pgd")


def _worst_case(models):
    """Stands in for a WorstCaseResult: what the figures read of one (attacks, per-model levels)."""
    def levels(m):
        return tuple(types.SimpleNamespace(distortion=d, eps=2 * d, error=min(1.0, 0.3 + 0.05 * m + d))
                     for d in (0.1, 0.2))

    return types.SimpleNamespace(models=tuple(models), attacks=ATTACKS, distortions=(0.1, 0.2),
                                 per_model={model: types.SimpleNamespace(levels=levels(m))
                                            for m, model in enumerate(models)})


def _curves(models=METHODS, levels=12):
    """Curves of ``models`` under both noise types; every method's curve different; worst case of all."""
    strengths = np.stack([np.linspace(0, 0.6, levels), np.linspace(0, 0.9, levels)])
    distortion = np.empty((len(models), 2, levels))
    error = np.empty_like(distortion)
    for m in range(len(models)):
        for t in range(2):
            distortion[m, t] = np.linspace(0, 0.3, levels) * (1 + 0.05 * m)
            error[m, t] = 0.01 + 0.99 * (1 - np.exp(-(1 + m) * (3 if t == 0 else 0.5) * distortion[m, t]))
    return RobustnessCurves(models=tuple(models), noise_types=("gradient_sign", "gaussian"), strengths=strengths,
                            distortion=distortion, error=error, num_images=100, worst_case=_worst_case(models))


def _method_lines(figure):
    """{legend label: Line2D} of the method curves of a figure drawn by plot_curves."""
    return {line.get_label(): line for line in figure.axes[0].get_lines() if not line.get_label().startswith("_")}


def _legend_labels(figure):
    (legend,) = figure.legends
    return [text.get_text() for text in legend.get_texts()]


def _markers(figure, marker):
    """(colour, x, y) of every marker-only line of that marker kind (the paper's values, the worst case)."""
    return [(line.get_color(), list(line.get_xdata()), list(line.get_ydata()))
            for line in figure.axes[0].get_lines() if line.get_marker() == marker and line.get_linestyle() == "None"]


@pytest.mark.slow  # measured over 2.5 s: kept out of the fast loop
def test_every_figure_is_written_as_png_and_svg_and_only_for_the_methods_that_ran(tmp_path):
    written = write_figures(_curves(), tmp_path)
    stems = ["curves_gradient_sign", "curves_gaussian"] + [stem for stem, *_ in PAPER_FIGURES]
    assert [p.name for p in written] == [f"{stem}.{fmt}" for stem in stems for fmt in ("png", "svg")]
    assert [stem for stem, *_ in PAPER_FIGURES] == ["figure3_dropout_gradient_sign", "figure4_dropout_gaussian",
                                                    "figure5_preprocessing_gradient_sign",
                                                    "figure6_preprocessing_gaussian",
                                                    "figure7_committees_gradient_sign"]
    for path in written:
        if path.suffix == ".png":
            with Image.open(path) as image:
                assert image.format == "PNG"
        else:
            text = path.read_text()
            assert text.startswith("<?xml") and "<svg" in text and "<dc:date>" not in text  # no creation date
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # no temporary files
    svg = (tmp_path / "figure7_committees_gradient_sign.svg").read_text()
    assert "<!-- Standard committee -->" in svg and "<!-- Dropout -->" not in svg  # its group's methods only

    # A later run of fewer methods into the same folder: the figures of groups that did not run go away.
    written = write_figures(_curves(("no_method", "dropout")), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    assert {p.stem for p in written} == {"curves_gradient_sign", "curves_gaussian", "figure3_dropout_gradient_sign",
                                         "figure4_dropout_gaussian"}
    # The plain LeNet alone is no comparison: no figure of the paper.
    assert {p.stem for p in write_figures(_curves(("no_method",)), tmp_path)} == {"curves_gradient_sign",
                                                                                   "curves_gaussian"}


def test_the_legend_names_the_methods_in_words_explains_the_markers_and_lies_outside_the_axes(tmp_path):
    figure = plot_curves(_curves(), tmp_path / "all.png", "gradient_sign", also=("svg",))
    labels = _legend_labels(figure)
    assert labels[0] == "No method" and "Standard committee" in labels and "Low-pass filter" in labels
    assert labels[-2:] == ["paper, Table 2", "worst case over fgsm, pgd"]
    assert len(labels) == len(METHODS) + 2 and not [label for label in labels if "_" in label]  # no model keys
    assert "<!-- Committee of models trained on adv. examples -->" in (tmp_path / "all.svg").read_text()

    renderer = figure.canvas.get_renderer()
    legend = figure.legends[0].get_window_extent(renderer)
    axes = figure.axes[0].get_window_extent(renderer)
    assert not legend.overlaps(axes) and legend.y1 < axes.y0  # below the plotting area, not over the curves
    assert figure.bbox.x0 <= legend.x0 and legend.x1 <= figure.bbox.x1 and figure.bbox.y0 <= legend.y0  # not cut

    # No paper values or worst case under Gaussian noise: the legend names the methods only.
    gaussian = plot_curves(_curves(("no_method", "dropout")), tmp_path / "gaussian.png", "gaussian")
    assert _legend_labels(gaussian) == ["No method", "Dropout"]
    assert not _markers(gaussian, "o") and not _markers(gaussian, "x")


def test_each_method_has_its_own_colour_line_style_and_marker_the_same_in_every_figure(tmp_path):
    lines = _method_lines(plot_curves(_curves(), tmp_path / "all.png", "gradient_sign"))
    assert list(lines) == [ROW_LABELS[m] for m in METHODS]
    styles = [(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines.values()]
    assert len({colour for colour, _, _ in styles}) == len(METHODS)
    assert len({marker for _, _, marker in styles}) == len(METHODS)  # apart in greyscale too
    assert not {marker for _, _, marker in styles} & {"o", "x"}  # those mark the paper and the worst case
    assert len({linestyle for _, linestyle, _ in styles}) > 1

    figure5 = _method_lines(plot_curves(_curves(), tmp_path / "f5.png", "gaussian",
                                        models=("no_method", "low_pass", "dae")))
    for label, line in figure5.items():
        same = lines[label]
        assert (line.get_color(), line.get_linestyle(), line.get_marker()) == (
            same.get_color(), same.get_linestyle(), same.get_marker()), label
    style = method_style("dae")
    assert (figure5["DAE"].get_color(), figure5["DAE"].get_marker()) == (style["color"], style["marker"])


def test_the_papers_values_and_the_worst_case_are_markers_in_the_methods_colour(tmp_path):
    curves = _curves()
    figure = plot_curves(curves, tmp_path / "all.png", "gradient_sign")
    paper = {colour: (x, y) for colour, x, y in _markers(figure, "o")}
    worst = {colour: (x, y) for colour, x, y in _markers(figure, "x")}
    for model in METHODS:
        colour = method_style(model)["color"]
        if model in PAPER_TABLE2:
            assert paper[colour] == (list(TABLE_DISTORTIONS), list(PAPER_TABLE2[model][1])), model
        else:
            assert colour not in paper, model  # PGD training is not in the paper's table
        levels = curves.worst_case.per_model[model].levels
        np.testing.assert_allclose(worst[colour], ([0.1, 0.2], [100 * lv.error for lv in levels]))
    assert len(paper) == len(PAPER_TABLE2) and len(worst) == len(METHODS)


def _events(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    events = EventAccumulator(str(logdir), size_guidance={"tensors": 0}).Reload()
    return {tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]
            for tag in events.Tags()["tensors"] if tag != "steps" and tag != "table2"}


@pytest.mark.slow  # measured over 2.5 s: kept out of the fast loop
def test_the_experiment_writes_its_figures_logs_by_distortion_and_refuses_to_overwrite(tmp_path):
    from keras_fool.cli import main

    out, logdir = tmp_path / "run", tmp_path / "logs"
    arguments = ["experiment", "robustness", "--quick", "--out", str(out), "--test-images", "40", "--levels", "3",
                 "--diagnostic-images", "0", "--attacks", "fgsm"]
    result = CliRunner().invoke(main, arguments + ["--logdir", str(logdir), "--methods", "no_method,low_pass"])
    assert result.exit_code == 0, result.output
    for stem in ("curves_gradient_sign", "curves_gaussian", "figure5_preprocessing_gradient_sign",
                 "figure6_preprocessing_gaussian"):
        for fmt in ("png", "svg"):
            assert (out / f"{stem}.{fmt}").is_file() and str(out / f"{stem}.{fmt}") in result.output, (stem, fmt)
    assert not list(out.glob("figure3_*")) and not list(out.glob("figure7_*"))  # no dropout, no committee run

    # TensorBoard: every point stepped by its distortion in thousandths, read back from the event file.
    with open(out / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    events = _events(logdir / out.name)
    for model in ("no_method", "low_pass"):
        for noise_type in ("gradient_sign", "gaussian", "worst_case"):
            points = [r for r in rows if r["model"] == model and r["noise_type"] == noise_type]
            logged = events[f"error_pct_by_dist_x1000/{noise_type}/{model}"]
            assert [step for step, _ in logged] == [round(1000 * float(r["distortion"])) for r in points]
            np.testing.assert_allclose([v for _, v in logged], [100 * float(r["error"]) for r in points], rtol=1e-5)
        assert [step for step, _ in events[f"error_pct_by_dist_x1000/worst_case/{model}"]] == [100, 200]
    paper = events["error_pct_by_dist_x1000/paper_table2/no_method"]
    assert [step for step, _ in paper] == [0, 100, 200]
    np.testing.assert_allclose([v for _, v in paper], PAPER_TABLE2["no_method"][1], rtol=1e-6)
    gaussian = [r for r in rows if r["model"] == "low_pass" and r["noise_type"] == "gaussian"]
    assert events["strength_by_dist_x1000/gaussian/low_pass"] == [
        (round(1000 * float(r["distortion"])), pytest.approx(float(r["strength"]))) for r in gaussian]

    # The folder now holds results: refused in one sentence, before anything is touched.
    summary = (out / "summary.json").read_bytes()
    again = CliRunner().invoke(main, arguments + ["--methods", "no_method"])
    assert again.exit_code == 2, again.output
    assert again.stderr.strip().splitlines() == [f"Error: {out} already holds a run; pass --overwrite to replace it."]
    assert (out / "summary.json").read_bytes() == summary
    # With --overwrite the folder passes: what stops this run is its (bad) list of methods.
    forced = CliRunner().invoke(main, arguments + ["--overwrite", "--methods", "no_method,magic"])
    assert forced.exit_code == 2 and "magic" in forced.stderr and "already holds" not in forced.stderr
