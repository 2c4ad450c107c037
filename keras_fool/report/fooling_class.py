"""The fooling-class experiment's Table S2, Markdown, figure, ``summary.json`` and files (supplement C of
Nguyen et al. 2015).

Renders what :func:`keras_fool.experiments.fooling_class.compute_fooling_class` returns (a
``FoolingClassResult``), after every iteration.
"""

from __future__ import annotations

from keras_fool.io import save_json, save_npz, save_text
from keras_fool.report.figures import new_figure, save_figure
from keras_fool.report.papers import PAPER_TABLE_S2
from keras_fool.report.tables import format_number, markdown_table, real_confidence_markdown, save_csv, with_paper

__all__ = ["TABLE_S2_COLUMNS", "fooling_class_markdown", "fooling_class_summary", "plot_median_confidence",
           "table_s2_markdown", "write_fooling_class"]

TABLE_S2_COLUMNS = ("iteration", "error_pct", "mnist_error_pct", "train", "val", "score_pct", "fooled_99_pct",
                    "runs", "fooling_share_pct", "real_all_pct", "real_correct_pct", "real_wrong_pct", "real_wrong",
                    "train_seconds", "evolve_seconds", "paper_error_pct", "paper_mnist_error_pct", "paper_train",
                    "paper_val", "paper_score_pct")


def table_s2_markdown(rows):
    """Table S2 as Markdown: ours, the paper's value in parentheses (iterations 1-15).

    Args:
        rows: dicts with the :data:`TABLE_S2_COLUMNS`.

    Returns:
        A Markdown table (a string).
    """
    return markdown_table(
        ("i", "Error %", "MNIST error %", "Train", "Val", "Score %", ">= 99%", "runs"),
        [(row["iteration"], with_paper(row["error_pct"], row.get("paper_error_pct")),
          with_paper(row["mnist_error_pct"], row.get("paper_mnist_error_pct")),
          f"{row['train']} ({row.get('paper_train') or '-'})", f"{row['val']} ({row.get('paper_val') or '-'})",
          with_paper(row["score_pct"], row.get("paper_score_pct"), confidence=True),
          format_number(row["fooled_99_pct"], 1), row["runs"]) for row in rows])


def plot_median_confidence(rows, path, label="ours"):
    """Plot the median confidence (%) of newly evolved images per iteration, ours and the paper's (a PNG).

    Args:
        rows: dicts with ``iteration`` and ``score_pct``.
        path: the PNG file.
        label: the legend entry of our line.
    """
    figure = new_figure()
    axes = figure.add_subplot(1, 1, 1)
    axes.plot([r["iteration"] for r in rows], [r["score_pct"] for r in rows], marker="o", label=label)
    paper = [p for p in PAPER_TABLE_S2 if p[0] <= max(r["iteration"] for r in rows)]
    axes.plot([p[0] for p in paper], [p[5] for p in paper], marker="s", linestyle="--",
              label="Nguyen et al. 2015, Table S2 (CPPN encoding)")
    axes.set_xlabel("iteration i (DNN_i)")
    axes.set_ylabel("median confidence of evolved images (%)")
    axes.set_ylim(0, 102)
    axes.set_title("Fooling-class retraining: can DNN_i still be fooled?")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    figure.tight_layout()
    save_figure(path, figure)


def fooling_class_summary(result):
    """The dict ``summary.json`` holds: the configuration and Table S2's rows so far."""
    return {"config": result.config, "rows": result.rows, "data_seconds": round(result.data_seconds, 2),
            "replicas": result.replicas}


def write_fooling_class(out, board, result, markdown, summary):
    """After an iteration: its TensorBoard scalars, then every output file rewritten.

    Returns:
        The files written (``board`` writes only where it is enabled).
    """
    row = result.rows[-1]
    board.scalars({"error/validation_pct": row["error_pct"], "error/mnist_pct": row["mnist_error_pct"],
                   "confidence/median_fooling_pct": row["score_pct"], "confidence/fooled_99_pct": row["fooled_99_pct"],
                   "confidence/median_real_pct": row["real_all_pct"], "size/train": row["train"],
                   "size/val": row["val"], "seconds/train": row["train_seconds"],
                   "seconds/evolve": row["evolve_seconds"]}, row["iteration"])
    if out is None:  # another worker of a cluster: nothing written
        return []
    files = [out / "table_s2.md", out / "table_s2.csv", out / "median_confidence.png", out / "summary.json",
             out / "fooling_images.npz", out / "models"]
    save_text(files[0], markdown)
    save_csv(files[1], result.rows, TABLE_S2_COLUMNS)
    plot_median_confidence(result.rows, files[2], label=f"ours ({result.config['encoding']} encoding)")
    save_json(files[3], summary)
    save_npz(files[4], train=result.fooling_train, val=result.fooling_val)
    return files


def fooling_class_markdown(result):
    """``table_s2.md``: the options, Table S2 beside the paper's and the real images' confidence per DNN_i."""
    config, rows = result.config, result.rows
    intro = (
        f"# Fooling-class retraining (supplement C, Table S2)\n\n"
        f"DNN_1 = `{config['model']}`; {config['encoding']} encoding, {config['generations']} generations of "
        f"{config['population']}; M = {config['images_per_iteration']} images per iteration (6M + M the first time); "
        f"{'from scratch' if config['from_scratch'] else 'warm-started'}, {config['train_steps']} steps per network; "
        f"{config['train_images']} MNIST training and {config['test_images']} test images. The paper's value in "
        f"parentheses. Error: on the MNIST test images plus the validation fooling images (class 11); Score: median "
        f"confidence of the images evolved against DNN_i (last generation, classes 0-9); >= 99%: share of those at "
        f">= 99%. Confidences are truncated to two decimals (100.00: a probability of exactly 1).\n\n"
    )
    real = ("\n## Confidence on real images (supplement F)\n\nMedian top-1 confidence (%) of DNN_i on the MNIST "
            "test images, and of the images evolved against it.\n\n")
    entries = [(f"DNN_{r['iteration']}", {"all_pct": r["real_all_pct"], "correct_pct": r["real_correct_pct"],
                                           "wrong_pct": r["real_wrong_pct"], "wrong": r["real_wrong"]},
                r["score_pct"]) for r in rows]
    return intro + table_s2_markdown(rows) + real + real_confidence_markdown(entries)
