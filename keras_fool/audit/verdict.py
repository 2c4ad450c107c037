"""The audit's verdict: a short paragraph written from the report's numbers, and what to try next.

Every sentence is built from a number of the report (nothing is said that the data do not show),
and the defenses named are the ones this library offers, each with the command or code that runs it.
"""

from __future__ import annotations

import math

from keras_fool.audit.budgets import BUDGET_NAMES
from keras_fool.report.titles import FOOLING_METHOD_TITLES

__all__ = ["defenses", "verdict"]

UNDERESTIMATE_POINTS = 10.0  # FGSM "underestimates" when the worst case is this many points higher



def _method(method):
    """A fooling method as the verdict's sentence names it: "the direct encoding", "gradient ascent"."""
    title = FOOLING_METHOD_TITLES[method]
    return f"the {title}" if title.endswith("encoding") else title

def _pct(value, digits=1):
    return f"{100 * value:.{digits}f}%"


def _confidence(value):
    """A confidence in %, truncated to two decimals: 99.9995% reads 99.99%, never 100.00%."""
    return f"{math.floor(value * 1e4) / 100:.2f}%"


def _distortion(value):
    return f"{value:.3g}"


def _fooling_sentences(report):
    fooling = report["fooling"]
    tried = fooling["classes_tried"]
    subset = (f" (of the {fooling['classes_total']} classes, {tried} were tried)"
              if tried < fooling["classes_total"] else "")
    parts = []
    for method, m in fooling["methods"].items():
        if m.get("available") is False:
            parts.append(f"{_method(method)} not run ({m['reason']})")
            continue
        unit = m["unit"]
        how = (f"{_method(method)} on the surrogate {m['surrogate']} (a transfer attack)"
               if m.get("access") == "transfer" else _method(method))
        if m["fooled_99"]:
            when = (f" within {m['max_first_99']} {unit}s (median {m['median_first_99']:g})"
                    if m["max_first_99"] is not None else "")
            parts.append(f"{m['fooled_99']} of {tried} with {how}{when}")
        else:
            parts.append(f"none of {tried} with {how} in {m[unit + 's']} {unit}s")
    sentence = (f"{fooling['fooled_99_any']} of {tried} classes{subset} were fooled at >= 99% confidence by "
                f"unrecognisable images: " + "; ".join(parts) + ".")
    return [sentence]


def _confidence_sentence(report):
    card, confidence = report["model_card"], report["confidence"]
    fooling = confidence["fooling"]["median"]
    if not card["data"]["available"]:
        return (f"Its median top-1 confidence on the fooling images is {_confidence(fooling)}; no real data was "
                "given to compare.")
    text = (f"On {card['data']['images']:,} real images its accuracy is {_pct(card['accuracy'], 2)} with a median "
            f"confidence of {_confidence(card['median_confidence'])}")
    wrong = confidence["wrong"]["median"]
    if wrong is not None:
        text += f" ({_confidence(wrong)} on the {confidence['wrong']['images']:,} it gets wrong)"
    relation = "above" if wrong is not None and fooling > wrong else "below" if wrong is not None else None
    text += f"; the fooling images get a median top-1 confidence of {_confidence(fooling)}"
    if relation == "above":
        text += ", more than its own mistakes on real images, so its confidence cannot tell them apart"
    return text + "."


