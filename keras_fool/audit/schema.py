"""The versioned schema of ``report.json`` (JSON Schema, draft 2020-12) and a validator for it.

``REPORT_SCHEMA`` documents every field; ``python -c "import json; from keras_fool.audit.schema
import REPORT_SCHEMA; print(json.dumps(REPORT_SCHEMA, indent=2))"`` prints it. A change that
renames or removes a field, or changes its meaning, raises :data:`SCHEMA_VERSION`; adding an
optional field does not.

:func:`validate_report` implements the part of JSON Schema the schema uses (``type``, ``enum``,
``const``, ``properties``, ``required``, ``additionalProperties``, ``items``, ``minItems``,
``maxItems``, ``minimum``, ``maximum``, ``minLength``, ``anyOf`` and local ``$ref``), so checking
a report needs no extra package; the tests also check the schema with the ``jsonschema`` package
when it is installed.
"""

from __future__ import annotations

__all__ = ["REPORT_SCHEMA", "SCHEMA_ID", "SCHEMA_VERSION", "SchemaError", "validate", "validate_report"]

SCHEMA_ID = "keras-fool-audit"
# 2: models that answer queries only (sections that did not run, query counts);
# 3: the detectors section (a new required key, which a version-2 validator refuses)
SCHEMA_VERSION = "3"


def _nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


_FRACTION = {"type": "number", "minimum": 0.0, "maximum": 1.0}
_COUNT = {"type": "integer", "minimum": 0}
_NAMES = {"type": "array", "items": {"type": "string"}}


def _section(available_required, properties, description):
    """A section that is either filled (``available`` true) or says why not (``available`` false, ``reason``)."""
    return {
        "description": description,
        "type": "object",
        "properties": {"available": {"type": "boolean"}, "reason": {"type": "string"}, **properties},
        "required": ["available"],
        "anyOf": [
            {"properties": {"available": {"const": False}}, "required": ["reason"]},
            {"properties": {"available": {"const": True}}, "required": available_required},
        ],
    }


