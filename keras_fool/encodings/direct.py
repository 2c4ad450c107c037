"""Direct encoding: the genome is the image, one float in [0, 1] per pixel value."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from keras_fool.encodings.base import Encoding
from keras_fool.validation import check_number

__all__ = ["DirectEncoding", "polynomial_delta"]


def _square_roots(eta):
    """How many square roots make the power 1/(eta+1): log2(eta+1) when it is a whole 1..8, else None."""
    roots = math.log2(eta + 1.0)
    return int(roots) if roots == int(roots) and 0 < roots <= 8 else None


def polynomial_delta(u, eta):
    """Deb's polynomial mutation step for uniform draws ``u`` in [0, 1).

    delta = (2u)^(1/(eta+1)) - 1 for u < 0.5, else 1 - (2(1-u))^(1/(eta+1)); with eta = 15 the mean
    |delta| is 1/17. Only one power is taken per gene, and when eta + 1 is a power of two it is
    a chain of square roots (four for eta = 15), several times cheaper than ``tf.pow``.
    """
    low = u < 0.5
    base = tf.where(low, 2.0 * u, 2.0 * (1.0 - u))
    roots = _square_roots(eta)
    if roots is not None:
        root = base
        for _ in range(roots):
            root = tf.sqrt(root)
    else:
        root = tf.pow(base, 1.0 / (eta + 1.0))
    return tf.where(low, root - 1.0, 1.0 - root)


def _mutation_step(genomes, u, rate, eta):
    """The mutated genomes for the uniform draws ``u`` (one per gene) at per-gene ``rate``."""
    delta = polynomial_delta(tf.minimum(u / rate, 1.0 - 1e-7), eta)
    return tf.clip_by_value(genomes + tf.where(u < rate, delta, 0.0), 0.0, 1.0)


# The same step as one fused XLA loop: a dozen element-wise passes over the population become one,
# which matters at 224x224x3 (at population 16 on two cores, about 2 ms instead of 40 a
# generation). Bit for bit the plain step's result when the power is a chain of square roots
# (square roots, divisions, sums and comparisons are exact in every code path); tf.pow is not
# (XLA's differs in the last ulp), so other etas keep the plain step. The uniform draws stay
# outside: XLA's Philox is far slower than TensorFlow's kernel.
_mutation_step_xla = tf.function(_mutation_step, jit_compile=True, reduce_retracing=True)


class DirectEncoding(Encoding):
    """Genomes are images: (n, H, W, C) float32 in [0, 1], initialised uniformly.

    Mutation, as in the original code of Nguyen et al. (2015): each gene with probability
    ``rate`` gets Deb's polynomial mutation (``eta`` = 15) and is clipped to [0, 1]. The rate can
    halve every ``rate_halving_every`` generations (the paper's schedule; None keeps it fixed).
    Optional SBX crossover (``crossover_eta``) is applied by the evolver; genes the two parents
    share are inherited unchanged (the original zeroed them by mistake).

    Args:
        image_shape: (H, W, C).
        rate: per-gene mutation probability, in (0, 1].
        eta: polynomial mutation distribution index, > 0.
        rate_halving_every: generations between halvings of ``rate``, or None.
        crossover_eta: SBX distribution index, > 0.
    """

    name = "direct"

    def __init__(self, image_shape=(28, 28, 1), rate=0.1, eta=15.0, rate_halving_every=1000, crossover_eta=15.0):
        super().__init__(image_shape)
        self.rate = check_number("rate", rate, 0.0, strict=True, maximum=1.0)
        self.eta = check_number("eta", eta, 0.0, strict=True)  # an infinite eta has no mutation step
        if rate_halving_every is not None and (int(rate_halving_every) != rate_halving_every or rate_halving_every < 1):
            raise ValueError(f"rate_halving_every must be a positive integer or None. Received: rate_halving_every={rate_halving_every}")
        self.rate_halving_every = None if rate_halving_every is None else int(rate_halving_every)
        self.crossover_eta = check_number("crossover_eta", crossover_eta, 0.0, strict=True)

    def get_config(self):
        return {
            "name": self.name,
            "image_shape": list(self.image_shape),
            "rate": self.rate,
            "eta": self.eta,
            "rate_halving_every": self.rate_halving_every,
            "crossover_eta": self.crossover_eta,
        }

    def validate(self, genomes):
        """Raise ValueError unless ``genomes`` is float32 (n, H, W, C) with every gene finite and in [0, 1]."""
        genomes = np.asarray(genomes)
        if genomes.dtype != np.float32 or genomes.ndim != 4 or genomes.shape[1:] != self.image_shape:
            raise ValueError(f"direct genomes must be float32 of shape (n, {', '.join(map(str, self.image_shape))}). "
                             f"Received: {genomes.dtype} of shape {genomes.shape}")
        bad = ~np.isfinite(genomes)
        if bad.any():
            count, first = int(bad.sum()), int(np.argwhere(bad)[0][0])
            raise ValueError(f"direct genomes must be finite and in [0, 1]. Received: {count} "
                             f"{'gene is' if count == 1 else 'genes are'} NaN or infinite (first in genome {first})")
        if genomes.size and not (genomes.min() >= 0.0 and genomes.max() <= 1.0):
            raise ValueError(f"direct genomes must be finite and in [0, 1]. Received: values in "
                             f"[{genomes.min():g}, {genomes.max():g}]")

    def random(self, n, seed):
        return tf.random.stateless_uniform((n, *self.image_shape), seed, dtype=tf.float32)

    def rate_at(self, generation):
        """The per-gene mutation probability in force at ``generation`` (a scalar tensor)."""
        if self.rate_halving_every is None:
            return tf.constant(self.rate, tf.float32)
        halvings = tf.cast(generation // self.rate_halving_every, tf.float32)
        return self.rate * tf.pow(0.5, halvings)

    def mutate(self, genomes, seed, generation=0):
        # One uniform draw per gene serves twice: u < rate picks the gene, and given that,
        # u / rate is again uniform on [0, 1) and independent of the choice, so it drives the
        # polynomial step. Half the random numbers of two draws, same distribution.
        u = tf.random.stateless_uniform(tf.shape(genomes), seed)
        step = _mutation_step_xla if _square_roots(self.eta) is not None else _mutation_step
        return step(genomes, u, self.rate_at(generation), self.eta)

    def crossover(self, first, second, seed):
        """Simulated binary crossover per gene; equal genes pass through unchanged."""
        u = tf.random.stateless_uniform(tf.shape(first), seed)
        exponent = 1.0 / (self.crossover_eta + 1.0)
        beta = tf.where(u <= 0.5, tf.pow(2.0 * u, exponent), tf.pow(1.0 / (2.0 * (1.0 - u) + 1e-12), exponent))
        # 0.5((1+b)x + (1-b)y) written so that x == y gives exactly x.
        child = 0.5 * (first + second) + 0.5 * beta * (first - second)
        return tf.clip_by_value(child, 0.0, 1.0)

    def iso_line(self, parents, mates, seed, generation, iso_sigma, line_sigma):
        """Iso+LineDD on every gene, clipped to [0, 1]; no polynomial mutation after it."""
        seeds = tf.random.experimental.stateless_split(seed, 2)
        shape = tf.shape(parents)
        iso = iso_sigma * tf.random.stateless_normal(shape, seeds[0])
        line = line_sigma * tf.random.stateless_normal(tf.concat([shape[:1], tf.ones_like(shape[1:])], 0), seeds[1])
        return tf.clip_by_value(parents + iso + line * (mates - parents), 0.0, 1.0)

    def decode(self, genomes):
        return genomes
