"""How much memory an evolution run needs, estimated before it starts (the machine's side is
:func:`keras_fool.validation.available_memory`).

The estimate counts what grows with the run's size: every offspring's genome (a few copies: parents,
children, mutated children), the decoded images, the archive, the target's activations for one
evaluation batch, and for CPPNs the renderer's rows. It errs on the high side: a direct-encoding
run of 100,000 LeNet offspring peaked at 8.7 GB (8.1 GiB) before evaluation was batched, and the
estimate for it unbatched is 10.1 GiB; batched by 4,096 the estimate is 2.2 GiB.
"""

from __future__ import annotations

import numpy as np

# Re-exported: how sizes are shown is validation's, shared by every size check.
from keras_fool.validation import format_bytes

__all__ = ["BASE_BYTES", "estimate_run_memory", "format_bytes"]

BASE_BYTES = 700 * 2**20  # the process with TensorFlow and a small model loaded (RESULTS.md: 699 MB peak)
_GENOME_COPIES = 4  # parents, crossed, mutated children, and the archive's gathered rows


def _layer_outputs(model):
    """Floats a model's layers output per image (nested models included); None if unknown."""
    total = 0
    for layer in getattr(model, "layers", []):
        if hasattr(layer, "layers") and layer.layers:
            inner = _layer_outputs(layer)
            if inner is None:
                return None
            total += inner
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        dims = [d for d in shape[1:]]
        if any(d is None for d in dims):
            return None
        total += int(np.prod(dims)) if dims else 1
    return total


def _genome_bytes(encoding):
    """Bytes of one genome of ``encoding`` (a CPPN's from its capacity, without building one)."""
    import tensorflow as tf

    if getattr(encoding, "name", "") == "cppn":  # activation, alive, position per node; connected, weight per pair
        n = encoding.capacity
        return n * (4 + 1 + 4) + n * n * (1 + 4)
    spec = encoding.genome_spec()
    return sum(int(np.prod(t.shape[1:])) * t.dtype.size for t in tf.nest.flatten(spec))


def _activation_bytes(target):
    """Bytes of the activations ``target``'s Keras models output per image (0 for a query-only target)."""
    per_image = 0
    for model in getattr(target, "models", ()):  # a query-only target has no Keras model whose activations count
        outputs = _layer_outputs(model)
        per_image += (outputs if outputs is not None else 50 * int(np.prod(target.image_shape))) * 4
    return per_image


def estimate_run_memory(target, encoding, population, eval_batch_size, surrogate=None, surrogate_batch=0):
    """Bytes an evolution run of ``population`` offspring against ``target`` needs, about.

    Args:
        target: a :class:`~keras_fool.target.Target`.
        encoding: its :class:`~keras_fool.encodings.Encoding`.
        population: offspring per generation.
        eval_batch_size: offspring decoded and scored at once.
        surrogate: NES's surrogate (a target with gradients), climbed ``surrogate_batch`` classes at a time
            before generation 0: its activations are kept for the gradient, and the gradient has their size.

    Returns:
        A dict: ``total`` (bytes), and the parts ``base``, ``genomes``, ``images``, ``activations``,
        ``render``, ``surrogate``.
    """
    image = int(np.prod(target.image_shape)) * 4
    batch = min(population, eval_batch_size)
    per_image = _activation_bytes(target)
    climb = 0
    if surrogate is not None:
        at_once = min(surrogate_batch, eval_batch_size)  # NES climbs at most eval_batch_size classes at once
        climb = at_once * (2 * _activation_bytes(surrogate) + int(np.prod(surrogate.image_shape)) * 4)
    genome = _genome_bytes(encoding)
    render = 0
    if getattr(encoding, "name", "") == "cppn":  # one scratch row per node and pixel, a few live at once
        render = batch * encoding.capacity * image * 2
    crops = getattr(target, "crops", 1)  # the model scores every crop of every image
    parts = {
        "base": BASE_BYTES,
        "genomes": (_GENOME_COPIES * population + target.num_classes) * genome,
        "images": 2 * batch * image,
        "activations": batch * crops * per_image,
        "render": render,
        "surrogate": climb,
    }
    parts["total"] = sum(parts.values())
    return parts

