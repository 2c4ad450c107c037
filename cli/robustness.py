"""``keras-fool experiment robustness``: Table 2 and the curves of Uličný, Lundström & Byttner, with a worst case."""

from __future__ import annotations

import time

import click

from keras_fool.cli import echo_written
from keras_fool.cli.options import LOGDIR, OVERWRITE, out_option, seed_option

# keras_fool.evaluation.worst_case.ATTACKS (checked here without importing TensorFlow; a test keeps them equal)
ATTACK_NAMES = ("fgsm", "pgd", "transfer", "square")


def _parse_attacks(ctx, param, value):
    """'none' -> None; else distinct names from ATTACK_NAMES, in cascade order."""
    if value.strip().lower() == "none":
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in ATTACK_NAMES]
    if not names or unknown or len(set(names)) != len(names):
        raise click.BadParameter(f"must be 'none' or distinct names from {', '.join(ATTACK_NAMES)}. "
                                 f"Received: attacks={value!r}")
    return tuple(name for name in ATTACK_NAMES if name in names)


@click.command("robustness")
@click.option("--quick", is_flag=True,
              help="Small budgets (1,000 test images, 20 levels, short training): a few minutes.")
@out_option("runs/robustness", "Output folder (models trained for --quick or --train-steps are cached in "
            "OUT/models and reused, with --overwrite too; the full run uses the zoo presets)")
@OVERWRITE
@LOGDIR
@click.option("--methods", default="all", show_default=True,
              help="'all' or comma-separated rows of Table 2 (no_method, dropout, low_pass, dae, low_pass_dropout, "
              "dae_dropout, standard_committee, adversarial_training, adversarial_committee, pgd_training).")
@click.option("--attacks", default=",".join(ATTACK_NAMES), show_default=True, callback=_parse_attacks,
              help="The worst case beside the FGSM column: an image is an error if any of these attacks fools it "
              "(fgsm, pgd, transfer, square; run as a cascade on the survivors), with the gradient-masking checks; "
              "'none' for the FGSM and Gaussian curves only.")
@click.option("--worst-case-images", type=click.IntRange(1, 10000), default=None,
              help="Test images behind the worst case (the first ones); all the curves' images by default.")
@click.option("--diagnostic-images", type=click.IntRange(0, 10000), default=None,
              help="Images the gradient-masking checks run every attack on, alone (0: no checks); "
              "500 (200 with --quick) by default.")
@click.option("--square-queries", type=click.IntRange(min=1), default=None,
              help="Square Attack's queries per image; 1,000 (300 with --quick) by default.")
@seed_option(0)
@click.option("--test-images", type=click.IntRange(1, 10000), default=None, help="Override the budget's test images.")
@click.option("--levels", type=click.IntRange(min=2), default=None, help="Override the budget's levels per curve.")
@click.option("--train-steps", type=click.IntRange(min=1), default=None,
              help="Cut every training run to this many steps (smoke tests).")
@click.option("--gray-box", is_flag=True,
              help="Attack the pre-processing rows (low-pass, DAE) with the FGSM direction of the classifier "
              "behind the front end instead of end to end.")
def robustness(quick, out, overwrite, logdir, methods, attacks, worst_case_images, diagnostic_images, square_queries,
               seed, test_images, levels, train_steps, gray_box):
    """Reproduce Table 2: error at distortion 0 / 0.1 / 0.2 of each robustness method, FGSM and worst case.

    Writes OUT/table2.md (beside the paper's numbers, with the worst case, its cascade and the
    gradient-masking checks), OUT/table2.csv, OUT/curves.csv, the figures (OUT/curves_gradient_sign,
    OUT/curves_gaussian and one per figure of the paper whose methods ran, OUT/figure3_... to
    OUT/figure7_..., each .png and .svg) and OUT/summary.json, and prints how long each part took.
    Every gradient-masking check answered "no" is also printed as a warning. An OUT that holds a
    summary.json is refused unless --overwrite.
    """
    import dataclasses

    from keras_fool.cli import import_tensorflow_quietly
    from keras_fool.io import check_output_dir

    # A folder that holds results is refused before TensorFlow starts; the experiment creates it once
    # its sizes are accepted.
    check_output_dir(out, "summary.json", overwrite=overwrite, resumable=False)
    import_tensorflow_quietly()
    from keras_fool.experiments.robustness import FULL_BUDGET, QUICK_BUDGET, run_robustness_experiment

    budget = QUICK_BUDGET if quick else FULL_BUDGET
    if train_steps is not None:
        budget = budget.with_train_steps(train_steps)
    overrides = {k: v for k, v in (("test_images", test_images), ("levels", levels),
                                   ("worst_case_images", worst_case_images)) if v is not None}
    settings = {k: v for k, v in (("diagnostic_images", diagnostic_images), ("square_queries", square_queries))
                if v is not None}
    budget = dataclasses.replace(budget, attack_settings=dataclasses.replace(budget.attack_settings, **settings),
                                 **overrides)

    start = time.perf_counter()
    chosen = None if methods.strip().lower() == "all" else methods
    report = run_robustness_experiment(out, budget=budget, methods=chosen, logdir=logdir, seed=seed,
                                       log=lambda line: click.echo(line, err=True), gray_box=gray_box,
                                       attacks=attacks, overwrite=overwrite)
    click.echo(report.markdown.rstrip())
    click.echo("")
    flags = report.summary.get("masking_flags", [])
    for flag in flags:
        click.echo(f"WARNING: possible gradient masking: {flag['model']}: {flag['question']}: NO ({flag['detail']})",
                   err=True)
    if attacks is not None:
        click.echo(f"gradient-masking checks: {len(flags)} answered NO" + (" (see the warnings)" if flags else ""))
    parts = ("data", "models", "curves") + (("worst_case",) if attacks is not None else ()) + ("outputs",)
    click.echo("seconds: " + ", ".join(f"{part} {report.summary['timings'][part]:.1f}" for part in parts)
               + f", total {time.perf_counter() - start:.1f}")
    echo_written(report.files)
