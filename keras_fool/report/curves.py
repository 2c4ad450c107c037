"""Error-against-distortion curves presented: Table 2 (Markdown and CSV), the curves' CSV, Figures 3-7.

:func:`table_markdown`, :func:`write_curves_csv`, :func:`write_table_csv`, :func:`plot_curves` and
:func:`write_figures` turn any :class:`~keras_fool.evaluation.curves.RobustnessCurves` (with its
worst case, if it has one) into files; :func:`checks_markdown` and :func:`cascade_markdown`
describe a worst case. Used by the robustness experiment and reusable by the audit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_fool.evaluation.curves import NOISE_TITLES
from keras_fool.report.figures import new_figure, save_figure
from keras_fool.report.papers import PAPER_TABLE2
from keras_fool.report.tables import markdown_table, save_csv
from keras_fool.report.titles import PAPER_MARKER, ROW_LABELS, WORST_CASE_MARKER, method_style, style_index

__all__ = [
    "FIGURE_FORMATS",
    "PAPER_FIGURES",
    "TABLE_DISTORTIONS",
    "cascade_markdown",
    "checks_markdown",
    "plot_curves",
    "table2_text",
    "table_markdown",
    "write_curves_csv",
    "write_figures",
    "write_table_csv",
]

TABLE_DISTORTIONS = (0.0, 0.1, 0.2)

def write_curves_csv(curves, path):
    """Write every point of the curves as CSV, atomically.

    Columns: ``model, noise_type, level, strength, distortion, error`` (error as a fraction),
    one row per model, noise type and level (M * T * L rows); then, if the curves carry a worst
    case, one row per model and level with noise type ``worst_case`` (strength: the attacks'
    L-infinity radius; distortion: the level).
    """
    rows = [(model, noise_type, level, f"{strength:.6g}", f"{curves.distortion[m, t, level]:.6g}",
             f"{curves.error[m, t, level]:.6g}")
            for m, model in enumerate(curves.models)
            for t, noise_type in enumerate(curves.noise_types)
            for level, strength in enumerate(curves.strengths[t])]
    if curves.worst_case is not None:
        rows += [(model, "worst_case", j, f"{level.eps:.6g}", f"{level.distortion:.6g}", f"{level.error:.6g}")
                 for model in curves.worst_case.models
                 for j, level in enumerate(curves.worst_case.per_model[model].levels)]
    save_csv(path, rows, ("model", "noise_type", "level", "strength", "distortion", "error"))


def _worst_distortions(curves, distortions):
    """The distortions (> 0) of ``distortions`` at which the curves carry a worst case."""
    if curves.worst_case is None:
        return ()
    return tuple(d for d in distortions if d > 0 and any(abs(d - w) < 1e-9 for w in curves.worst_case.distortions))


def write_table_csv(curves, path, noise_type="gradient_sign", distortions=TABLE_DISTORTIONS):
    """Write the Table 2 numbers (error in % at each distortion) as CSV, atomically.

    Columns: ``model`` then ``error_pct_at_<d>`` for every distortion (read off the curves); NaN
    where a curve does not reach that distortion. With a worst case, then ``worst_case_pct_at_<d>``
    for every distortion above 0 it was evaluated at (NaN for a model it was not run on).
    """
    values = 100.0 * curves.error_at(distortions, noise_type)
    worst = _worst_distortions(curves, distortions)
    worst_values = 100.0 * curves.worst_case_error_at(worst)
    rows = [[model] + [f"{v:.2f}" for v in row] + [f"{v:.2f}" for v in extra]
            for model, row, extra in zip(curves.models, values, worst_values)]
    save_csv(path, rows, ["model"] + [f"error_pct_at_{d:g}" for d in distortions]
             + [f"worst_case_pct_at_{d:g}" for d in worst])


def table_markdown(curves, noise_type="gradient_sign", distortions=TABLE_DISTORTIONS, labels=None, reference=None):
    """Table 2 as Markdown: error (%) of each model at each distortion, read off its curve.

    When the curves carry a worst case (and ``noise_type`` is the gradient-sign one), every
    distortion it was evaluated at gets a second column, the worst-case error, beside the FGSM one.

    Args:
        curves: a :class:`RobustnessCurves`.
        noise_type: which curves (the paper's Table 2 is gradient-sign noise).
        distortions: the D distortion columns.
        labels: optional dict model name -> row label.
        reference: optional dict model name -> D reference values (e.g. the paper's) shown in
            parentheses after ours (FGSM columns only).

    Returns:
        The table as a string (a header line, a rule and one line per model). "n/r" marks a
        distortion the curve did not reach, "-" a worst case not evaluated.
    """
    values = 100.0 * curves.error_at(distortions, noise_type)
    worst = _worst_distortions(curves, distortions) if noise_type == "gradient_sign" else ()
    worst_values = 100.0 * curves.worst_case_error_at(worst)
    headers = []
    for d in distortions:
        headers.append(f"dist={d:g} FGSM" if d in worst else f"dist={d:g}")
        if d in worst:
            headers.append(f"dist={d:g} worst case")
    rows = []
    for m, (model, row) in enumerate(zip(curves.models, values)):
        cells = [(labels or {}).get(model, model)]
        for j, (d, value) in enumerate(zip(distortions, row)):
            cell = "n/r" if np.isnan(value) else f"{value:.2f}"
            if reference and model in reference:
                cell += f" ({reference[model][j]:g})"
            cells.append(cell)
            if d in worst:
                w = worst_values[m, worst.index(d)]
                cells.append("-" if np.isnan(w) else f"**{w:.2f}**")
        rows.append(cells)
    return markdown_table(["Method", *headers], rows, align="l" + "r" * len(headers))


def checks_markdown(worst_case, labels=None):
    """The gradient-masking checks of every model as a Markdown table: yes / **NO** / not run, with numbers.

    Columns: the five checks of :func:`~keras_fool.evaluation.worst_case.masking_checks`; each cell
    is the answer and the numbers behind it (errors in %, levels separated by ``/``). Models
    evaluated without diagnostics are left out.
    """
    rows = [(name, worst_case.per_model[name].diagnostics) for name in worst_case.models
            if worst_case.per_model[name].diagnostics is not None]
    if not rows:
        return ""
    questions = [check.question for check in rows[0][1].checks]
    table = [[(labels or {}).get(name, name), diagnostics.images]
             + [f"{'**NO**' if c.passed is False else c.answer} ({c.short})" for c in diagnostics.checks]
             for name, diagnostics in rows]
    return markdown_table(["Method", "images", *questions], table, align="lr" + "l" * len(questions))


def cascade_markdown(worst_case, labels=None):
    """How each model's worst case came about: radius, then the images each attack fooled first, as Markdown.

    One row per model and level: the L-infinity radius, the clean errors, then per stage of the
    cascade ``fooled / attempted`` (transfer stages summed), Square's mean queries, the mean eq. 2
    distortion of the images an attack fooled, and the seconds.
    """
    def cell(level, prefix):
        stages = [s for s in level.stages if s == prefix or s.startswith(prefix + ":")]
        if not stages:
            return "-"
        return f"{sum(level.fooled[s] for s in stages)} / {level.attempted[stages[0]]}"

    rows = [[(labels or {}).get(name, name), f"{level.distortion:g}", f"{level.eps:.3f}", level.fooled["clean"]]
            + [cell(level, p) for p in ("fgsm", "pgd", "transfer", "square")]
            + [level.queries.get("mean", "-"),
               "-" if np.isnan(level.fooling_distortion) else f"{level.fooling_distortion:.3f}",
               f"{sum(level.seconds.values()):.0f}"]
            for name in worst_case.models for level in worst_case.per_model[name].levels]
    header = ["Method", "dist", "eps", "clean", "FGSM", "PGD", "transfer", "Square", "Square queries (mean)",
              "dist of fooling images", "seconds"]
    return markdown_table(header, rows, align="l" + "r" * (len(header) - 1))


def _worst_case_text(worst_case, flagged):
    lines = [
        "",
        f"Worst case: an image counts as an error if it is misclassified clean or any of "
        f"{', '.join(worst_case.attacks)} fools it (per image, a cascade: each attack only on the survivors of "
        f"the ones before). Each level's L-infinity radius is the model's FGSM eps of that distortion; "
        f"{worst_case.num_images} test images; PGD {worst_case.settings.pgd_steps} steps of "
        f"{worst_case.settings.pgd_step_fraction:g} eps, {worst_case.settings.pgd_restarts} start(s), losses "
        f"{' and '.join(worst_case.settings.pgd_losses)}; Square {worst_case.settings.square_queries} queries.",
        "",
        cascade_markdown(worst_case, ROW_LABELS),
        "Gradient-masking checks (every attack alone on the first images; errors in %, levels "
        f"{' / '.join(f'{d:g}' for d in worst_case.distortions)}). A **NO** means the gradient attacks miss "
        "what exists, and a low error is suspect.",
        "",
        checks_markdown(worst_case, ROW_LABELS),
    ]
    if flagged:
        lines += ["Flagged:", ""] + [f"* {ROW_LABELS.get(model, model)}: {check.question}: NO ({check.detail})"
                                     for model, check in flagged] + [""]
    return "\n".join(lines)


def table2_text(curves, flagged=(), gray_box=False):
    """``table2.md``: a paragraph, Table 2 beside the paper's and, with a worst case, its cascade and checks.

    Args:
        curves: a :class:`RobustnessCurves`, with its worst case if one was run.
        flagged: ``(model, check)`` of every gradient-masking check answered "no".
        gray_box: whether the pre-processing rows' FGSM direction came from the classifier behind them.
    """
    worst_case = curves.worst_case
    reference = {key: values for key, (_, values) in PAPER_TABLE2.items()}
    table = table_markdown(curves, labels=ROW_LABELS, reference=reference)
    intro = (
        "Error (%) on FGSM examples of the MNIST test set at average distortion dist (eq. 2), read off "
        f"the curves by linear interpolation; the paper's value in parentheses. {curves.num_images} test "
        f"images, {curves.strengths.shape[1]} levels per curve."
        + (" Gray box: the FGSM direction of the pre-processing rows comes from the classifier behind the "
           "front end, not from the defended model." if gray_box else "")
        + (f" Bold: the worst case over {', '.join(worst_case.attacks)} ({worst_case.num_images} images; below)."
           if worst_case is not None else "")
        + "\n\n"
    )
    return intro + table + (_worst_case_text(worst_case, flagged) if worst_case is not None else "")


def plot_curves(curves, path, noise_type="gradient_sign", title=None, models=None, also=()):
    """Plot error (%) against distortion, one line per model, like the paper's Figures 3-7.

    Every method is drawn in its :func:`method_style` and named by its Table 2 label
    (:data:`ROW_LABELS`). On the gradient-sign plot the paper's Table 2 values of a method (if it
    is one of the paper's) are hollow circles of the same colour at dist 0 / 0.1 / 0.2, and a
    model's worst case (if the curves carry one) is crosses of the same colour at its distortion
    levels. The legend, below the axes, explains both marker kinds; the figure grows with its rows.

    Args:
        curves: a :class:`RobustnessCurves`.
        path: the file to write (``.png``; its suffix picks the format).
        noise_type: which curves.
        title: the plot's title; the noise type's name and the number of test images by default.
        models: the models to draw, among the curves'; all of them by default.
        also: further formats written beside ``path`` under the same name, e.g. ``("svg",)``.

    Returns:
        The Matplotlib figure (already written).

    Raises:
        ValueError: an unknown noise type or model.
    """
    from matplotlib.lines import Line2D

    if noise_type not in curves.noise_types:
        raise ValueError(f"noise_type must be one of {curves.noise_types}. Received: noise_type={noise_type!r}")
    models = curves.models if models is None else tuple(models)
    unknown = [model for model in models if model not in curves.models]
    if unknown:
        raise ValueError(f"models must be among the curves' {list(curves.models)}. Received: {unknown}")
    t = curves.noise_types.index(noise_type)
    gradient_sign = noise_type == "gradient_sign"
    worst = curves.worst_case if gradient_sign else None
    paper = {key: values for key, (_, values) in PAPER_TABLE2.items()} if gradient_sign else {}
    handles, drew_paper, drew_worst = [], False, False
    figure = new_figure()
    axes = figure.add_subplot(1, 1, 1)
    for index, model in enumerate(models):
        m = curves.models.index(model)
        style = method_style(model, index)
        # Markers along the curve every tenth of the axes' diagonal, each method starting a little
        # further along, so that the markers of curves that lie on top of each other do not coincide.
        start = 0.01 * (style_index(model, index) % 10)
        (line,) = axes.plot(curves.distortion[m, t], 100.0 * curves.error[m, t], label=ROW_LABELS.get(model, model),
                            linewidth=1.5, markersize=5, markevery=(start, 0.1), **style)
        handles.append(line)
        if model in paper:
            axes.plot(TABLE_DISTORTIONS, paper[model], color=style["color"], **PAPER_MARKER)
            drew_paper = True
        if worst is not None and model in worst.per_model:
            levels = worst.per_model[model].levels
            axes.plot([lv.distortion for lv in levels], [100.0 * lv.error for lv in levels], color=style["color"],
                      **WORST_CASE_MARKER)
            drew_worst = True
    # Proxy entries that explain the two marker kinds, in black (the colour names the method).
    if drew_paper:
        handles.append(Line2D([], [], color="black", label="paper, Table 2", **PAPER_MARKER))
    if drew_worst:
        handles.append(Line2D([], [], color="black", label=f"worst case over {', '.join(worst.attacks)}",
                              **WORST_CASE_MARKER))
    axes.set_xlabel("average distortion per pixel, dist (eq. 2)")
    axes.set_ylabel("test error (%)")
    # A little room beyond 0 and 100 %, so that the markers of a saturated curve are not cut in half.
    axes.set_ylim(-2, 102)
    axes.set_yticks(range(0, 101, 20))
    axes.set_xlim(left=0)
    axes.grid(True, alpha=0.3)
    axes.set_title(title or f"{NOISE_TITLES[noise_type]}, {curves.num_images} test images")
    # The legend sits below the plotting area, in two columns; every row past the first makes the
    # figure taller instead of the axes smaller. Constrained layout keeps it clear of the axes.
    columns = 2 if len(handles) > 1 else 1
    rows = -(-len(handles) // columns)
    figure.set_size_inches(figure.get_figwidth(), figure.get_figheight() + 0.2 * (rows - 1))
    figure.set_layout_engine("constrained")
    figure.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize=8, frameon=False)
    save_figure(path, figure, also=also)
    return figure


# One figure per figure of the paper: (file stem, noise type, title, the methods it compares). The
# paper has no Inp-Dropout row in Table 2, so Figures 3-4 compare All-Dropout with the plain LeNet;
# Figure 7 adds the adversarially trained single model and PGD training to the paper's committees.
PAPER_FIGURES = (
    ("figure3_dropout_gradient_sign", "gradient_sign", "Fig. 3: dropout",
     ("no_method", "dropout")),
    ("figure4_dropout_gaussian", "gaussian", "Fig. 4: dropout",
     ("no_method", "dropout")),
    ("figure5_preprocessing_gradient_sign", "gradient_sign", "Fig. 5: pre-processing",
     ("no_method", "low_pass", "dae", "low_pass_dropout", "dae_dropout")),
    ("figure6_preprocessing_gaussian", "gaussian", "Fig. 6: pre-processing",
     ("no_method", "low_pass", "dae", "low_pass_dropout", "dae_dropout")),
    ("figure7_committees_gradient_sign", "gradient_sign", "Fig. 7: committees, adversarial training",
     ("no_method", "standard_committee", "adversarial_committee", "adversarial_training", "pgd_training")),
)
FIGURE_FORMATS = ("png", "svg")


def write_figures(curves, out):
    """Write every figure of the curves into the folder ``out``, each as PNG and SVG, atomically.

    ``curves_<noise type>`` holds every model; ``figure<N>_...`` (see :data:`PAPER_FIGURES`) the
    methods of one of the paper's figures that the curves hold, and is written only when they hold
    one besides ``no_method``. Such a file left by an earlier run that this one does not write is
    removed, so the folder never shows a figure of methods that were not run.

    Returns:
        The paths written.
    """
    out = Path(out)
    written = []
    for noise_type in curves.noise_types:
        path = out / f"curves_{noise_type}.{FIGURE_FORMATS[0]}"
        plot_curves(curves, path, noise_type, also=FIGURE_FORMATS[1:])
        written += [path.with_suffix("." + fmt) for fmt in FIGURE_FORMATS]
    for stem, noise_type, caption, methods in PAPER_FIGURES:
        chosen = tuple(method for method in methods if method in curves.models)
        paths = [out / f"{stem}.{fmt}" for fmt in FIGURE_FORMATS]
        if noise_type not in curves.noise_types or not set(chosen) - {"no_method"}:
            for stale in paths:
                stale.unlink(missing_ok=True)
            continue
        title = f"As the paper's {caption}\n{NOISE_TITLES[noise_type]}, {curves.num_images} test images"
        plot_curves(curves, paths[0], noise_type, title=title, models=chosen, also=FIGURE_FORMATS[1:])
        written += paths
    return written
