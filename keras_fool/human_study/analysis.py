"""The study's statistics, table and Figure-8-style plot (NumPy and Matplotlib, no TensorFlow).

As in the paper (section 4.2), each participant contributes one accuracy per condition (their
share of correct answers among that condition's images) and the group's mean per condition is
shown with a 95% confidence interval. We use the **Student t interval** of the mean:
``mean +- t(0.975, n - 1) * sd / sqrt(n)`` with ``sd`` the sample standard deviation (``n - 1`` in
the denominator), clipped to [0, 1] because it is an accuracy. The LeNets are summarised the same
way over models (each model one accuracy per condition). With ``n = 1`` there is no interval.
"""

from __future__ import annotations

import math

import numpy as np

from keras_fool.report.figures import new_figure
from keras_fool.report import tables
from keras_fool.validation import check_int, check_number

__all__ = [
    "GROUPS",
    "mean_interval",
    "participant_accuracies",
    "plot_figure8",
    "markdown_table",
    "student_t_cdf",
    "student_t_quantile",
    "summarize",
]

# Groups of the summary, in the order of tables and legends: (key, how tables and plots name it).
GROUPS = {
    "people": "people",
    "simulated": "SIMULATED participants, not people",
    "lenets_own_fgsm": "LeNets, FGSM against each LeNet",
    "lenets_shown_images": "LeNets, the images people see",
}


# --------------------------------------------------------------------------- Student t


def _continued_fraction(a, b, x):
    """The continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            return h
    raise ArithmeticError(f"The incomplete beta function did not converge (a={a}, b={b}, x={x}).")


def _incomplete_beta(a, b, x):
    """The regularised incomplete beta function I_x(a, b) for x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t, df):
    """P(T <= t) for Student's t distribution with ``df`` degrees of freedom."""
    df = check_number("df", df, strict=True)
    t = float(t)
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(probability, df):
    """The t with ``P(T <= t) = probability`` for Student's t with ``df`` degrees of freedom (bisection).

    Raises:
        TypeError, ValueError: ``probability`` not in (0, 1) or ``df`` not positive.
    """
    probability = check_number("probability", probability, strict=True, maximum=1.0)
    if probability >= 1.0:
        raise ValueError(f"probability must be below 1. Received: probability={probability:g}")
    df = check_number("df", df, strict=True)
    if probability < 0.5:
        return -student_t_quantile(1.0 - probability, df)
    high = 1.0
    while student_t_cdf(high, df) < probability:
        high *= 2.0
        if high > 1e12:
            raise ArithmeticError(f"No t quantile found for probability={probability}, df={df}.")
    low = 0.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if student_t_cdf(middle, df) < probability:
            low = middle
        else:
            high = middle
        if high - low < 1e-13 * max(1.0, high):
            break
    return 0.5 * (low + high)


def mean_interval(values, confidence=0.95, bounds=(0.0, 1.0)):
    """Mean of ``values`` with the Student t confidence interval of the mean.

    Args:
        values: 1-D numbers (one accuracy per participant, or per model).
        confidence: the interval's coverage, in (0, 1).
        bounds: the interval is clipped to these (accuracies lie in [0, 1]); None to keep it as is.

    Returns:
        A dict: ``n``, ``mean``, ``sd`` (sample standard deviation), ``ci_low``, ``ci_high``
        (NaN where undefined: no values, or one value for sd and the interval).
    """
    values = np.asarray(values, np.float64).ravel()
    confidence = check_number("confidence", confidence, strict=True, maximum=1.0)
    n = len(values)
    nan = float("nan")
    if n == 0:
        return {"n": 0, "mean": nan, "sd": nan, "ci_low": nan, "ci_high": nan}
    mean = float(values.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "sd": nan, "ci_low": nan, "ci_high": nan}
    sd = float(values.std(ddof=1))
    half = student_t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"n": n, "mean": mean, "sd": sd, "ci_low": low, "ci_high": high}


# --------------------------------------------------------------------------- accuracies


def participant_accuracies(rows):
    """One accuracy per participant and condition.

    Args:
        rows: answer rows (dicts with ``participant``, ``simulated``, ``condition_index`` and
            ``correct``), as :meth:`StudyStore.answer_rows` and :func:`simulate_answers` give them.

    Returns:
        A list of dicts ``participant``, ``simulated``, ``condition_index``, ``n``, ``correct``,
        ``accuracy``, ordered by participant (first appearance) and condition.
    """
    counts = {}
    for row in rows:
        key = (row["participant"], bool(row.get("simulated", False)), int(row["condition_index"]))
        n, correct = counts.get(key, (0, 0))
        counts[key] = (n + 1, correct + bool(row["correct"]))
    order = {}
    for participant, simulated, _ in counts:
        order.setdefault((participant, simulated), len(order))
    return [
        {"participant": p, "simulated": s, "condition_index": c, "n": n, "correct": k, "accuracy": k / n}
        for (p, s, c), (n, k) in sorted(counts.items(), key=lambda item: (order[item[0][:2]], item[0][2]))
    ]


