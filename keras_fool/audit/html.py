"""``report.html``: one self-contained page (figures as data URIs, inline CSS, no script, no font or
file from anywhere else), readable on a laptop screen and printable.

Sections, in order, each a ``<section>`` with its id: ``model-card``, ``fooling``, ``confidence``,
``robustness``, ``transfer``, ``detectors``, ``verdict``.
"""

from __future__ import annotations

import base64
import html

from keras_fool.audit.stages import STAGE_TITLES, methods_label
from keras_fool.report.titles import FOOLING_METHOD_TITLES, fooling_method_title
from keras_fool.report.titles import SHORT_NOISE_TITLES as NOISE_TITLES

__all__ = ["SECTION_IDS", "render_html"]

SECTION_IDS = ("model-card", "fooling", "confidence", "robustness", "transfer", "detectors", "verdict")
DETECTOR_TITLES = {"msp": "max softmax", "max_logit": "max logit", "energy": "energy", "odin": "ODIN",
                   "mahalanobis": "Mahalanobis", "reconstruction": "autoencoder reconstruction error",
                   "union": "Mahalanobis or reconstruction error"}
METHOD_TITLES = {method: fooling_method_title(method, capital=True) for method in FOOLING_METHOD_TITLES}

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1d2430;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; min-height: 100vh; }
header { border-bottom: 3px solid #1d2430; margin-bottom: 12px; padding-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 28px 0 8px; padding-top: 8px; border-top: 1px solid #d5d9e0; }
h3 { font-size: 16px; margin: 18px 0 6px; }
p { margin: 6px 0 10px; }
.meta { color: #4d5666; font-size: 13px; }
.note { color: #4d5666; font-size: 13px; }
.missing { background: #fff6e0; border-left: 4px solid #e0a100; padding: 8px 12px; }
.verdict-text { font-size: 16px; background: #eef4ff; border-left: 4px solid #2b6cd4; padding: 10px 14px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { border: 1px solid #d5d9e0; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #eef0f3; }
td.text, th.text { text-align: left; }
.scroll { max-width: 100%; overflow-x: auto; }
figure { margin: 10px 0 18px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e3e6eb; }
figcaption { font-size: 13px; color: #4d5666; margin-top: 4px; }
img.montage { image-rendering: pixelated; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px;
       background: #f1f3f6; padding: 1px 4px; border-radius: 3px; overflow-wrap: break-word; }
.yes { color: #1e7b34; font-weight: 600; }
.no { color: #b3261e; font-weight: 700; }
ul.defenses li { margin-bottom: 8px; }
@media print {
  body { background: #fff; font-size: 11pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure, table, .verdict-text { break-inside: avoid; page-break-inside: avoid; }
  .scroll { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(value):
    return html.escape(str(value), quote=True)


def _pct(value, digits=2):
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _conf(value):
    """A confidence truncated (never rounded up to 100%) to four decimals of a percent."""
    if value is None:
        return "n/a"
    import math

    return f"{math.floor(value * 1e6) / 1e4:.4f}%"


def _conf2(value):
    """A confidence truncated to two decimals of a percent (99.9995% reads 99.99%, as the verdict says)."""
    if value is None:
        return "n/a"
    import math

    return f"{math.floor(value * 1e4) / 100:.2f}%"


def _num(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}g}"


def _img(figures, name, alt, css_class=""):
    data = base64.b64encode(figures[name]).decode("ascii")
    klass = f' class="{css_class}"' if css_class else ""
    return f'<img{klass} src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _table(head, rows, text_columns=(0,)):
    out = ['<div class="scroll"><table>']
    if head:
        out.append("<thead><tr>")
        out += [f'<th class="{"text" if i in text_columns else ""}">{_e(h)}</th>' for i, h in enumerate(head)]
        out.append("</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="{"text" if i in text_columns else ""}">{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _missing(reason):
    return f'<p class="missing">Not measured: {_e(reason)}.</p>'


def _model_card(report):
    card = report["model_card"]
    data = card["data"]
    names = card["class_names"]
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    rows = [
        ("Model", _e(card["name"]) + f' <span class="note">({_e(card["source_kind"])})</span>'),
        ("Input shape", _e(" x ".join(str(d) for d in card["input_shape"]))),
        ("Classes", f"{card['classes']}: {_e(shown)}"),
        ("Parameters", "unknown (the model answers queries only)" if card["parameters"] is None
         else f"{card['parameters']:,}"),
        ("Access", "gradients: attacked white-box" if card["access"] == "gradients" else
         f"queries only ({_e(card['backend'])}): searched by its answers; gradient attacks "
         + (f"on the surrogate {_e(report['settings']['surrogate'])}, scored on the model (transfer)"
            if report["settings"]["surrogate"] else "not run (no surrogate)")),
        ("Outputs / input range / preprocessing",
         _e(f"{card['outputs']} / {card['input_range']} / {card['preprocess']}")),
        ("Data", _e(data["description"]) if data["available"] else "no data given"),
        ("Clean accuracy", _pct(card["accuracy"])),
        ("Median confidence", _conf2(card["median_confidence"])),
        ("Median confidence, correct / wrong",
         f"{_conf2(card['median_confidence_correct'])} / {_conf2(card['median_confidence_wrong'])}"),
    ]
    body = _table(None, [(f"<b>{_e(k)}</b>", v) for k, v in rows], text_columns=(0, 1))
    if not data["available"]:
        body += _missing("no labelled data was given (--data), so accuracy and confidence on real images are unknown")
    return body + _queries(report["queries"])


def _queries(queries):
    """The queries the audit spent, per stage and in all; or why they are not counted."""
    if not queries["counted"]:
        return f'<h3>Queries to the model</h3><p class="note">Not counted: {_e(queries["reason"])}.</p>'
    rows = [(_e(STAGE_TITLES.get(stage, stage)), "n/a" if count is None else f"{count:,}")
            for stage, count in queries["stages"].items()]
    runs = f" ({queries['runs']} runs)" if queries["runs"] > 1 else ""
    rows.append((_e(f"setup: checking the model when it was opened{runs}"), f"{queries['setup']:,}"))
    rows.append(("<b>total</b>", f"<b>{queries['total']:,}</b>"))
    return ("<h3>Queries to the model</h3><p>Images the model was asked about (a resumed audit counts the earlier "
            "runs' finished stages).</p>" + _table(["stage", "queries"], rows))


def _fooling(report, figures):
    fooling = report["fooling"]
    out = [f"<p><b>{fooling['fooled_99_any']} of {fooling['classes_tried']}</b> classes "
           f"({_pct(fooling['share_fooled_99'], 0)}) were fooled at &ge; 99% by at least one method.</p>"]
    if fooling["subset_note"]:
        out.append(f'<p class="note">{_e(fooling["subset_note"])}.</p>')
    summary_rows = []
    for method, m in fooling["methods"].items():
        if m.get("available") is False:
            summary_rows.append((_e(METHOD_TITLES[method]), f'<span class="no">not run</span>: {_e(m["reason"])}',
                                 *["&mdash;"] * 5))
            continue
        unit = m["unit"]
        title = METHOD_TITLES[method] + (f" (transfer from {m['surrogate']})" if m.get("access") == "transfer" else "")
        title += " (NES)" if m.get("search") == "nes" else ""
        if m.get("search") == "nes" and m.get("surrogate"):
            title += f", started on {m['surrogate']}"
        summary_rows.append((
            _e(title), f"{m[unit + 's']:,} {unit}s",
            f"{m['evaluations']:,}" + (" (by the surrogate)" if m.get("access") == "transfer" else ""),
            f"{m['fooled_99']} / {len(m['classes'])}", f"{m['fooled_9999']} / {len(m['classes'])}",
            _conf(m["median_confidence"]),
            "n/a" if m["median_first_99"] is None else f"{m['median_first_99']:g}",
        ))
    out.append(_table(["method", "budget", "images scored", "classes >= 99%", "classes >= 99.99%",
                       "median confidence", "median to 99%"], summary_rows))
    if any(m.get("access") == "transfer" for m in fooling["methods"].values()):
        out.append('<p class="note">A transfer method\'s images were made on the surrogate and scored on the model: '
                   "its confidences are the model's, and a class counts at the step its ascent stopped.</p>")
    out.append("<h3>Per class: best confidence, and the generation or step it first crossed 99% and 99.99%</h3>")
    methods = [m for m, summary in fooling["methods"].items() if summary.get("available") is not False]
    head = ["class"] + [f"{METHOD_TITLES[m]}: {h}" for m in methods for h in ("best", "99%", "99.99%")]
    rows = []
    for i, label in enumerate(fooling["classes"]):
        row = [f"{label}: {_e(fooling['class_names'][i])}"]
        for m in methods:
            c = fooling["methods"][m]["classes"][i]
            row += [_conf(c["confidence"]), "&mdash;" if c["first_99"] is None else str(c["first_99"]),
                    "&mdash;" if c["first_9999"] is None else str(c["first_9999"])]
        rows.append(row)
    out.append(_table(head, rows))
    out.append(f'<figure>{_img(figures, fooling["figures"]["progress"], "share of classes fooled over time")}'
               "<figcaption>Share of the classes at &ge; 99% against the generation (evolutions) or the step "
               "(gradient ascent).</figcaption></figure>")
    for method in methods:
        name = fooling["figures"][method]
        out.append(f'<figure>{_img(figures, name, METHOD_TITLES[method] + " fooling images", "montage")}'
                   f"<figcaption>{_e(METHOD_TITLES[method])}"
                   + (f" on the surrogate {_e(fooling['methods'][method]['surrogate'])}"
                      if fooling["methods"][method].get("access") == "transfer" else "")
                   + ": the best image of each class, with the model's "
                   f"confidence in that class ({_e(name)}).</figcaption></figure>")
    return "".join(out)


def _ran(report):
    """How many fooling methods ran."""
    return sum(m.get("available") is not False for m in report["fooling"]["methods"].values())


def _confidence(report, figures):
    c = report["confidence"]
    out = []
    if not c["available"]:
        out.append(_missing(f"{c['reason']}; only the fooling images are shown"))
    rows = [("real images, correctly classified", f"{c['correct']['images']:,}", _conf2(c["correct"]["median"])),
            ("real images, wrongly classified", f"{c['wrong']['images']:,}", _conf2(c["wrong"]["median"])),
            (f"fooling images ({methods_label(_ran(report))})", f"{c['fooling']['images']:,}",
             _conf2(c["fooling"]["median"]))]
    out.append(_table(["images", "count", "median top-1 confidence"], [(_e(a), b, d) for a, b, d in rows]))
    out.append(f'<figure>{_img(figures, c["figure"], "confidence histograms")}<figcaption>The model\'s top-1 '
               "confidence; a model whose confidence on fooling images matches that on real ones cannot use its "
               "confidence to reject them (Nguyen et al., supplement F).</figcaption></figure>")
    return "".join(out)


def _robustness(report, figures):
    r = report["robustness"]
    if not r["available"]:
        return _missing(r["reason"])
    curves, worst = r["curves"], r["worst_case"]
    out = [f"<p>{curves['images']:,} test images, {curves['levels']} noise levels per curve; distortion is the mean "
           "absolute change of a pixel in [0, 1] (eq. 2 of Uličný et al.).</p>"]
    rows = []
    for noise, curve in curves["curves"].items():
        name = NOISE_TITLES.get(noise, noise)
        if curve.get("access") == "transfer":
            name += f", transferred from {curve['surrogate']}"
        rows.append((_e(name), _num(curve["crossing_50"]) if curve["crossing_50"] is not None
                     else f"&gt; {_num(curve['max_distortion'])}", f"{curves['images']:,}"))
    for noise, reason in curves.get("not_run", {}).items():
        rows.append((_e(NOISE_TITLES.get(noise, noise)), f'<span class="no">not run</span>: {_e(reason)}', "&mdash;"))
    if worst["available"]:
        evaluated = ", ".join(_num(lv["distortion"]) for lv in worst["levels"])
        rows.append((_e(f"worst case ({', '.join(worst['attacks'])})"),
                     f"&asymp; {_num(worst['crossing_50'])} (interpolated between 0, {_e(evaluated)})"
                     if worst["crossing_50"] is not None else f"&gt; {_num(worst['max_distortion'])}",
                     f"{worst['images']:,}"))
    out.append(_table(["attack", "distortion at 50% error", "images"], rows))
    out.append(f'<figure>{_img(figures, r["figure"], "error against distortion")}<figcaption>Error against '
               "distortion; the dots are the worst case per image over the attacks.</figcaption></figure>")
    if worst["available"]:
        stages = [s for s in worst["levels"][0]["fooled"] if s != "clean"]
        head = ["distortion", "eps (L-inf)", "FGSM error", "worst-case error"] + [f"fooled by {s}" for s in stages]
        rows = [(_num(lv["distortion"]), f"{lv['eps']:.4f}" + ("*" if lv["eps_from"] == "distortion" else ""),
                 _pct(lv["fgsm_error"], 1), f"<b>{_pct(lv['error'], 1)}</b>",
                 *[str(lv["fooled"].get(s, 0)) for s in stages]) for lv in worst["levels"]]
        out.append("<h3>Worst case per image</h3>")
        out.append(f"<p>An image counts as an error if it is misclassified clean or any attack fools it; the attacks "
                   f"run as a cascade ({_e(', '.join(worst['attacks']))}) on {worst['images']:,} images, clean error "
                   f"{_pct(worst['clean_error'], 1)}.</p>")
        out.append(_table(head, rows))
        if worst.get("access") == "queries":
            not_run = "; ".join(f"{a}: {reason}" for a, reason in worst["not_run"].items())
            out.append(f'<p class="missing">Attacks that ran: {_e(", ".join(worst["attacks"]))}'
                       + (f" (transfer from {_e(', '.join(worst['surrogates']))})" if worst["surrogates"] else "")
                       + (f"; not run: {_e(not_run)}" if not_run else "") + f". {_e(worst['bound'])}.</p>")
        if any(lv["eps_from"] == "surrogate_fgsm" for lv in worst["levels"]):
            out.append('<p class="note">The radii are the FGSM eps of each distortion on the surrogate.</p>')
        if any(lv["eps_from"] == "distortion" for lv in worst["levels"]):
            out.append('<p class="note">* FGSM could not reach this distortion, or there was no gradient to follow, so '
                       "the attacks searched the L-inf ball of radius equal to the distortion.</p>")
        diagnostics = worst["diagnostics"]
        if diagnostics is not None:
            out.append(f"<h3>Gradient-masking diagnostics</h3><p>Every attack alone on {diagnostics['images']} "
                       "images (Athalye et al. 2018; Carlini et al. 2019). A <b>NO</b> means the gradient attacks "
                       "miss what exists, so a low error is suspect.</p>")
            rows = []
            for check in diagnostics["checks"]:
                answer = check["answer"]
                klass = "yes" if answer == "yes" else "no" if answer == "NO" else ""
                rows.append((_e(check["question"]), f'<span class="{klass}">{_e(answer)}</span>', _e(check["detail"])))
            out.append(_table(["check", "answer", "numbers"], rows, text_columns=(0, 2)))
    else:
        out.append(_missing(worst["reason"]))
    return "".join(out)


def _transfer(report):
    t = report["transfer"]
    if not t["available"]:
        return _missing(t["reason"] + "; pass --compare MODEL to show the fooling images to other models")
    rows = []
    for m in t["models"]:
        per = ", ".join(f"{METHOD_TITLES[k].lower()} {v['fooled_99']}/{v['images']}" for k, v in m["methods"].items())
        rows.append((_e(m["model"]), f"{m['fooled_99']} / {m['images']}", _pct(m["share_fooled_99"], 1),
                     f"{m['top1_match']} / {m['images']}", _e(per)))
    return ("<p>Each fooling image is shown to the other model: does it give the image's class the top-1 "
            "place at &ge; 99% too?</p>"
            + _table(["model", "fooled at >= 99%", "share", "same top-1", "by method"], rows, text_columns=(0, 4)))


def _detectors(report):
    d = report["detectors"]
    if not d["available"]:
        return _missing(d["reason"])
    classes, methods = d["classes"], [m for m in report["fooling"]["methods"]
                                      if report["fooling"]["methods"][m].get("available") is not False]
    out = [f"<p>Each detector gives an image a score and flags it above a threshold, set so that it accepts "
           f"{_pct(d['tpr'], 0)} of {d['calibration_images']:,} clean images; it is measured on {d['clean_images']:,} "
           "other clean images. <i>Your images</i>: the fooling images above, made without knowing the detector. "
           "<i>Adaptive</i>: the direct-encoding search run again against the model and the detector together, "
           "rewarded for high confidence and a low score (an attacker who knows the detector). A class counts as "
           f"fooled when an image of it gets &ge; {_pct(d['confidence'], 0)} confidence and is not flagged; the "
           "worst case counts a class that either attacker fools.</p>"]
    head = (["detector", "clean images flagged", "AUROC"] + [f"{METHOD_TITLES[m]} caught" for m in methods]
            + ["classes fooled unflagged: your images", "adaptive", "worst case"])
    rows = []
    for row in d["detectors"]:
        title = f"{DETECTOR_TITLES.get(row['detector'], row['detector'])} ({row['detector']})"
        if not row["available"]:
            rows.append((_e(title), f'<span class="no">not run</span>: {_e(row["reason"])}',
                         *["&mdash;"] * (len(head) - 2)))
            continue
        worst = f"{row['worst_case_fooled_99_unflagged']} / {classes}"
        holds = row["detector"] in d["holds"]
        rows.append((_e(title), _pct(row["clean_flagged"], 1), f"{row['auroc']:.3f}",
                     *[f"{row['methods'][m]['caught']} / {row['methods'][m]['images']}" for m in methods],
                     f"{row['non_adaptive_fooled_99_unflagged']} / {classes}",
                     f"{row['adaptive']['fooled_99_unflagged']} / {classes}",
                     f'<b class="{"yes" if holds else "no"}">{worst}</b>'))
    out.append(_table(head, rows, text_columns=(0,) if all(r["available"] for r in d["detectors"]) else (0, 1)))
    out.append(f'<p class="note">A detector holds when the worst case fools at most {_pct(d["holds_share"], 0)} of '
               "the classes. The adaptive search has the audit's budget for the direct encoding; a longer search "
               "can only fool more.</p>")
    return "".join(out)


def _verdict(report):
    v = report["verdict"]
    items = "".join(f"<li><b>{_e(d['name'])}</b>: {_e(d['why'])}.<br><code>{_e(d['command'])}</code></li>"
                    for d in v["defenses"])
    return (f'<p class="verdict-text">{_e(v["text"])}</p><h3>What to try</h3><ul class="defenses">{items}</ul>')


def render_html(report, figures):
    """The page for a report dict and its figures ({file name: PNG bytes}), as a string."""
    settings = report["settings"]
    title = f"keras-fool audit: {settings['model']}"
    sections = [
        ("model-card", "1. Model card", _model_card(report)),
        ("fooling", "2. Fooling images", _fooling(report, figures)),
        ("confidence", "3. Real vs fooling confidence", _confidence(report, figures)),
        ("robustness", "4. Robustness", _robustness(report, figures)),
        ("transfer", "5. Transfer", _transfer(report)),
        ("detectors", "6. Would a detector catch these?", _detectors(report)),
        ("verdict", "7. Verdict", _verdict(report)),
    ]
    meta = (f"budget <b>{_e(settings['budget'])}</b>, seed {settings['seed']}, keras-fool "
            f"{_e(report['keras_fool_version'])}, report schema {_e(report['schema_version'])}"
            + (f"; compared with {_e(', '.join(settings['compare']))}" if settings["compare"] else ""))
    body = "".join(f'<section id="{sid}"><h2>{_e(heading)}</h2>{content}</section>'
                   for sid, heading, content in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f'<body><main><header><h1>{_e(title)}</h1><p class="meta">{meta}</p></header>{body}</main></body></html>\n'
    )
