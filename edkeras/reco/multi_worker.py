"""One training run over several machines: ``training.strategy: "multi_worker"``.

Data-parallel training with ``tf.distribute.MultiWorkerMirroredStrategy``: every worker runs
the same ``edkeras train`` command with its own ``TF_CONFIG`` (the cluster's ``host:port``
list and this worker's index); each step's global batch is split across the workers, and
their gradients are averaged, so the weights follow the single-process run with the same
batch size (``tests/test_multi_worker.py`` checks that they agree).

The *chief* (worker 0, or the task of type ``chief``) writes the run folder; the other
workers write their copies of the checkpoints into a temporary folder that is removed at the
end. To resume, every worker reads the chief's backup, so the run folder must lie on a file
system all workers share (as on a cluster's home or project space).

Keras 3 (3.15) does not support this strategy in ``Model.fit`` (keras-team/keras#20585):
two of its steps reduce per-replica values in ways that fail across workers. :func:`patch_keras`
replaces those two steps for multi-worker strategies only (every other strategy takes Keras's
own code); ``benchmarks/multi_worker_check.py`` tells whether an unpatched Keras works.

Example (two machines, the same command on each, ``index`` 0 and 1)::

    export TF_CONFIG='{"cluster": {"worker": ["node1:23456", "node2:23456"]},
                       "task": {"type": "worker", "index": 0}}'
    edkeras train configs/compact_vmf.json --set training.strategy=multi_worker
"""

from __future__ import annotations

import json
import os
from typing import Any

from edkeras.core.schema import ConfigError

__all__ = ["barrier", "is_chief", "multi_worker_strategy", "patch_keras", "read_tf_config"]


def read_tf_config() -> dict[str, Any]:
    """The ``TF_CONFIG`` of this process, checked: a cluster of workers and this task.

    Raises:
        ConfigError: ``TF_CONFIG`` unset, not JSON, or without a cluster or task that fits it.
    """
    raw = os.environ.get("TF_CONFIG")
    need = ('training.strategy: "multi_worker" needs the environment variable TF_CONFIG, e.g. '
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}')
    if not raw:
        raise ConfigError(f"{need}; it is not set")
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{need}; TF_CONFIG is not JSON ({e})") from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        raise ConfigError(f"{need}; TF_CONFIG has no cluster with workers: {raw}")
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int):
        raise ConfigError(f"{need}; TF_CONFIG's task is not one of its cluster's: {raw}")
    if not 0 <= task["index"] < len(cluster[task["type"]]):
        raise ConfigError(f"{need}; TF_CONFIG's task index {task['index']} is outside its {task['type']} list: {raw}")
    return tf_config


def multi_worker_strategy() -> Any:
    """``tf.distribute.MultiWorkerMirroredStrategy`` from ``TF_CONFIG``, with Keras patched.

    Raises:
        ConfigError: a missing or malformed ``TF_CONFIG``; a backend other than TensorFlow.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"training.strategy: 'multi_worker' needs the tensorflow backend; received backend {keras.backend.backend()!r}"
        )
    read_tf_config()
    import tensorflow as tf

    patch_keras()
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy: Any) -> bool:
    """Whether this process writes the run folder (True for every strategy but a non-chief worker)."""
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "should_checkpoint", True)) if strategy is not None else True


def barrier(strategy: Any) -> None:
    """Wait until every worker has reached this point (an all-reduce of one number)."""
    import tensorflow as tf

    @tf.function
    def _one() -> Any:
        return strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)

    total = float(_one())
    if total != strategy.num_replicas_in_sync:
        raise RuntimeError(f"multi-worker barrier: {total} replicas answered, {strategy.num_replicas_in_sync} expected")


def _is_multi_worker(strategy: Any) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def patch_keras() -> None:
    """Make Keras 3's ``Model.fit`` work with ``MultiWorkerMirroredStrategy`` (idempotent).

    1. Before the first step Keras builds the model on one batch, which it gets by averaging
       the per-replica batches with a cross-worker reduction that fails on eager values; a
       multi-worker strategy now takes this worker's first replica's batch (any batch of the
       right shapes builds the model).
    2. The per-step logs are averaged across workers along axis 0, which fails for the
       scalar losses and metrics; a multi-worker strategy now averages them whole.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if getattr(tf_trainer, "_edkeras_multi_worker_patch", False):
        return
    import tensorflow as tf

    original_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build
    original_reduce = tf_trainer.reduce_per_replica

    def _maybe_symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> Any:
        if self._distribute_strategy is None or iterator is None or not _is_multi_worker(self.distribute_strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        strategy = self.distribute_strategy
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tf.nest.map_structure(
                lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues)
                else v, batch)
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and _is_multi_worker(strategy):
            def _mean(v: Any) -> Any:
                return strategy.reduce("MEAN", v, axis=None) if tf_trainer._is_per_replica_instance(v) else v

            return tf.nest.map_structure(_mean, values)
        return original_reduce(values, strategy, reduction)

    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    tf_trainer._edkeras_multi_worker_patch = True
