"""Defenses of Uličný et al.: dropout, the low-pass filter, the denoising autoencoder, committees."""

from keras_fool.defenses.autoencoder import (
    build_denoising_autoencoder,
    compile_denoising_autoencoder,
    stack_front_end,
)
from keras_fool.defenses.committee import Committee
from keras_fool.defenses.dropout import LENET_DROPOUT_ALL, LENET_DROPOUT_INPUT, insert_dropout
from keras_fool.defenses.lowpass import PAPER_LOW_PASS_VARIANCES, LowPassFilter, gaussian_kernel

__all__ = [
    "Committee",
    "LENET_DROPOUT_ALL",
    "LENET_DROPOUT_INPUT",
    "LowPassFilter",
    "PAPER_LOW_PASS_VARIANCES",
    "build_denoising_autoencoder",
    "compile_denoising_autoencoder",
    "gaussian_kernel",
    "insert_dropout",
    "stack_front_end",
]