def _robustness_sentences(report):
    robustness = report["robustness"]
    if not robustness["available"]:
        return [f"Robustness was not measured: {robustness['reason']}."]
    curves, worst = robustness["curves"]["curves"], robustness["worst_case"]
    out = []

    def crossing_text(value, reach):
        return f"{_distortion(value)}" if value is not None else f"beyond {_distortion(reach)}"

    fgsm, gauss = curves.get("gradient_sign"), curves.get("gaussian")
    fgsm_name = (f"FGSM transferred from {fgsm['surrogate']}" if fgsm and fgsm.get("access") == "transfer"
                 else "FGSM")
    if fgsm and gauss:
        out.append(f"Its error reaches 50% at distortion {crossing_text(fgsm['crossing_50'], fgsm['max_distortion'])} "
                   f"under {fgsm_name} and {crossing_text(gauss['crossing_50'], gauss['max_distortion'])} under "
                   "Gaussian noise")
    elif gauss:
        out.append(f"Its error reaches 50% at distortion {crossing_text(gauss['crossing_50'], gauss['max_distortion'])}"
                   f" under Gaussian noise (FGSM not run: {robustness['curves']['not_run']['gradient_sign']})")
    if worst["available"]:
        evaluated = ", ".join(_distortion(lv["distortion"]) for lv in worst["levels"])
        if worst["crossing_50"] is None:
            out[-1] += (f", and not by {_distortion(worst['max_distortion'])} in the worst case over "
                        f"{', '.join(worst['attacks'])}.")
        else:
            out[-1] += (f", and at about {_distortion(worst['crossing_50'])} in the worst case over "
                        f"{', '.join(worst['attacks'])} (interpolated between its distortions 0, {evaluated}).")
        level = next((lv for lv in worst["levels"] if abs(lv["distortion"] - 0.1) < 1e-9), worst["levels"][0])
        text = f"At distortion {_distortion(level['distortion'])} the worst-case error is {_pct(level['error'])}"
        if worst.get("access") == "queries":
            text += f" over {', '.join(worst['attacks'])} only; {worst['bound']}"
        if level["fgsm_error"] is not None:
            gap = 100 * (level["error"] - level["fgsm_error"])
            text += f" against FGSM's {_pct(level['fgsm_error'])}"
            if gap >= UNDERESTIMATE_POINTS:
                text += f": FGSM alone underestimates the damage by {gap:.0f} points"
        out.append(text + ".")
        diagnostics = worst["diagnostics"]
        if diagnostics is not None and worst.get("access") != "queries":
            flagged = [c["name"].replace("_", " ") for c in diagnostics["checks"] if c["answer"] == "NO"]
            if flagged:
                out.append(f"Gradient-masking checks failed ({', '.join(flagged)}): the gradient attacks miss what "
                           "exists, so treat the low errors as suspect.")
            else:
                ran = [c for c in diagnostics["checks"] if c["answer"] == "yes"]
                skipped = [c["name"].replace("_", " ") for c in diagnostics["checks"] if c["answer"] != "yes"]
                out.append(f"The {len(ran)} gradient-masking checks that ran pass ({diagnostics['images']} images"
                           + (f"; not run: {', '.join(skipped)}" if skipped else "")
                           + "), so nothing points to a hidden gradient.")
    else:
        out[-1] += "."
        out.append(f"The worst case was not measured: {worst['reason']}.")
    return out


def _transfer_sentence(report):
    transfer = report["transfer"]
    if not transfer["available"]:
        return None
    parts = [f"{m['fooled_99']} of {m['images']} ({_pct(m['share_fooled_99'])}) fool {m['model']}"
             for m in transfer["models"]]
    return "Of its fooling images, " + "; ".join(parts) + " at >= 99% too."


def _detectors_sentence(report):
    """Whether any detector holds against the worst case of the audit's images and an adaptive attacker."""
    section = report["detectors"]
    if not section["available"]:
        return f"No detector was measured: {section['reason']}."
    ran = [d for d in section["detectors"] if d["available"]]
    classes = section["classes"]
    best = next(d for d in ran if d["detector"] == section["best"])
    adaptive = best["adaptive"]
    search = "MAP-Elites" if adaptive["search"] == "map-elites" else "NES"
    attacker = (f"an attacker who evolves against the detector too (the direct encoding's {search}, "
                f"{adaptive['evaluations']:,} images scored)")
    worst = f"{best['worst_case_fooled_99_unflagged']} of {classes} classes"
    if section["holds"]:
        held = section["holds"]
        text = (f"The {', '.join(held)} detector{'s' if len(held) > 1 else ''} held at this budget: against the "
                f"audit's fooling images and {attacker}, {best['detector']}"
                f"{' (the best)' if len(held) > 1 else ''} leaves {worst} fooled at >= 99% unflagged and flags "
                f"{_pct(best['clean_flagged'])} of clean images")
    else:
        text = (f"No detector holds: against the audit's fooling images and {attacker}, even the best "
                f"({best['detector']}) leaves {worst} fooled at >= 99% unflagged")
    text += f" (the audit's images alone: {best['non_adaptive_fooled_99_unflagged']})."
    if section["holds"]:
        text += (" These numbers are a lower bound on what an attacker achieves: only the direct-encoding search "
                 "was run against the detector, at this budget.")
    weaker = [d["detector"] for d in ran if d["adaptive_weaker"]]
    if weaker:
        text += (f" The adaptive search fooled fewer classes than the audit's images against {', '.join(weaker)}: it "
                 "is weak at this budget, so a larger --budget is a stronger test.")
    return text


