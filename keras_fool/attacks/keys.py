"""Per-image randomness: a counter-based hash of (seed, the image's own pixels, counter).

Random attacks take a stateless seed and draw from a counter-based hash of (seed, the image's own
pixels, restart or iteration): an image gets the same random start and squares in whatever batch
it is, so results are deterministic under a seed, do not depend on the batch size, and an attack
run only on the survivors of other attacks (a cascade) gives each of them exactly what it gives
them alone.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["image_keys", "uniform"]

_MASK32 = 0xFFFFFFFF


def _mix(h):
    """A 32-bit integer hash of every entry of an int64 tensor holding values in [0, 2**32)."""
    for _ in range(2):
        h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))
        h = tf.bitwise.bitwise_and(h * 0x45D9F3B, _MASK32)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))


def image_keys(x, seed):
    """A random key per image: a hash of the stateless ``seed`` (2,) and the image's own pixels.

    Args:
        x: float32 tensor (N, ...).
        seed: int tensor (2,).

    Returns:
        int64 tensor (N,) of values in [0, 2**32); equal images get equal keys.
    """
    n = tf.shape(x)[0]
    bits = tf.cast(tf.bitcast(tf.reshape(tf.cast(x, tf.float32), [n, -1]), tf.int32), tf.int64)
    bits = tf.bitwise.bitwise_and(bits, _MASK32)
    positions = _mix(tf.range(tf.shape(bits)[1], dtype=tf.int64) + 0x9E3779B9)
    content = tf.bitwise.bitwise_and(tf.reduce_sum(_mix(tf.bitwise.bitwise_xor(bits, positions[None, :])), axis=1),
                                     _MASK32)
    seed = tf.bitwise.bitwise_and(tf.cast(seed, tf.int64), _MASK32)
    stream = _mix(tf.bitwise.bitwise_xor(_mix(seed[0] + 0x7F4A7C15), seed[1]))
    return _mix(tf.bitwise.bitwise_xor(_mix(content), stream))


def uniform(keys, counter, shape):
    """Uniform float32 values in [0, 1) of shape (N, *shape), a function of each key and ``counter`` only.

    Args:
        keys: int64 tensor (N,) from :func:`image_keys`.
        counter: int scalar: the restart, the iteration, or any other index of the draw.
        shape: int tensor (rank,), the shape of each image's draw.

    Returns:
        float32 tensor (N, *shape).
    """
    shape = tf.cast(shape, tf.int32)
    stream = _mix(tf.bitwise.bitwise_xor(keys, _mix(tf.cast(counter, tf.int64) + 0x632BE5AB)))
    cells = _mix(tf.range(tf.cast(tf.reduce_prod(shape), tf.int64), dtype=tf.int64) + 0x2545F491)
    bits = _mix(tf.bitwise.bitwise_xor(stream[:, None], cells[None, :]))
    values = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) / 16777216.0
    return tf.reshape(values, tf.concat([tf.shape(keys)[:1], shape], axis=0))
