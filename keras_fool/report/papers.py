"""Every number of the papers that an experiment or the audit compares against, once, with its source.

Nguyen, Yosinski & Clune (CVPR 2015), "Deep neural networks are easily fooled" (main text and
supplement), and Uličný, Lundström & Byttner, "Robustness of deep convolutional neural networks for
image recognition" (Table 2). Each constant says where in the paper its numbers are.
"""

from __future__ import annotations

__all__ = [
    "PAPER_ENSEMBLE",
    "PAPER_IMAGENET",
    "PAPER_REAL_CONFIDENCE",
    "PAPER_TABLE2",
    "PAPER_TABLE_S1",
    "PAPER_TABLE_S2",
    "PAPER_TRANSFER",
]

# Nguyen et al. (2015) on ImageNet (AlexNet-like DNN, 1000 classes): the main text's median for the
# direct encoding, supplement F's for CPPNs after 5000 generations, supplement E's for gradient ascent.
PAPER_IMAGENET = {
    "direct": {"median_pct": 21.59, "setting": "main text, 1000 classes"},
    "cppn": {"median_pct": 88.11, "setting": "5000 generations of 400, 1000 classes (supplement F)"},
    "gradient": {"median_pct": 99.99, "setting": "'quickly produces confidence over 99.99%' (supplement E)"},
}

# Nguyen et al. (2015), supplement A.2: of 1000 images evolved for GoogLeNet, 20.7% get the same top-1
# label from AlexNet; 17.3% the other way. Paired with ours by strength: the second, stronger network's
# images shown to the first ("b_to_a") as GoogLeNet's to AlexNet.
PAPER_TRANSFER = {"b_to_a": 20.7, "a_to_b": 17.3,
                  "setting": "1000 evolved images per network, GoogLeNet -> AlexNet 20.7%, AlexNet -> GoogLeNet 17.3% "
                             "(supplement A.2)"}

# Nguyen et al. (2015), supplement B: CaffeNet + AlexNet + GoogLeNet (the mean of their scores), CPPN,
# 4000 generations, 1000 classes: 231 classes (23.1%) >= 90%, median 65.2%, max 100%; no >= 99% share
# given (None). The ensemble experiment's CSV row takes the numeric keys; the ImageNet study's
# summary.json keeps its own key names (experiments.imagenet.PAPER_ENSEMBLE_ROW).
PAPER_ENSEMBLE = {"cells": 1000, "at_90_pct": 23.1, "at_99_pct": None, "median_pct": 65.2, "max_pct": 100.0,
                  "setting": "CaffeNet + AlexNet + GoogLeNet, 4000 generations, 1000 classes: 231 classes >= 90% "
                             "(supplement B)"}

# Nguyen et al. (2015), supplement F (ImageNet, AlexNet on the 50,000 validation images): median
# top-1 confidence on all / correctly / wrongly classified real images, and the CPPN images' median.
PAPER_REAL_CONFIDENCE = {"all_pct": 60.3, "correct_pct": 86.7, "wrong_pct": 33.7, "fooling_pct": 88.11}

# Nguyen et al. (2015), supplement Table S1, MNIST: (DNN_A on DNN_B's images, DNN_B on DNN_A's images,
# average), in %.
PAPER_TABLE_S1 = {
    "top1_match_pct": (43.3, 48.7, 46.0),
    "both_99_pct": (27.3, 27.3, 27.3),
    "higher_on_original_pct": (88.5, 95.9, 92.2),
}

# Nguyen et al. (2015), supplement Table S2 (MNIST, a fooling class added each iteration): iteration,
# error (%) on the validation set with fooling images, error (%) on the MNIST test set, training and
# validation set sizes, median confidence (%) of images evolved against DNN_i.
PAPER_TABLE_S2 = (
    (1, 0.94, 0.94, 60000, 10000, 99.99),
    (2, 1.02, 0.87, 66000, 11000, 97.42),
    (3, 0.92, 0.87, 67000, 11100, 99.83),
    (4, 0.89, 0.83, 68000, 11200, 72.52),
    (5, 0.90, 0.96, 69000, 11300, 97.55),
    (6, 0.89, 0.99, 70000, 11400, 99.68),
    (7, 0.86, 0.98, 71000, 11500, 76.13),
    (8, 0.91, 1.01, 72000, 11600, 99.96),
    (9, 0.90, 0.86, 73000, 11700, 99.51),
    (10, 0.84, 0.94, 74000, 11800, 99.48),
    (11, 0.80, 0.93, 75000, 11900, 98.62),
    (12, 0.82, 0.98, 76000, 12000, 99.97),
    (13, 0.75, 0.90, 77000, 12100, 99.93),
    (14, 0.80, 0.96, 78000, 12200, 99.15),
    (15, 0.79, 0.95, 79000, 12300, 99.15),
)

# Uličný, Lundström & Byttner, Table 2: (row label, error (%) on FGSM examples at dist = 0 / 0.1 / 0.2).
PAPER_TABLE2 = {
    "no_method": ("No method", (0.83, 73.6, 96.1)),
    "dropout": ("Dropout", (0.91, 35.7, 98.1)),
    "low_pass": ("Low-pass filter", (1.38, 52.0, 95.0)),
    "dae": ("DAE", (1.27, 52.4, 93.2)),
    "low_pass_dropout": ("Low-pass filter + dropout", (2.51, 34.8, 88.5)),
    "dae_dropout": ("DAE + dropout", (1.56, 21.4, 90.3)),
    "standard_committee": ("Standard committee", (0.86, 70.9, 97.2)),
    "adversarial_training": ("Adversarial training after 5 stages", (0.87, 44.5, 92.1)),
    "adversarial_committee": ("Committee of models trained on adv. examples", (0.65, 9.8, 36.5)),
}
