"""Does ``tf.distribute.MultiWorkerMirroredStrategy`` train an unpatched Keras 3 model here? Two workers on 127.0.0.1.

edkeras's ``training.strategy: "multi_worker"`` trains one run over several machines with
that strategy, which Keras 3's ``Model.fit`` does not support as released
(keras-team/keras#20585, open; with Keras 3.15.1 and TensorFlow 2.21.0 the smallest example
fails with "Attempt to convert a value (PerReplica…) … to a Tensor"), so
:func:`edkeras.reco.multi_worker.patch_keras` replaces the two steps that fail. This script
starts two worker processes that train a one-layer model with the strategy and **without**
the patch, and prints one JSON object: ``{"works": true|false, "keras": …, "tensorflow": …,
"error": the last line of the first failure}``. When it prints ``"works": true`` after an
upgrade, the patch can go. (``tests/test_multi_worker.py`` checks edkeras's patched path.)

Usage:
    python benchmarks/multi_worker_check.py [--port 23456] [--timeout 240]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKER = r"""
import json, os, sys
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
import keras, numpy as np
x = np.random.default_rng(0).normal(size=(128, 4)).astype("float32")
ds = tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True))).batch(16)
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
history = model.fit(ds, epochs=2, verbose=0)
print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync, "loss": history.history["loss"]}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=23456)
    p.add_argument("--timeout", type=float, default=240)
    args = p.parse_args(argv)
    cluster = {"worker": [f"127.0.0.1:{args.port}", f"127.0.0.1:{args.port + 1}"]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += "\ntimed out"
        outputs.append((proc.returncode, out, err))
    import keras
    import tensorflow as tf

    works = all(rc == 0 and "RESULT" in out for rc, out, _ in outputs)
    error = None
    if not works:
        _, _, err = next(o for o in outputs if not (o[0] == 0 and "RESULT" in o[1]))
        lines = [line for line in err.strip().splitlines() if line.strip()]
        error = next((line for line in reversed(lines) if "Error" in line or "error" in line), lines[-1] if lines else "")
    print(json.dumps({"works": works, "keras": keras.__version__, "tensorflow": tf.__version__, "error": error}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
