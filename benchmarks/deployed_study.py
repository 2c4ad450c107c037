"""Study of issue 25, item 4: is the deployed twin of a zoo model the same model, and is it fooled the same way?

    nice -n 10 .venv/bin/python benchmarks/deployed_study.py [--out runs/deployed-study] [--seeds 3]
        [--generations 200] [--population 200] [--int8-generations 1000] [--no-lite0] [--nes-generations 100]

Not a test: writes ``OUT/study.json`` and prints markdown tables. The converted files are cached in
``OUT/models/`` (a rerun reuses them; delete them to convert again).

1. Conversion: ``lenet_mnist`` and ``efficientnet_lite0_imagenet`` (the zoo's Keras models, input in
   [0, 1]) to TFLite float, TFLite int8 (post-training full-integer quantization, int8 input and
   output; representative set: the first 200 MNIST training images for LeNet, the 21 views of the
   7 real photos of benchmarks/imagenet_real_confidence.py for Lite0) and ONNX (tf2onnx, opset 17).
2. Agreement with the Keras model: LeNet on the 10,000 MNIST test images; Lite0 on the 21 photo
   views and on 16 fooling images made against the Keras Lite0 (gradient ascent, 16 classes spread
   over the 1000, at most ``--ascent-steps`` steps, stopped at 99.99%).
   Top-1 accuracy (LeNet; Lite0 against the photos' hand labels), top-1 agreement with Keras,
   max and median |p - p_keras| over all probabilities.
3. Fooled as easily: MapElites (direct encoding, ``keras-fool evolve``'s best settings: eta 3,
   weakest-first parents; population 200) against the Keras LeNet and each twin, ``--seeds``
   seeds, stopped once every class reaches 99.99% (or ``--generations``). An int8 model's softmax
   output is quantized to steps of 1/256, so its highest probability is 255/256 = 99.61%: 99.99%
   is out of its reach, and its runs stop at its own ceiling instead (both are reported); it is also
   run with a cap of ``--int8-generations``. Lite0 (smoke check only): NES (direct encoding, 2 classes,
   ``--nes-generations``) against the Keras model and its TFLite float and int8 twins, one seed.
4. Transfer: the final elites of every LeNet run scored by every other model: the share of images
   still >= 99% and >= 99.99% for their class, and their median confidence.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imagenet_real_confidence import PHOTOS, VIEWS, class_indices, load_photo  # noqa: E402

from keras_fool.backends import open_target  # noqa: E402
from keras_fool.data import load_mnist  # noqa: E402
from keras_fool.encodings import DirectEncoding  # noqa: E402
from keras_fool.evolution import NES, MapElites  # noqa: E402
from keras_fool.evolution.callbacks import Callback, EarlyStopping  # noqa: E402
from keras_fool.evolution.runs import BEST_SETTINGS  # noqa: E402
from keras_fool.io import save_json  # noqa: E402
from keras_fool.report.tables import markdown_table  # noqa: E402
from keras_fool.target import Target  # noqa: E402
from keras_fool.zoo import load_model  # noqa: E402

TWINS = ("TFLite float", "TFLite int8", "ONNX")
FILES = {"TFLite float": "{}.tflite", "TFLite int8": "{}_int8.tflite", "ONNX": "{}.onnx"}
LITE0 = "efficientnet_lite0_imagenet"
LITE0_ASCENT_CLASSES = tuple(range(0, 1000, 63))  # 16 classes spread over ImageNet's 1000
LITE0_NES_CLASSES = ("king penguin", "starfish")


# ---- 1. conversion -------------------------------------------------------------------------------
def _write(path, data):
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def convert(model, folder, stem, representative):
    """``({twin: path}, {twin: seconds or "cached" or an error})``; an existing file is reused."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {twin: folder / FILES[twin].format(stem) for twin in TWINS}
    log = {}

    def tflite_float():
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()

    def tflite_int8():
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        return converter.convert()

    def onnx():
        import tf2onnx

        spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="images"),)
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
        return proto.SerializeToString()

    for twin, make in (("TFLite float", tflite_float), ("TFLite int8", tflite_int8), ("ONNX", onnx)):
        if paths[twin].is_file():
            log[twin] = "cached"
            continue
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the converters' notes
                warnings.simplefilter("ignore")
                _write(paths[twin], make())
            log[twin] = round(time.perf_counter() - start, 1)
        except Exception as e:  # a conversion that fails is a result of the study
            log[twin] = f"failed: {type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
        print(f"  {stem} {twin}: {log[twin]}", flush=True)
    return {t: p for t, p in paths.items() if p.is_file()}, log


def targets(preset, paths):
    """``{name: target}``: the Keras model's, then each twin's."""
    found = {"Keras": Target(preset)}
    for twin, path in paths.items():
        found[twin] = open_target(str(path), batch_size=256 if preset == "lenet_mnist" else 16)
    return found


