"""The ImageNet experiment's Markdown and Figure 1 (Nguyen et al. 2015: main text, supplements A.2 and B)."""

from __future__ import annotations

import numpy as np

from keras_fool.io import montage, save_json, save_png, save_text
from keras_fool.report.papers import PAPER_ENSEMBLE, PAPER_IMAGENET
from keras_fool.report.tables import format_confidence_pct, format_number, save_csv
from keras_fool.report.titles import FOOLING_METHOD_TITLES
from keras_fool.summaries import SummaryWriter

__all__ = ["CSV_COLUMNS", "imagenet_markdown", "write_figure1", "write_imagenet"]

_PAPER_ENSEMBLE_CLASSES_AT_90 = round(PAPER_ENSEMBLE["cells"] * PAPER_ENSEMBLE["at_90_pct"] / 100)  # 231


def write_figure1(path, rows, target, columns, second_name=None):
    """Figure 1 of the paper, our way: one row per method (and study), one column per class (the first ``columns``).

    The second network's images are resized to the first's for the figure only.

    Args:
        path: the PNG to write.
        rows: ``(run folder holding archive.npz, row label)`` per row.
        target: the first network's target (its image shape, class names and models name the figure).
        columns: classes shown, the first ones.
        second_name: the second network's name when the rows include the studies' (else None).

    Returns:
        ``path``.
    """
    import tensorflow as tf

    from keras_fool.evolution import load_archive
    from keras_fool.evolution.outputs import format_confidence

    images, captions = [], []
    for folder, _ in rows:
        arrays = load_archive(folder / "archive.npz")
        shown = slice(0, columns)
        chosen = arrays["images"][shown]
        if chosen.shape[1:] != target.image_shape:
            chosen = tf.image.resize(chosen, target.image_shape[:2]).numpy().clip(0.0, 1.0)
        for image, label, confidence in zip(chosen, arrays["labels"][shown], arrays["confidences"][shown]):
            images.append(image)
            captions.append(f"{target.class_names[int(label)]}: {format_confidence(float(confidence))}")
    models = " + ".join(str(next(iter(m.values()))) for m in target.get_config()["models"])
    title = f"{models}: images it labels with these confidences"
    if second_name is not None:  # the study rows' confidences are another network's
        title = (f"Images labelled with these confidences by {models} (methods), by {second_name} (second network) "
                 "and by the mean of the two (ensemble)")
    save_png(path, montage(np.stack(images), captions, columns=len(images) // len(rows), scale=1, title=title,
                           row_labels=[label for _, label in rows]))
    return path


CSV_COLUMNS = ("method", "evaluations", "generations_or_steps", "seconds", "evaluations_per_second",
               "raw_images_per_second", "speed_vs_raw_pct", "median_pct", "min_pct", "max_pct", "classes_at_99",
               "classes_at_9999", "paper_median_pct")


def write_imagenet(out, board_root, summary, markdown, rows, target, columns, second_name=None):
    """Write the ImageNet experiment's outputs: ``imagenet.md``, ``imagenet.csv``, ``summary.json``, Figure 1
    and the TensorBoard scalars.

    Args:
        out: the run's folder (a Path); board_root: its TensorBoard folder, or None.
        summary: the run's numbers (what ``summary.json`` holds); markdown: :func:`imagenet_markdown`'s page.
        rows: ``(sub-folder name, title)`` of each method and study, in the figure's order.
        target, columns, second_name: as :func:`write_figure1` takes them.

    Returns:
        Every output, in the order a user looks at them: the files, the runs' folders, the logs.
    """
    figure = write_figure1(out / "figure1.png", [(out / folder, title) for folder, title in rows], target, columns,
                           second_name)
    save_text(out / "imagenet.md", markdown)
    save_csv(out / "imagenet.csv", summary["rows"], CSV_COLUMNS)
    save_json(out / "summary.json", summary)
    board = SummaryWriter(board_root)
    for row in summary["rows"]:
        board.scalars({f"{row['method']}/{k}": row[k] for k in ("median_pct", "min_pct", "max_pct",
                                                                  "speed_vs_raw_pct")}, 0)
    if "transfer" in summary:
        board.scalars({f"transfer/{row['shown']}/top1_match_pct": row["top1_match_pct"]
                       for row in summary["transfer"]["rows"]}, 0)
    if "ensemble" in summary:
        board.scalars({f"ensemble/{k}": summary["ensemble"][k] for k in ("median_pct", "classes_at_90_pct")}, 0)
    board.text("imagenet", markdown)
    board.close()
    files = [out / "imagenet.md", out / "imagenet.csv", out / "summary.json", figure]
    files += [out / folder for folder, _ in rows]
    return files + ([board_root] if board_root is not None else [])