REPORT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"{SCHEMA_ID}/{SCHEMA_VERSION}",
    "title": "keras-fool audit report",
    "description": "Every number of report.html. Confidences and errors are fractions in [0, 1]; distortion is "
                   "eq. 2 of Uličný et al. (mean absolute pixel change of [0, 1] images). Keys under 'timings' "
                   "vary from run to run; everything else is the same for the same model, data, budget and seed.",
    "type": "object",
    "required": ["schema", "schema_version", "keras_fool_version", "settings", "model_card", "fooling", "confidence",
                 "robustness", "transfer", "detectors", "queries", "verdict", "files", "timings"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "schema_version": {"const": SCHEMA_VERSION, "description": "Raised when a field changes meaning."},
        "keras_fool_version": {"type": "string"},
        "settings": {
            "description": "What was audited and how.",
            "type": "object",
            "required": ["model", "compare", "surrogate", "budget", "budget_sizes", "seed", "data", "classes",
                         "input_range", "preprocess", "logits"],
            "additionalProperties": False,
            "properties": {
                "model": {"type": "string", "description": "The model's name in the report."},
                "compare": {**_NAMES, "description": "The --compare models."},
                "surrogate": _nullable({"type": "string", "description": "The --surrogate model, whose gradients "
                                                                         "the gradient stages of a model that answers "
                                                                         "queries only follow."}),
                "budget": {"type": "string", "description": "quick, standard, thorough, or a custom budget's name."},
                "budget_sizes": {"$ref": "#/$defs/budget"},
                "seed": {"type": "integer", "minimum": 0},
                "data": {"$ref": "#/$defs/data_identity"},
                "classes": {"type": "array", "items": _COUNT, "minItems": 1,
                            "description": "The class indices fooled."},
                "input_range": {"enum": ["0-1", "0-255"]},
                "preprocess": {"enum": ["none", "tf", "torch", "caffe"]},
                "logits": {"type": "boolean"},
            },
        },
        "model_card": {
            "description": "Section 1.",
            "type": "object",
            "required": ["name", "source_kind", "source", "access", "backend", "input_shape", "classes",
                         "class_names", "parameters", "outputs", "input_range", "preprocess", "data", "accuracy",
                         "median_confidence", "median_confidence_correct", "median_confidence_wrong"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "source_kind": {"enum": ["preset", "file", "endpoint", "in-memory model"]},
                "source": {"type": "object",
                           "description": "preset name, or file path and SHA-256, or URL, or weights SHA-256."},
                "access": {"enum": ["gradients", "queries only"],
                           "description": "gradients: attacked white-box; queries only: a deployed model searched by "
                                          "queries, its gradient stages run on the surrogate or not at all."},
                "backend": {"type": "string", "description": "keras, or the deployed model's backend (tflite, ...)."},
                "input_shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 3,
                                "maxItems": 3, "description": "(height, width, channels) of the images."},
                "classes": {"type": "integer", "minimum": 2},
                "class_names": _NAMES,
                "parameters": _nullable({**_COUNT, "description": "null: a model that answers queries only."}),
                "outputs": {"enum": ["probabilities", "logits"]},
                "input_range": {"enum": ["0-1", "0-255"]},
                "preprocess": {"enum": ["none", "tf", "torch", "caffe"]},
                "data": {
                    "type": "object",
                    "required": ["available", "source", "description", "images", "total_images"],
                    "additionalProperties": False,
                    "properties": {
                        "available": {"type": "boolean"}, "reason": {"type": "string"},
                        "source": _nullable({"enum": ["mnist", "npz", "folder"]}),
                        "description": _nullable({"type": "string"}),
                        "images": {**_COUNT, "description": "Real images evaluated."},
                        "total_images": {**_COUNT, "description": "Images the source holds."},
                    },
                },
                "accuracy": _nullable(_FRACTION),
                "median_confidence": _nullable({**_FRACTION, "description": "Median top-1 probability."}),
                "median_confidence_correct": _nullable(_FRACTION),
                "median_confidence_wrong": _nullable(_FRACTION),
            },
        },
        "fooling": {
            "description": "Section 2: fooling images by three methods.",
            "type": "object",
            "required": ["classes", "class_names", "classes_tried", "classes_total", "subset_note", "methods",
                         "fooled_99_any", "share_fooled_99", "figures"],
            "additionalProperties": False,
            "properties": {
                "classes": {"type": "array", "items": _COUNT, "minItems": 1},
                "class_names": _NAMES,
                "classes_tried": {"type": "integer", "minimum": 1},
                "classes_total": {"type": "integer", "minimum": 2},
                "subset_note": _nullable({"type": "string"}),
                "methods": {
                    "type": "object",
                    "required": ["direct", "cppn", "gradient"],
                    "additionalProperties": False,
                    "properties": {"direct": {"$ref": "#/$defs/method"}, "cppn": {"$ref": "#/$defs/method"},
                                   "gradient": {"$ref": "#/$defs/method"}},
                },
                "fooled_99_any": {**_COUNT, "description": "Classes fooled at >= 99% by at least one method."},
                "share_fooled_99": _FRACTION,
                "figures": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "confidence": {
            **_section(["correct", "wrong", "fooling", "bins", "figure"], {
                "bins": {"type": "array", "items": _FRACTION, "minItems": 2},
                "correct": {"$ref": "#/$defs/histogram"},
                "wrong": {"$ref": "#/$defs/histogram"},
                "fooling": {"$ref": "#/$defs/histogram"},
                "figure": {"type": "string"},
            }, "Section 3 (supplement F): top-1 confidence on correct and wrong real images and on fooling images."),
        },
        "robustness": {
            **_section(["curves", "worst_case", "figure"], {
                "curves": {"$ref": "#/$defs/curves"},
                "worst_case": {"$ref": "#/$defs/worst_case"},
                "figure": {"type": "string"},
            }, "Section 4: error against distortion."),
        },
        "queries": {
            "description": "Images the model was asked about, per stage and in all (a resumed audit counts the "
                           "earlier runs' stages and setups); not counted for a Keras model, whose evaluations are "
                           "in-process (each fooling method's 'evaluations' counts them).",
            "type": "object",
            "required": ["counted", "stages", "setup", "runs", "total"],
            "additionalProperties": False,
            "properties": {
                "counted": {"type": "boolean"},
                "reason": {"type": "string", "description": "Why they are not counted."},
                "stages": {"type": "object", "additionalProperties": _nullable(_COUNT),
                           "description": "Stage -> queries it spent (null: not counted)."},
                "setup": _nullable({**_COUNT, "description": "Queries before the first stage of each run (the "
                                                             "backend's checks when it was built), summed."}),
                "runs": _nullable({"type": "integer", "minimum": 1, "description": "Runs (the first and each "
                                                                                   "--resume)."}),
                "total": _nullable({**_COUNT, "description": "setup plus every stage's."}),
            },
        },
        "transfer": {
            **_section(["models"], {
                "models": {"type": "array", "items": {"$ref": "#/$defs/transfer_model"}},
            }, "Section 5: the fooling images shown to each --compare model."),
        },
        "detectors": _section(["calibration_images", "clean_images", "tpr", "confidence", "classes",
                               "holds_share", "detectors", "best", "holds"], {
            "calibration_images": {**_COUNT, "description": "Clean images each threshold is set on."},
            "clean_images": {**_COUNT, "description": "Other clean images the detectors are measured on."},
            "tpr": {**_FRACTION, "description": "Share of the calibration images each threshold accepts."},
            "confidence": {**_FRACTION, "description": "Confidence an image needs for its class to count as fooling."},
            "classes": {"type": "integer", "minimum": 1},
            "holds_share": {**_FRACTION, "description": "A detector holds when the worst case fools at most this "
                                                        "share of the classes unflagged."},
            "detectors": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/detector"}},
            "best": {"type": "string", "description": "The detector with the fewest classes fooled in the worst case."},
            "holds": {**_NAMES, "description": "The detectors that hold against the worst case (may be none)."},
        }, "Section 6: out-of-distribution detectors against the fooling images and an adaptive attacker."),
        "verdict": {
            "description": "Section 7.",
            "type": "object",
            "required": ["text", "defenses"],
            "additionalProperties": False,
            "properties": {
                "text": {"type": "string", "minLength": 1},
                "defenses": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["name", "why", "command"], "additionalProperties": False,
                    "properties": {"name": {"type": "string"}, "why": {"type": "string"},
                                   "command": {"type": "string"}}}},
            },
        },
        "files": {
            "type": "object",
            "required": ["html", "json", "figures"],
            "additionalProperties": False,
            "properties": {"html": {"type": "string"}, "json": {"type": "string"}, "figures": _NAMES},
        },
        "timings": {
            "description": "Seconds per stage (a resumed stage keeps the seconds of the run that finished it).",
            "type": "object",
            "required": ["stages_seconds", "resumed_stages"],
            "properties": {
                "stages_seconds": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
                "resumed_stages": _NAMES,
            },
        },
    },
    "$defs": {
        "budget": {
            "type": "object",
            "required": ["name", "max_classes", "population", "direct_generations", "cppn_generations",
                         "ascent_steps", "test_images", "levels", "worst_case_images", "distortions", "attacks",
                         "pgd_steps", "pgd_restarts", "square_queries", "diagnostic_images"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "max_classes": _nullable({"type": "integer", "minimum": 1}),
                "population": {"type": "integer", "minimum": 1},
                "direct_generations": {"type": "integer", "minimum": 1},
                "cppn_generations": {"type": "integer", "minimum": 1},
                "ascent_steps": {"type": "integer", "minimum": 1},
                "test_images": _nullable({"type": "integer", "minimum": 1}),
                "levels": {"type": "integer", "minimum": 2},
                "worst_case_images": {"type": "integer", "minimum": 1},
                "distortions": {"type": "array", "items": _FRACTION, "minItems": 1},
                "attacks": _NAMES,
                "pgd_steps": {"type": "integer", "minimum": 1},
                "pgd_restarts": {"type": "integer", "minimum": 1},
                "square_queries": {"type": "integer", "minimum": 1},
                "diagnostic_images": _COUNT,
            },
        },
        "data_identity": {
            "type": "object",
            "required": ["kind", "path", "sha256", "limit"],
            "additionalProperties": False,
            "properties": {
                "kind": {"enum": ["none", "mnist", "npz", "folder"]},
                "path": _nullable({"type": "string"}),
                "sha256": _nullable({"type": "string"}),
                "limit": _nullable({"type": "integer", "minimum": 1}),
            },
        },
        "class_result": {
            "type": "object",
            "required": ["label", "name", "confidence", "first_99", "first_9999"],
            "additionalProperties": False,
            "properties": {
                "label": _COUNT,
                "name": {"type": "string"},
                "confidence": {**_FRACTION, "description": "The best confidence reached for the class."},
                "first_99": _nullable({**_COUNT, "description": "Generation or step it first reached 99%."}),
                "first_9999": _nullable({**_COUNT, "description": "Generation or step it first reached 99.99%."}),
            },
        },
        "method": {"anyOf": [
            {"type": "object", "required": ["method", "available", "reason"], "additionalProperties": False,
             "description": "A method that did not run (gradient ascent on a model that answers queries only, "
                            "without a surrogate).",
             "properties": {"method": {"enum": ["direct", "cppn", "gradient"]}, "available": {"const": False},
                            "reason": {"type": "string"}}},
            {"$ref": "#/$defs/method_result"},
        ]},
        "method_result": {
            "type": "object",
            "required": ["method", "unit", "evaluations", "classes", "fooled_99", "fooled_9999", "share_fooled_99",
                         "median_confidence", "min_confidence", "median_first_99", "max_first_99", "settings"],
            "additionalProperties": False,
            "properties": {
                "method": {"enum": ["direct", "cppn", "gradient"]},
                "available": {"const": True},
                "access": {"enum": ["queries", "white-box", "transfer"],
                           "description": "queries: searched by the model's answers; white-box: its gradients; "
                                          "transfer: made on the surrogate, the confidences the model's own."},
                "surrogate": {"type": "string", "description": "transfer: the model the images were made on; "
                              "queries (NES): the model whose gradient ascent gave each class its start."},
                "surrogate_median_confidence": _FRACTION,
                "unit": {"enum": ["generation", "step"]},
                "generations": _COUNT,
                "steps": _COUNT,
                "population": {"type": "integer", "minimum": 1},
                "search": {"enum": ["map-elites", "nes"],
                           "description": "The black-box search: MAP-Elites (the paper's), or NES, a gradient "
                                          "estimated from queries (a colour model's direct encoding)."},
                "evaluations": {**_COUNT, "description": "Images scored (a gradient step counts one)."},
                "classes": {"type": "array", "items": {"$ref": "#/$defs/class_result"}, "minItems": 1},
                "fooled_99": _COUNT,
                "fooled_9999": _COUNT,
                "share_fooled_99": _FRACTION,
                "median_confidence": _FRACTION,
                "min_confidence": _FRACTION,
                "median_first_99": _nullable({"type": "number", "minimum": 0}),
                "max_first_99": _nullable(_COUNT),
                "settings": {"type": "object"},
            },
        },
        "histogram": {
            "type": "object",
            "required": ["images", "median", "histogram"],
            "additionalProperties": False,
            "properties": {
                "images": _COUNT,
                "median": _nullable(_FRACTION),
                "histogram": {"type": "array", "items": _COUNT, "minItems": 1,
                              "description": "Image counts in the bins of 'bins'."},
            },
        },
        "curve": {
            "type": "object",
            "required": ["strength", "distortion", "error", "crossing_50", "max_distortion"],
            "additionalProperties": False,
            "properties": {
                "access": {"enum": ["queries", "white-box", "transfer"],
                           "description": "transfer: the FGSM direction is the surrogate's gradient sign."},
                "surrogate": {"type": "string"},
                "strength": {"type": "array", "items": {"type": "number", "minimum": 0},
                             "description": "sigma (Gaussian) or eps (FGSM) of each level."},
                "distortion": {"type": "array", "items": _FRACTION},
                "error": {"type": "array", "items": _FRACTION},
                "crossing_50": _nullable({**_FRACTION, "description": "Distortion at 50% error (interpolated); "
                                                                      "null if not reached."}),
                "max_distortion": _FRACTION,
            },
        },
        "curves": _section(["images", "levels", "curves"], {
            "images": {"type": "integer", "minimum": 1},
            "levels": {"type": "integer", "minimum": 2},
            "curves": {"type": "object", "required": ["gaussian"], "additionalProperties": False,
                       "properties": {"gaussian": {"$ref": "#/$defs/curve"},
                                      "gradient_sign": {"$ref": "#/$defs/curve"}}},
            "not_run": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "Curve -> why it did not run."},
        }, "Gaussian-noise and FGSM (gradient_sign) curves."),
        "worst_level": {
            "type": "object",
            "required": ["distortion", "eps", "eps_from", "error", "fgsm_error", "attempted", "fooled",
                         "fooling_distortion"],
            "additionalProperties": False,
            "properties": {
                "distortion": _FRACTION,
                "eps": {"type": "number", "minimum": 0, "description": "L-infinity radius the attacks searched."},
                "eps_from": {"enum": ["fgsm", "surrogate_fgsm", "distortion"],
                             "description": "fgsm: the FGSM eps of that distortion; surrogate_fgsm: the surrogate's "
                                            "(a model that answers queries only); distortion: FGSM could not reach "
                                            "it, or there was no gradient, so the radius is the distortion itself."},
                "error": _FRACTION,
                "fgsm_error": _nullable(_FRACTION),
                "attempted": {"type": "object", "additionalProperties": _COUNT,
                              "description": "Stage of the cascade -> images it ran on."},
                "fooled": {"type": "object", "additionalProperties": _COUNT,
                           "description": "Stage of the cascade -> images it fooled first."},
                "fooling_distortion": _nullable({"type": "number", "minimum": 0}),
            },
        },
        "worst_case": _section(["images", "attacks", "clean_error", "settings", "levels", "crossing_50",
                                "fgsm_crossing_50", "max_distortion", "diagnostics"], {
            "images": {"type": "integer", "minimum": 1},
            "attacks": _NAMES,
            "clean_error": _FRACTION,
            "settings": {"type": "object"},
            "levels": {"type": "array", "items": {"$ref": "#/$defs/worst_level"}, "minItems": 1},
            "crossing_50": _nullable(_FRACTION),
            "fgsm_crossing_50": _nullable(_FRACTION),
            "max_distortion": _FRACTION,
            "access": {"enum": ["white-box", "queries"],
                       "description": "queries: no attack used the model's gradients (it answers queries only)."},
            "surrogates": {**_NAMES, "description": "The models the transfer attack crafted its images on."},
            "not_run": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "Attack of the budget -> why it did not run."},
            "bound": {"type": "string", "description": "Why the error is a lower bound on the white-box worst case."},
            "diagnostics": _nullable({
                "type": "object",
                "required": ["images", "errors", "worst_case", "unbounded_error", "checks"],
                "additionalProperties": False,
                "properties": {
                    "images": _COUNT,
                    "errors": {"type": "object", "additionalProperties": {"type": "array", "items": _FRACTION}},
                    "worst_case": {"type": "array", "items": _FRACTION},
                    "unbounded_error": _nullable(_FRACTION),
                    "checks": {"type": "array", "items": {
                        "type": "object", "required": ["name", "question", "answer", "detail"],
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}, "question": {"type": "string"},
                                       "answer": {"enum": ["yes", "NO", "not run"]}, "detail": {"type": "string"}}}},
                },
            }),
        }, "The per-image worst case over the attacks, and the gradient-masking checks."),
        "detector": {"anyOf": [
            {"type": "object", "required": ["detector", "available", "reason"], "additionalProperties": False,
             "description": "A detector that does not apply to the model, and why.",
             "properties": {"detector": {"type": "string"}, "available": {"const": False},
                            "reason": {"type": "string"}}},
            {"$ref": "#/$defs/detector_result"},
        ]},
        "detector_result": {
            "type": "object",
            "required": ["detector", "available", "settings", "threshold", "fitted_on", "clean_flagged", "auroc",
                         "methods", "non_adaptive_fooled_99_unflagged", "adaptive", "worst_case_fooled_99_unflagged",
                         "share_worst_case", "adaptive_weaker"],
            "additionalProperties": False,
            "properties": {
                "detector": {"type": "string"},
                "available": {"const": True},
                "settings": {"type": "object"},
                "threshold": {"type": "number", "description": "Scores above it are flagged."},
                "fitted_on": _nullable({"type": "string", "description": "The images its statistics come from."}),
                "clean_flagged": {**_FRACTION, "description": "Share of the held-out clean images flagged."},
                "auroc": {**_FRACTION, "description": "Clean against all the fooling images: 0.5 chance, 1 perfect."},
                "methods": {"type": "object", "additionalProperties": {
                    "type": "object", "required": ["images", "caught", "share_caught", "auroc", "fooled_99_unflagged"],
                    "additionalProperties": False,
                    "properties": {"images": _COUNT, "caught": _COUNT, "share_caught": _FRACTION, "auroc": _FRACTION,
                                   "fooled_99_unflagged": {**_COUNT, "description": "Its images at >= 99% and not "
                                                                                   "flagged."}}}},
                "non_adaptive_fooled_99_unflagged": {**_COUNT, "description": "Classes the audit's fooling images "
                                                                              "still fool unflagged."},
                "adaptive": {
                    "type": "object",
                    "required": ["search", "generations", "evaluations", "started_from", "fooled_99_unflagged",
                                 "flagged", "median_confidence"],
                    "additionalProperties": False,
                    "description": "The direct-encoding search re-run against the classifier guarded by the detector.",
                    "properties": {"search": {"enum": ["map-elites", "nes"]}, "generations": _COUNT,
                                   "evaluations": {**_COUNT, "description": "Images scored, the start included."},
                                   "started_from": {**_COUNT, "description": "The audit's evolved images the search "
                                                                             "started from (0: a random start)."},
                                   "fooled_99_unflagged": _COUNT, "flagged": _COUNT,
                                   "median_confidence": _FRACTION},
                },
                "worst_case_fooled_99_unflagged": {**_COUNT, "description": "Classes either attacker fools unflagged."},
                "share_worst_case": _FRACTION,
                "adaptive_weaker": {"type": "boolean", "description": "The adaptive search fooled fewer classes than "
                                                                      "the audit's images (the worst case counts both)."},
            },
        },
        "transfer_model": {
            "type": "object",
            "required": ["model", "methods", "images", "fooled_99", "top1_match", "share_fooled_99",
                         "fooled_99_of_original_99", "original_99"],
            "additionalProperties": False,
            "properties": {
                "model": {"type": "string"},
                "methods": {"type": "object", "additionalProperties": {
                    "type": "object",
                    "required": ["images", "fooled_99", "fooled_99_of_original_99", "original_99", "top1_match",
                                 "median_confidence"],
                    "additionalProperties": False,
                    "properties": {"images": _COUNT, "fooled_99": _COUNT, "fooled_99_of_original_99": _COUNT,
                                   "original_99": _COUNT, "top1_match": _COUNT, "median_confidence": _FRACTION}}},
                "images": _COUNT,
                "fooled_99": {**_COUNT, "description": "Images whose class it also gives >= 99%."},
                "top1_match": _COUNT,
                "share_fooled_99": _FRACTION,
                "fooled_99_of_original_99": _COUNT,
                "original_99": _COUNT,
            },
        },
    },
}