def defenses(report):
    """What to try, with the command or code: [{"name", "why", "command"}]."""
    card = report["model_card"]
    model = card["name"]
    mnist = card["input_shape"] == [28, 28, 1] and card["class_names"][:10] == [str(d) for d in range(10)]
    items = []
    budget = report["settings"]["budget"] if report["settings"]["budget"] in BUDGET_NAMES else "quick"
    robustness = report["robustness"]
    weak = robustness["available"] and robustness["worst_case"]["available"] and any(
        lv["error"] >= 0.5 for lv in robustness["worst_case"]["levels"])
    if mnist:
        items.append({
            "name": "the committee of adversarially trained models (Uličný et al.)",
            "why": "the lowest FGSM error of the papers' defenses on MNIST (RESULTS.md, Table 2); audit it the "
                   "same way",
            "command": f"keras-fool audit lenet_mnist_adversarial_committee --compare {model} "
                       "--out runs/audit-committee",
        })
        items.append({
            "name": "PGD adversarial training (Madry et al.)",
            "why": "lenet_mnist fine-tuned on multi-step PGD examples",
            "command": f"keras-fool audit lenet_mnist_pgd --compare {model} --out runs/audit-pgd",
        })
        items.append({
            "name": "every defense of Uličný et al. side by side",
            "why": "dropout, low-pass filter, denoising autoencoder, committees and adversarial training on MNIST, "
                   "with the worst case",
            "command": "keras-fool experiment robustness --quick",
        })
    items.append({
        "name": "adversarial training in your own model.fit",
        "why": ("the worst-case error passes 50% within the distortions tried" if weak
                else "keeps the worst case low as the model trains"),
        "command": "from keras_fool.training import AdversarialCommittee; "
                   "from keras_fool.attacks import ProjectedGradientDescent; "
                   "cb = AdversarialCommittee(x_train, y_train, every=5000, "
                   "attack=ProjectedGradientDescent(eps=0.1, step_size=0.025, steps=10)); "
                   "model.fit(cb.batches, epochs=14, callbacks=[cb]); model = cb.committee",
    })
    items.append({
        "name": "a fooling-image class (supplement C)",
        "why": "retrain with an extra class of evolved images; on MNIST it stops direct-encoded fooling images "
               "within a few rounds but not CPPN ones (RESULTS.md, Table S2)",
        "command": "from keras_fool.training import FoolingClassAugmentation; "
                   "cb = FoolingClassAugmentation(x_train, y_train, every=2); "
                   "model.fit(cb.batches, epochs=10, callbacks=[cb])  # a model with one more output"
                   + ("; or: keras-fool experiment fooling-class" if mnist else ""),
    })
    items.append({
        "name": "audit the defended model against this one",
        "why": "the same report, with transfer of the fooling images between the two",
        "command": f"keras-fool audit NEW_MODEL.keras --compare {model if card['source_kind'] == 'preset' else 'MODEL'}"
                   " "
                   f"--budget {budget} --out runs/audit-new",
    })
    return items


def _queries_sentence(report):
    """What a model that answers queries only was asked and how its gradient stages ran; None for a Keras model."""
    if report["model_card"]["access"] != "queries only":
        return None
    queries = report["queries"]
    runs = f" over {queries['runs']} runs" if queries["counted"] and queries["runs"] > 1 else ""
    spent = (f"the audit asked it about {queries['total']:,} images{runs}" if queries["counted"]
             else "the images it was asked about were not counted")
    surrogate = report["settings"]["surrogate"]
    attacker = (f"the gradient attacks ran on the surrogate {surrogate}, their images scored on the model (transfer "
                "attacks)" if surrogate else "no gradient attack could run (no surrogate was given)")
    return f"It answers queries only: {spent}, and {attacker}."


def verdict(report):
    """The verdict paragraph (one string) from a report dict whose other sections are filled."""
    sentences = [f"{report['model_card']['name']} is fooled easily."
                 if report["fooling"]["share_fooled_99"] >= 0.5 else
                 f"{report['model_card']['name']} resisted most fooling attempts at this budget."]
    queries = _queries_sentence(report)
    if queries:
        sentences.append(queries)
    sentences += _fooling_sentences(report)
    sentences.append(_confidence_sentence(report))
    sentences += _robustness_sentences(report)
    transfer = _transfer_sentence(report)
    if transfer:
        sentences.append(transfer)
    sentences.append(_detectors_sentence(report))
    return " ".join(sentences)
