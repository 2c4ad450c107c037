"""The low-pass filter pre-processing of Uličný et al. (after Gu & Rigazio, 2014)."""

from __future__ import annotations

import keras
import numpy as np

from keras_fool.validation import check_int, check_number

__all__ = ["LowPassFilter", "PAPER_LOW_PASS_VARIANCES", "gaussian_kernel"]

# kernel size -> variance chosen by the paper so that the clean error stays under 1%.
PAPER_LOW_PASS_VARIANCES = {3: 7.0, 5: 1.3, 7: 0.6}


def gaussian_kernel(kernel_size, variance):
    """A square Gaussian kernel sampled over (-3, 3) as in the paper, normalised to sum 1.

    The ``kernel_size`` sample points are ``linspace(-3, 3, kernel_size)`` on each axis (the paper
    says the kernel is "filled with a Gaussian function defined in range (-3, 3)"; we include the
    end points), and each entry is ``exp(-(u^2 + v^2) / (2 * variance))``.

    Args:
        kernel_size: odd integer >= 1.
        variance: the Gaussian's variance (> 0).

    Returns:
        float32 array (kernel_size, kernel_size) whose entries sum to 1.

    Raises:
        TypeError, ValueError: a bad size or variance.
    """
    kernel_size = check_int("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd. Received: kernel_size={kernel_size}")
    variance = check_number("variance", variance, strict=True)
    points = np.linspace(-3.0, 3.0, kernel_size) if kernel_size > 1 else np.zeros(1)
    one_d = np.exp(-(points**2) / (2.0 * variance))
    kernel = np.outer(one_d, one_d)
    return (kernel / kernel.sum()).astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_fool")
class LowPassFilter(keras.layers.Layer):
    """Gaussian noise, then a Gaussian blur of every channel: the paper's low-pass pre-processing.

    The noise (``N(0, noise_stddev^2)`` per pixel, added *before* the blur) breaks up the flat
    regions that gradient-sign noise creates, so that the blur can average them away. Unlike
    Keras's ``GaussianNoise`` layer, the noise is active at inference too: it is part of the
    defense, not a regulariser. The blur is a depthwise convolution with ``'same'`` padding (zeros
    outside the image, MNIST's background), so the output has the input's shape. Nothing is
    trainable and nothing is clipped. The paper does not give its noise level; 0.1 is our default.

    Args:
        kernel_size: odd kernel size (the paper used 3, 5 and 7).
        variance: variance of the Gaussian (the paper: 7, 1.3 and 0.6 for sizes 3, 5 and 7).
        noise_stddev: standard deviation of the injected noise (>= 0; 0 disables it).
        seed: seed of the noise, or None for a random one.
        **kwargs: passed to ``keras.layers.Layer`` (``name``, ...).

    Input shape:
        (batch, H, W, C).

    Output shape:
        (batch, H, W, C).

    Attributes:
        kernel: float32 array (kernel_size, kernel_size), the blur applied to every channel; it
            sums to 1, so the mean brightness is kept.

    Raises:
        TypeError, ValueError: a bad parameter.
    """

    def __init__(self, kernel_size=5, variance=1.3, noise_stddev=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel = gaussian_kernel(kernel_size, variance)
        self.kernel_size = int(kernel_size)
        self.variance = float(variance)
        self.noise_stddev = check_number("noise_stddev", noise_stddev)
        self.seed = None if seed is None else check_int("seed", seed, minimum=0)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def build(self, input_shape):
        channels = input_shape[-1]
        if len(input_shape) != 4 or channels is None:
            raise ValueError(f"LowPassFilter expects inputs of shape (batch, H, W, C). Received: {input_shape}")
        self._depthwise = np.repeat(self.kernel[:, :, None, None], channels, axis=2)  # (k, k, C, 1)

    def call(self, inputs):
        x = inputs
        if self.noise_stddev > 0:
            noise = keras.random.normal(keras.ops.shape(x), stddev=self.noise_stddev, seed=self.seed_generator,
                                        dtype=x.dtype)
            x = x + noise
        kernel = keras.ops.convert_to_tensor(self._depthwise, dtype=x.dtype)
        return keras.ops.depthwise_conv(x, kernel, strides=1, padding="same")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel_size=self.kernel_size, variance=self.variance, noise_stddev=self.noise_stddev, seed=self.seed
        )
        return config
