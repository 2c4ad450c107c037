"""How well a surrogate's starts transfer to EfficientNet-Lite0, before any query-driven search (issue 23).

For each setting (surrogate models, climbing steps, jitter), :meth:`keras_fool.evolution.NES.surrogate_start`
climbs each class's low-resolution image on the surrogate (an ensemble when several are named), and the target
scores the starts once: the confidence NES begins from. The starts are deterministic per seed (and without
jitter do not depend on it). Prints one row per setting: median and lowest class over the classes, and each
class's confidence.

    .venv/bin/python benchmarks/surrogate_start.py --settings "lite1:50:0,lite1:100:16,lite1+lite2:50:16"
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

MODEL = "efficientnet_lite0_imagenet"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="lite1:50:0,lite1:100:0,lite1:50:16,lite1:100:16,lite1+lite2:50:0,"
                        "lite1+lite2:50:16", help="comma-separated SURROGATES:STEPS:JITTER, SURROGATES joined by +")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", default=None, help="default: experiment imagenet's ten")
    parser.add_argument("--json", default=None, help="Also write every number here.")
    args = parser.parse_args()
    from keras_fool.encodings import make_encoding
    from keras_fool.evolution.nes import NES, low_resolution_images
    from keras_fool.experiments.imagenet import DEFAULT_CLASSES
    from keras_fool.target import Target

    target = Target(MODEL)
    labels = target.class_indices(args.classes or ",".join(DEFAULT_CLASSES))
    rows = []
    print(f"{MODEL}, {len(labels)} classes, seed {args.seed}: the target's confidence in each class's start.\n")
    print("| surrogate | steps | jitter (px) | median % | lowest % | per class % | seconds |")
    print("|---|---|---|---|---|---|---|")
    for setting in args.settings.split(","):
        names, steps, jitter = setting.split(":")
        models = [f"efficientnet_{n}_imagenet" for n in names.split("+")]
        size = {"image_size": target.image_shape[:2]} if len(models) > 1 else {}  # members of other sizes
        nes = NES(target, make_encoding("direct", target.image_shape), classes=labels, seed=args.seed,
                  surrogate=Target(models, **size), surrogate_steps=int(steps), surrogate_jitter=int(jitter))
        start = time.perf_counter()
        theta = nes.surrogate_start()
        seconds = time.perf_counter() - start
        scores = target.predict(low_resolution_images(theta, target.image_shape).numpy())
        confidences = scores[np.arange(len(labels)), labels]
        rows.append({"surrogate": models, "steps": int(steps), "jitter": int(jitter), "seconds": seconds,
                     "confidences": confidences.tolist()})
        print(f"| {names} | {steps} | {jitter} | {np.median(confidences) * 100:.2f} | {confidences.min() * 100:.2f} | "
              f"{', '.join(f'{c * 100:.1f}' for c in confidences)} | {seconds:.0f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"seed": args.seed, "labels": list(map(int, labels)), "rows": rows},
                                              indent=1))


if __name__ == "__main__":
    main()
