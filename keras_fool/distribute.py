"""tf.distribute strategies by name, for the evolver, the experiments and the training loops.

- ``"default"``: one device (TensorFlow's default strategy).
- ``"mirrored"``: ``MirroredStrategy`` over the devices of this host: every GPU, or, with
  ``cpu_replicas=N``, the CPU split into N logical devices (for tests and users without GPUs).
- ``"multi-worker"``: ``MultiWorkerMirroredStrategy`` across hosts; each process reads its role
  from the ``TF_CONFIG`` environment variable, and only the chief writes files.
"""

from __future__ import annotations

import contextlib
import json
import os

from keras_fool.validation import check_int

__all__ = ["STRATEGIES", "configure_cpu_replicas", "is_chief", "make_strategy", "replica_count", "resolve_strategy",
           "strategy_scope"]

STRATEGIES = ("default", "mirrored", "multi-worker")


def configure_cpu_replicas(n):
    """Split the CPU into ``n`` logical devices; must run before TensorFlow touches a device.

    Raises:
        RuntimeError: TensorFlow's devices are already initialised in this process.
    """
    import tensorflow as tf

    n = check_int("cpu_replicas", n)
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == n:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        raise RuntimeError(f"cannot split the CPU into {n} devices: TensorFlow has already started its devices "
                           "in this process; set cpu_replicas before anything else runs.") from None


def make_strategy(name="default", cpu_replicas=None):
    """The strategy called ``name`` (see the module's docstring).

    Args:
        name: one of :data:`STRATEGIES`.
        cpu_replicas: with ``"mirrored"`` or ``"multi-worker"``, split the CPU into this many
            logical devices and replicate over them instead of the GPUs.

    Raises:
        ValueError: an unknown name, ``cpu_replicas`` with the default strategy, or
            ``"multi-worker"`` without a ``TF_CONFIG``.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}. Received: strategy={name!r}")
    if name == "default":
        if cpu_replicas not in (None, 1):
            raise ValueError("cpu_replicas needs the mirrored or multi-worker strategy. "
                             f"Received: cpu_replicas={cpu_replicas} with strategy='default'")
        return tf.distribute.get_strategy()
    if cpu_replicas is not None:
        configure_cpu_replicas(cpu_replicas)
    if name == "mirrored":
        devices = None
        if cpu_replicas is not None:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if not os.environ.get("TF_CONFIG"):
        raise ValueError("the multi-worker strategy needs TF_CONFIG (the cluster and this process's task) in the "
                         "environment; see README's 'Beyond one machine'.")
    return tf.distribute.MultiWorkerMirroredStrategy()


def resolve_strategy(strategy="default", cpu_replicas=None):
    """A strategy given by name (see :func:`make_strategy`) or as an object; None for one device.

    ``"default"`` without ``cpu_replicas`` is None, so that callers keep their one-device path;
    a ``tf.distribute.Strategy`` (or None) is returned as it is.
    """
    if not isinstance(strategy, str):
        return strategy
    if strategy == "default" and cpu_replicas is None:
        return None
    return make_strategy(strategy, cpu_replicas)


def strategy_scope(strategy):
    """``strategy.scope()`` (models built inside get mirrored variables), or a scope that does nothing for None."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def replica_count(strategy):
    """How many replicas ``strategy`` runs: 1 for None (one device)."""
    return 1 if strategy is None else strategy.num_replicas_in_sync


def is_chief(strategy=None):
    """Whether this process writes files: always, except a non-chief worker of a multi-worker cluster.

    The chief is the ``"chief"`` task of ``TF_CONFIG``, or worker 0 of a cluster without one. Needs
    no TensorFlow (the command line asks before starting it).
    """
    if strategy is not None and getattr(strategy, "cluster_resolver", None) is None:
        return True  # not a multi-worker strategy
    config = os.environ.get("TF_CONFIG")
    if not config:
        return True
    try:
        config = json.loads(config)
        task = config.get("task", {})
        task_type, task_id = task.get("type"), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError):
        raise ValueError("TF_CONFIG is not valid JSON with a 'task' of 'type' and 'index'.") from None
    if task_type in (None, "chief"):
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in config.get("cluster", {})
