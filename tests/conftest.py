import contextlib
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST, float32 in [0, 1]: ((x_train, y_train), (x_test, y_test))."""
    from keras_fool.data import load_mnist

    return load_mnist()


@pytest.fixture(scope="session")
def lenet():
    """The shipped lenet_mnist, weights verified."""
    from keras_fool import zoo

    return zoo.load_model("lenet_mnist")


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Empty keras-fool and Keras caches, no KERAS_FOOL_MNIST: every data source starts cold."""
    monkeypatch.setenv("KERAS_FOOL_HOME", str(tmp_path / "kf-home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.delenv("KERAS_FOOL_MNIST", raising=False)
    return tmp_path


def tiny_mnist_npz(path, n_train=12, n_test=6, seed=0):
    """Write a small Keras-format mnist.npz and return its arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def batch_recorder(**kwargs):
    """An identity Keras layer that keeps a copy of every training batch it sees (in ``.seen``).

    The model must run eagerly (``run_eagerly=True``) for the copies to be NumPy arrays.
    """
    import keras

    class BatchRecorder(keras.layers.Layer):
        def __init__(self, **layer_kwargs):
            super().__init__(**layer_kwargs)
            self.seen = []

        def call(self, inputs, training=None):
            if training:
                self.seen.append(keras.ops.convert_to_numpy(inputs).copy())
            return inputs

    return BatchRecorder(**kwargs)


def toy_imagenet_model(size=16, seed=0, name="toy_imagenet"):
    """A fast stand-in with ImageNet's 1000 classes (size x size RGB inputs), for the ImageNet experiment's plumbing."""
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu",
                            kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1000, activation="softmax",
                                 kernel_initializer=keras.initializers.RandomNormal(stddev=2.0, seed=seed + 1))(x)
    return keras.Model(inputs, outputs, name=name)


def free_ports(n):
    """``n`` distinct free TCP ports on 127.0.0.1 (for worker processes the tests start)."""
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(argv, n=2, timeout=240):
    """Run ``argv`` as ``n`` worker processes of one TF_CONFIG cluster on 127.0.0.1; [(returncode, out, err)].

    Every process is started by the caller's test and killed when it ends or times out.
    """
    import json
    import os
    import subprocess

    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(n)]}
    processes = []
    for index in range(n):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            results.append((process.returncode, out, err))
    finally:
        for process in processes:
            process.kill()
    return results


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextlib.contextmanager
def headless_chromium(monkeypatch, width, height, extra_arguments=(), log_console=False, page_load_timeout=20):
    """Debian's Chromium, headless, with a profile of its own, driven by Selenium; quit and cleaned up after.

    ``make test`` installs the browser (scripts/install-browser); without it the test fails and says so.
    """
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: run `bash scripts/install-browser`.")
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="kf-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
                     f"--window-size={width},{height}", *extra_arguments):
        options.add_argument(argument)
    if log_console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, read with get_log("browser")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