# ---- 2. agreement --------------------------------------------------------------------------------
def scores(target, images, batch=512):
    return np.concatenate([np.asarray(target(images[i:i + batch]), np.float64) for i in range(0, len(images), batch)])


def agreement(probs, labels=None):
    """Per model: top-1 accuracy (``labels``: class indices, or sets of them), agreement with Keras, |p - p_keras|."""
    keras = probs["Keras"]
    rows = {}
    for name, p in probs.items():
        top = p.argmax(1)
        row = {"top1_agreement_pct": 100.0 * float(np.mean(top == keras.argmax(1))),
               "max_abs_diff": float(np.abs(p - keras).max()), "median_abs_diff": float(np.median(np.abs(p - keras))),
               "median_top1_diff": float(np.median(np.abs(p.max(1) - keras[np.arange(len(p)), top]))),
               "zero_share_pct": 100.0 * float(np.mean(p == 0.0))}  # an int8 output answers 0 below half a step
        if labels is not None:
            hits = [t in lab if isinstance(lab, (set, frozenset)) else t == lab for t, lab in zip(top.tolist(), labels)]
            row["accuracy_pct"] = 100.0 * float(np.mean(hits))
        rows[name] = row
    return rows


# ---- 3. evolution --------------------------------------------------------------------------------
class MinConfidence(Callback):
    """Keeps the lowest elite confidence after each generation."""

    def __init__(self):
        self.history = []

    def on_generation_end(self, generation, logs=None):
        self.history.append((generation, logs["min_confidence"]))


def first_generation(history, threshold):
    return next((g for g, c in history if c >= threshold), None)


def ceiling(target):
    """The highest probability a target can answer: 1, or an int8 softmax's last step (255/256)."""
    out = getattr(target, "_output", None)
    if out is not None and out["dtype"] in (np.int8, np.uint8):
        scale, zero = out["quantization"]
        return float((np.iinfo(out["dtype"]).max - zero) * scale)
    return 1.0


def evolve_lenet(target, seed, population, generations):
    settings = BEST_SETTINGS["direct"]
    stop = min(0.9999, ceiling(target))
    evolver = MapElites(target, DirectEncoding(target.image_shape, eta=settings["eta"]), population=population,
                        selection=settings["selection"], seed=seed)
    recorder = MinConfidence()
    start = time.perf_counter()
    evolver.run(generations, [recorder, EarlyStopping(stop)])
    return {"seed": seed, "stop_at": stop, "generations_run": evolver.generation,
            "generation_99": first_generation(recorder.history, 0.99),
            "generation_9999": first_generation(recorder.history, 0.9999),
            "generation_stop": first_generation(recorder.history, stop),
            "final_min_confidence": float(np.nanmin(evolver.archive.confidences)),
            "final_confidences": [float(c) for c in evolver.archive.confidences],
            "evaluations": int(evolver.evaluations), "seconds": round(time.perf_counter() - start, 1),
            "labels": evolver.archive.labels.tolist()}, evolver.images()


def transfer(images, labels, target):
    """Each image's probability of its own class under ``target``."""
    p = scores(target, images)
    conf = p[np.arange(len(labels)), labels]
    return {"images": len(labels), "at_99_pct": 100.0 * float(np.mean(conf >= 0.99)),
            "at_9999_pct": 100.0 * float(np.mean(conf >= 0.9999)), "median_confidence": float(np.median(conf))}


# ---- the two models ------------------------------------------------------------------------------
def study_lenet(out, args):
    (x_train, _), (x_test, y_test) = load_mnist(allow_download=False)
    model = load_model("lenet_mnist")
    paths, conversion = convert(model, out / "models", "lenet_mnist", x_train[:200].astype(np.float32))
    found = targets("lenet_mnist", paths)
    result = {"conversion": conversion, "representative": "the first 200 MNIST training images",
              "ceilings": {n: ceiling(t) for n, t in found.items()}}
    start = time.perf_counter()
    probs = {n: scores(t, x_test.astype(np.float32)) for n, t in found.items()}
    result["agreement"] = agreement(probs, y_test.tolist())
    result["agreement_seconds"] = round(time.perf_counter() - start, 1)
    print(f"LeNet agreement done ({result['agreement_seconds']} s)", flush=True)

    runs, elites = {}, {}
    plan = [(name, target, args.generations) for name, target in found.items()]
    if "TFLite int8" in found and args.int8_generations > args.generations:  # does int8 get there given longer?
        plan.append((f"TFLite int8, cap {args.int8_generations}", found["TFLite int8"], args.int8_generations))
    for name, target, generations in plan:
        runs[name], images = [], []
        for seed in range(args.seeds):
            run, image = evolve_lenet(target, seed, args.population, generations)
            runs[name].append(run)
            images.append((image, np.asarray(run["labels"])))
            print(f"  LeNet {name} seed {seed}: stop at {run['stop_at']:.6f} reached at generation "
                  f"{run['generation_stop']} ({run['seconds']} s)", flush=True)
        elites[name] = (np.concatenate([i for i, _ in images]), np.concatenate([lab for _, lab in images]))
    result["evolution"] = runs
    result["transfer"] = {source: {scorer: transfer(*elites[source], found[scorer]) for scorer in found}
                          for source in elites}
    return result


