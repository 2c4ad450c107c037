"""Learning-rate schedules of the papers' solvers."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_fool")
class CaffeInverseDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Caffe's ``inv`` policy: ``lr = base * (1 + gamma * step) ** -power``.

    Args:
        initial_learning_rate: ``base_lr`` (0.01 in Caffe's LeNet solver).
        gamma: 1e-4 in Caffe's LeNet solver.
        power: 0.75 in Caffe's LeNet solver.
    """

    def __init__(self, initial_learning_rate=0.01, gamma=1e-4, power=0.75):
        for name, value in (("initial_learning_rate", initial_learning_rate), ("gamma", gamma), ("power", power)):
            if not value >= 0:
                raise ValueError(f"{name} must be non-negative. Received: {name}={value}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.gamma = float(gamma)
        self.power = float(power)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        return self.initial_learning_rate * keras.ops.power(1.0 + self.gamma * step, -self.power)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "gamma": self.gamma, "power": self.power}