def imagenet_markdown(summary):
    """``imagenet.md``: the methods' table beside the paper's medians, then the transfer and ensemble studies'.

    Args:
        summary: the ImageNet experiment's summary (``summary.json``): ``config``, ``rows`` and, if
            run, ``transfer`` and ``ensemble``.
    """
    rows, config = summary["rows"], summary["config"]
    classes = ", ".join(config["class_names"])
    lines = [
        "# Fooling an ImageNet classifier: direct encoding, CPPN, NES, gradient ascent\n",
        f"Target: {', '.join(str(m) for m in config['model'])}{' (10 crops)' if config['crops'] == 10 else ''}. "
        f"Classes ({len(config['classes'])}): {classes}. Budget per method: {config['budget_evaluations']:,} "
        f"evaluations ({config['generations']} generations of {config['population']} after the random population; "
        f"gradient ascent up to {config['steps']} steps per class, regularization `{config['regularization']}`); "
        + (f"each method stops once every class reaches {100 * config['stop_at']:g}%." if config["stop_at"]
           else "no early stop.") + "\n",
        "| method | evaluations | generations / steps | seconds | evaluations/s | raw model images/s | % of raw "
        "| median % | min % | max % | >= 99.99% | paper median % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {FOOLING_METHOD_TITLES[row['method']]} | {row['evaluations']:,} | {row['generations_or_steps']} | "
            f"{row['seconds']:.0f} | {format_number(row['evaluations_per_second'], 1)} | "
            f"{format_number(row['raw_images_per_second'], 1)} | {format_number(row['speed_vs_raw_pct'], 1)} | "
            f"{format_confidence_pct(row['median_pct'])} | {format_confidence_pct(row['min_pct'])} | "
            f"{format_confidence_pct(row['max_pct'])} | {row['classes_at_9999']}/{len(config['classes'])} | "
            f"{'none (ours)' if row['paper_median_pct'] is None else row['paper_median_pct']} |")
    lines.append("")
    lines.append("Paper (Nguyen et al. 2015, AlexNet-like DNN, 1000 classes): "
                 + "; ".join(f"{FOOLING_METHOD_TITLES[m]} {p['median_pct']}% ({p['setting']})"
                             for m, p in PAPER_IMAGENET.items())
                 + ".")
    lines.append("")
    lines.append("Evaluations are images scored; a gradient step (forward and backward pass) counts as one evaluation "
                 "but costs about three forward passes. Speeds exclude tracing; `% of raw` compares each method with "
                 "the model alone at the same batch (forward, or forward and backward for gradient ascent), "
                 "measured just before and after it.")
    if "transfer" in summary:
        lines += _transfer_report(summary["transfer"], len(config["classes"]))
    if "ensemble" in summary:
        lines += _ensemble_report(summary["ensemble"])
    return "\n".join(lines) + "\n"


def _transfer_report(transfer, classes):
    evolution = transfer["evolution"]
    lines = [
        "",
        "## Transfer to a second network (supplement A.2)\n",
        f"CPPN images evolved against {transfer['second_model']} at the same budget: median "
        f"{format_confidence_pct(evolution['median_pct'])}%, max {format_confidence_pct(evolution['max_pct'])}%, "
        f"{evolution['classes_at_9999']}/{classes} classes >= 99.99%, {evolution['evaluations']:,} evaluations in "
        f"{evolution['seconds']:.0f} s. Each network's images (one per class) shown to the other, resized to its "
        "input size where they differ:\n",
        "| images | evolved for | shown to | images | top-1 matches % | matches >= 99% on both % "
        "| matches higher on the original % | paper top-1 matches % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in transfer["rows"]:
        paper = "" if row["paper_top1_match_pct"] is None else f"{row['paper_top1_match_pct']}"
        lines.append(f"| {FOOLING_METHOD_TITLES[row['method']]} | {row['evolved_for']} | {row['shown_to']} | {row['images']} "
                     f"| {format_number(row['top1_match_pct'], 1)} | {format_number(row['both_99_pct'], 1)} | "
                     f"{format_number(row['higher_on_original_pct'], 1)} | {paper} |")
    lines += ["", f"Paper: {transfer['paper']['setting']}; the second network's images shown to the first are "
                  "set beside GoogLeNet's shown to AlexNet (the stronger network's to the weaker)."]
    return lines


def _ensemble_report(row):
    first, second = row["members"]
    paper = row["paper"]
    return [
        "",
        "## An ensemble of the two networks (supplement B)\n",
        f"CPPN images evolved against the mean of {first}'s and {second}'s probabilities at the same budget "
        f"({row['evaluations']:,} evaluations in {row['seconds']:.0f} s):\n",
        "| target | classes >= 90% | median % | min % | max % | >= 99.99% | median % by "
        f"{first} alone | by {second} alone |",
        "|---|---|---|---|---|---|---|---|",
        f"| ours: ensemble of 2 | {row['classes_at_90']}/{row['classes']} "
        f"({format_number(row['classes_at_90_pct'], 1)}%) | {format_confidence_pct(row['median_pct'])} | "
        f"{format_confidence_pct(row['min_pct'])} | "
        f"{format_confidence_pct(row['max_pct'])} | {row['classes_at_9999']}/{row['classes']} | "
        f"{format_confidence_pct(row['member_median_pct'][first])} | "
        f"{format_confidence_pct(row['member_median_pct'][second])} |",
        f"| paper: ensemble of 3 | {_PAPER_ENSEMBLE_CLASSES_AT_90}/{PAPER_ENSEMBLE['cells']} "
        f"({paper['classes_at_90_pct']}%) | {paper['median_pct']} | n/r | "
        f"{paper['max_pct']:g} | n/r | n/r | n/r |",
        "",
        f"Paper: {paper['setting']}. Member medians: each network alone on the ensemble's images, for the class "
        "each image was evolved for.",
    ]
