"""The transfer experiment's Table S1, its Markdown, ``summary.json`` and files (supplement A of Nguyen et al. 2015).

Renders what :func:`keras_fool.experiments.transfer.compute_transfer` returns (a ``TransferResult``).
"""

from __future__ import annotations

from keras_fool.evolution.outputs import runs_montage
from keras_fool.io import save_json, save_npz, save_png, save_text
from keras_fool.report.papers import PAPER_TABLE_S1
from keras_fool.report.tables import (
    format_number,
    markdown_table,
    real_confidence_markdown,
    save_csv,
    with_paper,
)

__all__ = ["TABLE_S1_COLUMNS", "TABLE_S1_LABELS", "table_s1_rows", "transfer_markdown", "transfer_summary",
           "write_transfer"]

TABLE_S1_LABELS = {
    "top1_match_pct": "Top-1 matches",
    "both_99_pct": "Top-1 matches scoring >= 99% on both",
    "higher_on_original_pct": "Top-1 matches scoring higher on the original DNN",
}
TABLE_S1_COLUMNS = ("measure", "a_on_b_images", "b_on_a_images", "average", "paper_a_on_b_images",
                    "paper_b_on_a_images", "paper_average")
_DIRECTION_TITLES = (("a_on_b_images", "DNN_A on DNN_B images"), ("b_on_a_images", "DNN_B on DNN_A images"))


def table_s1_rows(result):
    """Table S1's rows (dicts with :data:`TABLE_S1_COLUMNS`): ours per direction and on average, the paper's beside."""
    rows = []
    for key in TABLE_S1_LABELS:
        paper = PAPER_TABLE_S1[key]
        rows.append({"measure": key, "a_on_b_images": result.directions["a_on_b_images"][key],
                     "b_on_a_images": result.directions["b_on_a_images"][key], "average": result.average[key],
                     "paper_a_on_b_images": paper[0], "paper_b_on_a_images": paper[1], "paper_average": paper[2]})
    return rows


def _fooling_medians(result):
    return {k: 100 * v.median_confidence for k, v in result.evolved.items()}


def _ties(result):
    return {k: v["tied_pct"] for k, v in result.directions.items()}


def transfer_summary(result, rows):
    """The dict ``summary.json`` holds: the configuration, Table S1, ties, medians, per-class matches, real images."""
    config = result.config
    names = {"a": config["model_a"], "b": config["model_b"]}
    return {
        "config": dict(config),
        "images_per_network": len(result.evolved["a"].images),
        "table_s1": {row["measure"]: {k: row[k] for k in ("a_on_b_images", "b_on_a_images", "average")}
                     for row in rows},
        "tied_pct": _ties(result),
        "fooling_median_pct": {names[k]: v for k, v in _fooling_medians(result).items()},
        "top1_match_pct_by_class": result.per_class,
        "real_images": {names[k]: v for k, v in result.real.items()},
        "evolve_seconds": round(result.evolve_seconds, 2),
        "replicas": result.replicas,
    }


def transfer_markdown(result, rows):
    """``table_s1.md``: Table S1 beside the paper's, ties, matches by class and the real images' confidence."""
    config, ties, fooling = result.config, _ties(result), _fooling_medians(result)
    names = {"a": config["model_a"], "b": config["model_b"]}
    which = ("the last generation's elites" if config["images"] == "last"
             else "the elites after the first and the last generation")
    table = markdown_table(
        ("measure", "DNN_A on DNN_B images", "DNN_B on DNN_A images", "average"),
        [(TABLE_S1_LABELS[row["measure"]], *(with_paper(row[k], row[f"paper_{k}"], 1)
                                              for k in ("a_on_b_images", "b_on_a_images", "average")))
         for row in rows])
    lines = [
        "# Transfer of fooling images between two networks (supplement A, Table S1)\n",
        f"DNN_A = `{names['a']}`, DNN_B = `{names['b']}`; {len(result.evolved['a'].images)} images per network "
        f"({which} of {config['runs']} runs of {config['generations']} generations of {config['population']}, "
        f"{config['encoding']} encoding). \"DNN_A on DNN_B images\": the images evolved against DNN_B, shown to "
        "DNN_A. In %; the paper's MNIST numbers (CPPN encoding, 300 images per network) in parentheses.\n",
        table,
    ]
    if any(ties.values()):
        lines.append("Top-1 matches given exactly the same confidence by both networks (both 1.0: the float32 "
                     "softmax saturates), counted as not higher on the original: "
                     + ", ".join(f"{format_number(ties[k], 1)}% ({label})" for k, label in _DIRECTION_TITLES)
                     + ".\n")
    lines.append("Top-1 matches by class (both directions): "
                 + ", ".join(f"{c}: {v:.0f}%" for c, v in result.per_class.items()) + ".\n")
    lines.append("## Confidence on real images (supplement F)\n")
    lines.append(real_confidence_markdown([(f"DNN_{k.upper()} `{names[k]}`", result.real[k], fooling[k])
                                           for k in ("a", "b")]))
    return "\n".join(lines)


def write_transfer(out, board, result, rows, markdown, summary):
    """Write ``table_s1.md``, ``.csv``, ``summary.json``, ``transfer_images.npz``, the montages and TensorBoard.

    Returns:
        The files written, then the TensorBoard folder if ``board`` writes one.
    """
    evolved, config = result.evolved, result.config
    save_text(out / "table_s1.md", markdown)
    save_csv(out / "table_s1.csv", rows, TABLE_S1_COLUMNS)
    save_npz(out / "transfer_images.npz", images_a=evolved["a"].images, images_b=evolved["b"].images,
             labels_a=evolved["a"].labels, labels_b=evolved["b"].labels, generations_a=evolved["a"].generations,
             generations_b=evolved["b"].generations)
    save_json(out / "summary.json", summary)
    for direction, stats in result.directions.items():
        board.scalars({f"{direction}/{k}": stats[k] for k in PAPER_TABLE_S1}, 0)
    board.text("table_s1", markdown)
    board.close()
    for key in ("a", "b"):
        last = evolved[key].last()
        save_png(out / f"montage_{key}.png", runs_montage(
            last.images, last.labels, last.runs, last.confidences, result.class_names[key],
            title=f"DNN_{key.upper()} = {config[f'model_{key}']}: images evolved against it ({config['encoding']} "
                  f"encoding, {config['generations']} generations)"))
    files = [out / name for name in ("table_s1.md", "table_s1.csv", "summary.json", "transfer_images.npz",
                                     "montage_a.png", "montage_b.png")]
    return files + ([board.logdir] if board.enabled else [])