def lite0_photos():
    images = [load_photo(photo) for photo in PHOTOS]
    views = np.stack([view(image, 224) for image in images for view in VIEWS.values()]).astype(np.float32)
    labels = [class_indices(photo) for photo in PHOTOS for _ in VIEWS]
    return views, labels


def study_lite0(out, args):
    from keras_fool.evolution import GradientAscent

    views, labels = lite0_photos()
    model = load_model(LITE0)
    start = time.perf_counter()
    paths, conversion = convert(model, out / "models", LITE0, views)
    result = {"conversion": conversion, "conversion_seconds": round(time.perf_counter() - start, 1),
              "representative": f"the {len(views)} views of the {len(PHOTOS)} real photos (imagenet_real_confidence.py)"}
    found = targets(LITE0, paths)
    result["ceilings"] = {n: ceiling(t) for n, t in found.items()}
    probs = {n: scores(t, views, batch=16) for n, t in found.items()}
    result["agreement_photos"] = agreement(probs, labels)
    print("Lite0 photo agreement done", flush=True)

    keras = found["Keras"]
    start = time.perf_counter()
    ascent = GradientAscent(keras, classes=list(LITE0_ASCENT_CLASSES), steps=args.ascent_steps, batch_size=16,
                            seed=0)
    ascent.run(args.ascent_steps, [EarlyStopping(0.9999)])
    fooling, fooling_labels = ascent.images(), ascent.archive.labels
    result["fooling_images"] = {"method": f"gradient ascent against the Keras Lite0, at most {args.ascent_steps} steps, "
                                          "stopped at 99.99%",
                                "classes": [keras.class_names[c] for c in LITE0_ASCENT_CLASSES],
                                "keras_confidences": [float(c) for c in ascent.archive.confidences],
                                "seconds": round(time.perf_counter() - start, 1)}
    probs = {n: scores(t, fooling, batch=16) for n, t in found.items()}
    result["agreement_fooling"] = agreement(probs, fooling_labels.tolist())
    result["transfer_fooling"] = {n: transfer(fooling, fooling_labels, t) for n, t in found.items()}
    print("Lite0 fooling-image agreement done", flush=True)

    if args.nes_generations and "TFLite float" in found:
        result["nes_smoke"] = {}
        classes = keras.class_indices(list(LITE0_NES_CLASSES))  # a twin's classes are named "0", "1", ...
        for name in [n for n in ("Keras", "TFLite float", "TFLite int8") if n in found]:
            target = found[name]
            grey = np.full((1, *target.image_shape), 0.5, np.float32)  # where NES starts (theta = 0)
            start_confidences = [float(c) for c in scores(target, grey)[0, classes]]
            nes = NES(target, DirectEncoding(target.image_shape), classes=classes, seed=0)
            start = time.perf_counter()
            try:
                nes.run(args.nes_generations)
            except Exception as e:  # a smoke check: its failure is its result
                result["nes_smoke"][name] = {"start_confidences": start_confidences, "failed": f"{type(e).__name__}: {e}"}
                continue
            result["nes_smoke"][name] = {"start_confidences": start_confidences,
                                         "generations": nes.generation, "evaluations": int(nes.evaluations),
                                         "confidences": [float(c) for c in nes.archive.confidences],
                                         "seconds": round(time.perf_counter() - start, 1)}
            print(f"  Lite0 NES {name}: {result['nes_smoke'][name]}", flush=True)
    return result


# ---- tables --------------------------------------------------------------------------------------
def _g(values):
    known = [v for v in values if v is not None]
    if not known:
        return "not reached"
    text = f"{statistics.median(known):g} ({min(known)}-{max(known)})"
    return text + (f", {len(values) - len(known)} not reached" if len(known) < len(values) else "")


