"""How methods are named and drawn, once: the fooling methods' titles and colours, the robustness rows'
labels, colours, line styles and markers."""

from __future__ import annotations

from keras_fool.report.papers import PAPER_TABLE2

__all__ = [
    "FOOLING_COLOURS",
    "FOOLING_METHOD_TITLES",
    "NOISE_COLOURS",
    "PAPER_MARKER",
    "ROBUSTNESS_METHODS",
    "ROW_LABELS",
    "SHORT_NOISE_TITLES",
    "WORST_CASE_MARKER",
    "fooling_method_title",
    "method_style",
    "style_index",
]

# The ways to make fooling images (ImageNet experiment, audit figures, report and verdict).
# Lower case, to sit inside a sentence; fooling_method_title(..., capital=True) starts a table cell.
FOOLING_METHOD_TITLES = {"direct": "direct encoding", "cppn": "CPPN encoding", "nes": "NES over pixels",
                         "gradient": "gradient ascent"}
FOOLING_COLOURS = {"direct": "#1f77b4", "cppn": "#d62728", "nes": "#9467bd", "gradient": "#2ca02c"}
# The audit's robustness figure: each noise type's curve and the worst case.
NOISE_COLOURS = {"gaussian": "#7f7f7f", "gradient_sign": "#1f77b4", "worst": "#d62728"}
# The noise types' short names (the audit's figure legend and table); the experiment's figure titles
# use evaluation.curves.NOISE_TITLES.
SHORT_NOISE_TITLES = {"gaussian": "Gaussian noise", "gradient_sign": "FGSM"}


def fooling_method_title(method, capital=False):
    """The title of a fooling method (``direct``, ``cppn``, ``gradient``), capitalised for a heading if asked."""
    title = FOOLING_METHOD_TITLES[method]
    return title[0].upper() + title[1:] if capital else title


# The robustness experiment's rows: Table 2's labels in the paper's order, then ours.
ROW_LABELS = {key: label for key, (label, _) in PAPER_TABLE2.items()}
ROW_LABELS["pgd_training"] = "PGD adversarial training (beyond the paper)"
ROBUSTNESS_METHODS = tuple(ROW_LABELS)

# How each method looks in every figure: its own colour, line style and marker, so that the curves
# stay apart in greyscale too, and the same method looks the same in every figure. The markers
# leave out "o" (the paper's values) and "x" (the worst case).
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf")
_LINE_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("s", "^", "v", "D", "*", "<", ">", "p", "P", "h")
PAPER_MARKER = {"marker": "o", "markersize": 9, "markerfacecolor": "none", "markeredgewidth": 1.6, "linestyle": "none"}
WORST_CASE_MARKER = {"marker": "x", "markersize": 9, "markeredgewidth": 2, "linestyle": "none"}


def style_index(model, index):
    """The style number of ``model``: its place in :data:`ROBUSTNESS_METHODS`, else ``index`` past them."""
    return ROBUSTNESS_METHODS.index(model) if model in ROBUSTNESS_METHODS else len(ROBUSTNESS_METHODS) + index


def method_style(model, index=0):
    """Colour, line style and marker of a method's curve: ``{"color", "linestyle", "marker"}``.

    A method of :data:`ROBUSTNESS_METHODS` always gets the same style (its place there); any other
    name gets the style of its ``index`` (its place among the plotted models) past the methods'.
    """
    i = style_index(model, index)
    return {"color": _COLOURS[i % len(_COLOURS)], "linestyle": _LINE_STYLES[i % len(_LINE_STYLES)],
            "marker": _MARKERS[i % len(_MARKERS)]}