def summarize(accuracies, num_conditions, confidence=0.95):
    """Mean and interval per condition over the participants (or models) of ``accuracies``.

    Args:
        accuracies: dicts with ``condition_index`` and ``accuracy`` (one per participant or model
            and condition).
        num_conditions: conditions of the study.
        confidence: coverage of the intervals.

    Returns:
        A list, one :func:`mean_interval` dict per condition (index = condition).
    """
    num_conditions = check_int("num_conditions", num_conditions)
    per_condition = [[] for _ in range(num_conditions)]
    for row in accuracies:
        per_condition[int(row["condition_index"])].append(float(row["accuracy"]))
    return [mean_interval(values, confidence) for values in per_condition]


# --------------------------------------------------------------------------- table and figure


def _cell(stats):
    if stats is None or stats["n"] == 0:
        return "–"
    if math.isnan(stats["ci_low"]):
        return f"{100 * stats['mean']:.1f}%"
    return f"{100 * stats['mean']:.1f}% [{100 * stats['ci_low']:.1f}, {100 * stats['ci_high']:.1f}]"


def markdown_table(conditions, distortions, summaries, group_sizes, notes=()):
    """Figure 8 as a Markdown table: one row per condition, one column per group.

    Args:
        conditions: the study's :class:`Condition` tuple.
        distortions: eq. 2 distortion of each condition.
        summaries: group key -> list of per-condition :func:`mean_interval` dicts (groups left
            out are not shown).
        group_sizes: group key -> participants or models in the group.
        notes: lines printed under the table.

    Returns:
        The table as a string.
    """
    groups = [g for g in GROUPS if g in summaries]
    lines = []
    if "simulated" in summaries:
        lines += ["> **This table includes SIMULATED participants; their column is not data from people.**", ""]
    header = ["condition", "distortion"] + [f"{GROUPS[g]} (n={group_sizes[g]})" for g in groups]
    rows = [[condition.title, f"{distortions[k]:.3f}"] + [_cell(summaries[g][k]) for g in groups]
            for k, condition in enumerate(conditions)]
    lines += tables.markdown_table(header, rows, align="l" + "r" * (len(header) - 1)).splitlines()
    if notes:
        lines.append("")
        lines += [f"* {note}" for note in notes]
    return "\n".join(lines) + "\n"


_STYLE = {
    "people": {"color": "#1f5fbf", "marker": "o", "linestyle": "-"},
    "simulated": {"color": "#7a7a7a", "marker": "s", "linestyle": ":"},
    "lenets_own_fgsm": {"color": "#c0392b", "marker": "^", "linestyle": "-"},
    "lenets_shown_images": {"color": "#e67e22", "marker": "v", "linestyle": "--"},
}


def plot_figure8(conditions, summaries, group_sizes, title="Human study (Uličný et al., Figure 8)"):
    """Accuracy against noise level, Gaussian and FGSM side by side, each group with its 95% band.

    Clean images are level 0 of both panels. On Gaussian noise the two LeNet groups see the very
    same images, so their curves coincide there.

    Returns:
        A Matplotlib ``Figure`` (no pyplot state is touched).
    """
    figure = new_figure(10.0, 5.4, dpi=110)
    axes = figure.subplots(1, 2, sharey=True)
    clean = [k for k, c in enumerate(conditions) if c.noise == "clean" and c.count > 0]
    panels = (("gaussian", "Gaussian noise", "sigma (σ)"), ("fgsm", "Gradient sign noise (FGSM)", "epsilon (ε)"))
    handles = {}
    for ax, (noise, heading, xlabel) in zip(axes, panels):
        indices = clean + [k for k, c in enumerate(conditions) if c.noise == noise]
        if not indices:
            ax.set_visible(False)
            continue
        x = np.array([conditions[k].level for k in indices])
        for group in GROUPS:
            if group not in summaries:
                continue
            stats = [summaries[group][k] for k in indices]
            mean = np.array([s["mean"] for s in stats])
            if np.all(np.isnan(mean)):
                continue
            low = np.array([s["ci_low"] for s in stats])
            high = np.array([s["ci_high"] for s in stats])
            style = _STYLE[group]
            (line,) = ax.plot(x, mean, linewidth=2, markersize=5, **style)
            handles.setdefault(group, line)
            if np.any(~np.isnan(low)):
                ax.fill_between(x, low, high, color=style["color"], alpha=0.15, linewidth=0,
                                hatch="//" if group == "simulated" else None)
        ax.set_title(heading)
        ax.set_xlabel(xlabel + ("   (0 = clean)" if clean else ""))
        ax.set_xticks(x)
        ax.set_xticklabels([f"{v:g}" for v in x])
        ax.set_ylim(0.0, 1.02)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("accuracy (mean, 95% CI)")
    if handles:
        figure.legend([handles[g] for g in GROUPS if g in handles],
                      [f"{GROUPS[g]} (n={group_sizes[g]})" for g in GROUPS if g in handles],
                      loc="lower center", ncol=2, fontsize=9, frameon=False)
    if "simulated" in summaries:
        title += " — includes SIMULATED participants, not people"
    if "people" in summaries and group_sizes.get("people", 0) == 0:
        title += " — no participants yet"
    figure.suptitle(title, fontsize=11, color="#b00000" if "simulated" in summaries else "black")
    figure.tight_layout(rect=(0.0, 0.11, 1.0, 1.0))
    return figure