def tables(results):
    text = []
    for model, r in results.items():
        if "failed" in r:
            text.append(f"**{model}: failed**: {r['failed']}\n")
            continue
        text.append(f"**{model}: conversion** (seconds, or cached, or the error): {r['conversion']}; int8 "
                    f"representative set: {r['representative']}\n")
        if "agreement" in r or "agreement_photos" in r:
            for key, what in (("agreement", "10,000 MNIST test images"), ("agreement_photos", "21 photo views"),
                              ("agreement_fooling", "fooling images (gradient ascent vs Keras)")):
                if key not in r:
                    continue
                rows = [(name, "n/a" if "accuracy_pct" not in a else f"{a['accuracy_pct']:.2f}",
                         f"{a['top1_agreement_pct']:.2f}", f"{a['max_abs_diff']:.2e}", f"{a['median_abs_diff']:.2e}",
                         f"{a['zero_share_pct']:.1f}") for name, a in r[key].items()]
                text.append(f"**{model}: agreement with Keras on {what}**\n\n"
                            + markdown_table(("model", "top-1 accuracy % (vs labels)", "top-1 agreement with Keras %",
                                              "max abs(p - p_keras)", "median abs(p - p_keras)",
                                              "probabilities exactly 0 %"), rows, "lrrrrr"))
        if "evolution" in r:
            rows = []
            for name, runs in r["evolution"].items():
                rows.append((name, f"{r['ceilings'][name.split(',')[0]]:.6f}", _g([x["generation_99"] for x in runs]),
                             _g([x["generation_9999"] for x in runs]), _g([x["generation_stop"] for x in runs]),
                             f"{statistics.median(x['seconds'] for x in runs):.1f}"))
            text.append(f"**{model}: generations until every class's elite reaches the bar** (MapElites, direct, "
                        "population 200, eta 3, weakest; median (range) over seeds; cap = generations asked)\n\n"
                        + markdown_table(("target", "highest answerable p", ">= 99%", ">= 99.99%",
                                          "to its own stop (min(99.99%, ceiling))", "median s / run"), rows, "lrrrrr"))
        if "transfer" in r:
            rows = [(source, scorer, f"{t['at_99_pct']:.1f}", f"{t['at_9999_pct']:.1f}", f"{100 * t['median_confidence']:.4f}")
                    for source, by in r["transfer"].items() for scorer, t in by.items()]
            text.append(f"**{model}: transfer of the final elites (all seeds, 10 classes each)**\n\n"
                        + markdown_table(("evolved against", "scored by", ">= 99% (% of images)", ">= 99.99%",
                                          "median confidence %"), rows, "llrrr"))
        if "transfer_fooling" in r:
            rows = [(scorer, f"{t['at_99_pct']:.1f}", f"{t['at_9999_pct']:.1f}", f"{100 * t['median_confidence']:.4f}")
                    for scorer, t in r["transfer_fooling"].items()]
            text.append(f"**{model}: gradient-ascent fooling images made against Keras, scored by each model**\n\n"
                        + markdown_table(("scored by", ">= 99% (% of images)", ">= 99.99%", "median confidence %"),
                                         rows, "lrrr"))
        if "nes_smoke" in r:
            def pct(values):
                return ", ".join(f"{100 * c:.4g}" for c in values)

            rows = [(name, pct(s["start_confidences"]), s["failed"], "", "", "") if "failed" in s else
                    (name, pct(s["start_confidences"]), s["generations"], s["evaluations"], pct(s["confidences"]),
                     s["seconds"]) for name, s in r["nes_smoke"].items()]
            text.append(f"**{model}: NES smoke check (1 seed, {', '.join(LITE0_NES_CLASSES)})**\n\n"
                        + markdown_table(("target", "p on the grey start %", "generations", "evaluations",
                                          "elite confidences %", "s"), rows, "lrrrrr"))
    return "\n".join(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/deployed-study")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--population", type=int, default=200)
    parser.add_argument("--no-lite0", dest="lite0", action="store_false")
    parser.add_argument("--ascent-steps", type=int, default=50)
    parser.add_argument("--int8-generations", type=int, default=1000,
                        help="LeNet's int8 twin is also run this long (if more than --generations)")
    parser.add_argument("--nes-generations", type=int, default=100, help="0: no NES smoke check")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = {"lenet_mnist": study_lenet(out, args)}
    save_json(out / "study.json", results)
    if args.lite0:
        try:
            results[LITE0] = study_lite0(out, args)
        except Exception as e:  # Lite0 is reported as far as it got; LeNet's results stand
            results[LITE0] = {"failed": f"{type(e).__name__}: {e}"}
            print(f"Lite0 failed: {results[LITE0]['failed']}", flush=True)
    command = "benchmarks/deployed_study.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results["meta"] = {"command": command.strip(), "seconds": round(time.perf_counter() - start, 1),
                       "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                       "load_average": os.getloadavg(), "tensorflow": tf.__version__}
    save_json(out / "study.json", results)
    print()
    print(tables({k: v for k, v in results.items() if k != "meta"}))
    print(f"`{results['meta']['command']}`: {results['meta']['seconds']} s on {results['meta']['machine']} "
          f"(written: {out / 'study.json'})")


if __name__ == "__main__":
    main()
