"""The custom training loops under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1.

Keras 3's `fit` does not run under MultiWorkerMirroredStrategy on TensorFlow (keras#20585); the
library's own loops (adversarial committee, PGD training, fooling-class training) train through
one `strategy.run` step and do.
"""

import json
import sys
import textwrap

import numpy as np
import pytest

from conftest import run_workers  # noqa: E402

pytestmark = [pytest.mark.multiworker, pytest.mark.slow]  # worker processes of one TF_CONFIG cluster

WORKER = textwrap.dedent('''
    import json, os, sys
    import numpy as np
    import keras, tensorflow as tf
    from keras_fool.distribute import make_strategy, is_chief
    from keras_fool.training.adversarial import train_adversarial_committee
    from keras_fool.training.fooling_class import train_on_fooling_images

    strategy = make_strategy("multi-worker")
    rng = np.random.default_rng(0)
    x = rng.random((256, 8, 8, 1), dtype=np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int32)

    def model(outputs):
        keras.utils.set_random_seed(1)
        inputs = keras.Input((8, 8, 1))
        return keras.Model(inputs, keras.layers.Dense(outputs, activation="softmax")(keras.layers.Flatten()(inputs)))

    committee = train_adversarial_committee(model(2), x, y, stages=2, steps_per_stage=5, batch_size=16,
                                            pool_size=32, strategy=strategy, seed=3)
    fooling = train_on_fooling_images(model(3), x, y, rng.random((20, 8, 8, 1), dtype=np.float32), steps=5,
                                      num_classes=2, batch_size=16, strategy=strategy, seed=3)
    weights = np.concatenate([w.ravel() for w in committee.snapshots[-1].get_weights()])
    print(json.dumps({"chief": is_chief(strategy), "losses": committee.losses.tolist(), "fooling_loss": fooling,
                      "weights": weights.round(6).tolist()}))
''')


def test_the_training_loops_run_under_multi_worker_strategy_and_the_workers_agree():
    results = []
    for returncode, stdout, stderr in run_workers([sys.executable, "-c", WORKER]):
        assert returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    assert [r["chief"] for r in results] == [True, False]
    assert all(np.isfinite(r["losses"]).all() and np.isfinite(r["fooling_loss"]) for r in results)
    np.testing.assert_array_equal(results[0]["weights"], results[1]["weights"])  # one model, mirrored
    assert results[0]["losses"] == results[1]["losses"]