class SchemaError(ValueError):
    """A report that does not match the schema; the message names the path of the first mismatch."""


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _resolve(root, ref):
    if not ref.startswith("#/"):
        raise SchemaError(f"only local references are supported. Received: $ref={ref!r}")
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _errors(instance, schema, root, path):
    """The first mismatch as a message, or None."""
    if "$ref" in schema:
        return _errors(instance, _resolve(root, schema["$ref"]), root, path)
    where = path or "report"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](instance) for t in types):
            return f"{where} must be {' or '.join(types)}; it is {type(instance).__name__} {instance!r:.80}"
    if "const" in schema and not (instance == schema["const"] and type(instance) is type(schema["const"])):
        return f"{where} must be {schema['const']!r}; it is {instance!r:.80}"
    if "enum" in schema and instance not in schema["enum"]:
        return f"{where} must be one of {schema['enum']}; it is {instance!r:.80}"
    if _TYPES["number"](instance):
        if "minimum" in schema and instance < schema["minimum"]:
            return f"{where} must be >= {schema['minimum']}; it is {instance!r}"
        if "maximum" in schema and instance > schema["maximum"]:
            return f"{where} must be <= {schema['maximum']}; it is {instance!r}"
    if isinstance(instance, str) and len(instance) < schema.get("minLength", 0):
        return f"{where} must have at least {schema['minLength']} characters"
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            return f"{where} must have at least {schema['minItems']} items; it has {len(instance)}"
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            return f"{where} must have at most {schema['maxItems']} items; it has {len(instance)}"
        if "items" in schema:
            for i, item in enumerate(instance):
                found = _errors(item, schema["items"], root, f"{where}[{i}]")
                if found:
                    return found
    if isinstance(instance, dict):
        for key in schema.get("required", ()):
            if key not in instance:
                return f"{where} lacks the key {key!r}"
        properties = schema.get("properties", {})
        for key, value in instance.items():
            if key in properties:
                found = _errors(value, properties[key], root, f"{where}.{key}")
            elif "additionalProperties" in schema:
                extra = schema["additionalProperties"]
                if extra is False:
                    return f"{where} has the key {key!r}, which the schema does not define"
                found = None if extra is True else _errors(value, extra, root, f"{where}.{key}")
            else:
                found = None
            if found:
                return found
    if "anyOf" in schema:
        found = [_errors(instance, option, root, path) for option in schema["anyOf"]]
        if all(found):
            if len(found) == 1:
                return found[0]
            return f"{where} matches none of its {len(found)} forms: " + "; ".join(found)
    return None


def validate(instance, schema=None):
    """Check ``instance`` against ``schema`` (the report's by default).

    Raises:
        SchemaError: the first mismatch, with its path (e.g. ``report.fooling.methods.cppn.classes[3].confidence``).
    """
    schema = REPORT_SCHEMA if schema is None else schema
    found = _errors(instance, schema, schema, "")
    if found:
        raise SchemaError(found)
    return instance


def validate_report(report):
    """Check a report dict (``report.json``'s content) against :data:`REPORT_SCHEMA`; returns it."""
    return validate(report, REPORT_SCHEMA)
