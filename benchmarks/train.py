"""Training and inference speed of every registered model builder, on random 3 × 128 × 32 inputs.

For each builder: parameters, analytic forward FLOPs per event, training samples/s
(``train_on_batch`` with Adam and the angular loss, after warm-up steps) and inference
samples/s (``predict_on_batch``). Prints one JSON object. Speeds of different builders
are comparable only within one run (the machine may be shared).

Usage:
    python benchmarks/train.py [--quick] [--builders compact baseline_v15] [--batch 64]
        [--steps 10] [--mixed-precision] [--xla]

``--quick`` measures 3 training and 3 inference batches per builder (baseline_v15: 2).
``--mixed-precision`` (float16 compute) and ``--xla`` (jit_compile) are for GPUs; they
are refused on a CPU-only machine. The backend is Keras's (``KERAS_BACKEND``, TensorFlow
by default); on JAX the step is always compiled.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

__all__ = ["bench_builder", "main"]


def _inputs(rng: np.random.Generator, n: int, shape: tuple[int, int], energy: bool) -> dict[str, np.ndarray]:
    x = {
        f"view_{p}": (rng.random((n, *shape)) * (rng.random((n, *shape)) > 0.9) * 300).astype(np.float32)
        for p in "uvx"
    }
    if energy:
        x["energy"] = rng.uniform(5, 70, (n, 1)).astype(np.float32)
    return x


def bench_builder(
    name: str, *, batch: int, steps: int, input_shape: tuple[int, int], xla: bool, seed: int = 0
) -> dict[str, Any]:
    """Measure one builder; returns params, FLOPs/event, train and predict samples/s."""
    import keras

    from edkeras.reco.losses import get_loss
    from edkeras.reco.models import build_model, model_summary

    rng = np.random.default_rng(seed)
    model = build_model(name, input_shape=input_shape)
    info = model_summary(model)
    # XLA off unless asked, except on JAX, which always compiles ("auto").
    jit: bool | str = True if xla else ("auto" if keras.backend.backend() == "jax" else False)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss={"direction": get_loss("angular")}, jit_compile=jit
    )
    x = _inputs(rng, batch, input_shape, energy=False)
    d = rng.normal(size=(batch, 3)).astype(np.float32)
    y = {"direction": d / np.linalg.norm(d, axis=1, keepdims=True)}
    model.train_on_batch(x, y)  # build and trace
    model.train_on_batch(x, y)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    train_s = time.perf_counter() - t0
    model.predict_on_batch(x)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.predict_on_batch(x)
    pred_s = time.perf_counter() - t0
    return {
        "params": info["params"],
        "flops_per_event": info["flops_per_event"],
        "train_samples_per_s": round(batch * steps / train_s, 2),
        "predict_samples_per_s": round(batch * steps / pred_s, 2),
        "train_steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few batches per builder")
    parser.add_argument("--builders", nargs="+", help="builders to measure (default: all registered)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed training/inference batches per builder")
    parser.add_argument("--input-shape", type=int, nargs=2, default=(128, 32), metavar=("T", "C"))
    parser.add_argument("--mixed-precision", action="store_true", help="float16 compute (GPU only)")
    parser.add_argument("--xla", action="store_true", help="jit_compile the train step (GPU only)")
    args = parser.parse_args(argv)

    import keras

    from edkeras.reco.models import REGISTRY
    from edkeras.reco.training import gpu_present

    gpus = gpu_present()
    if (args.mixed_precision or args.xla) and not gpus:
        print("train.py: error: --mixed-precision/--xla need a GPU; none found", file=sys.stderr)
        return 1
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    names = args.builders or sorted(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(
            f"train.py: error: unknown builder {unknown[0]!r}; valid: {', '.join(sorted(REGISTRY))}",
            file=sys.stderr,
        )
        return 1
    results = {}
    for name in names:
        steps = args.steps
        if args.quick:
            steps = 2 if (name == "baseline_v15" and not gpus) else 3
        results[name] = bench_builder(
            name, batch=args.batch, steps=steps, input_shape=tuple(args.input_shape), xla=args.xla
        )
        keras.backend.clear_session()
    out = {
        "benchmark": "train",
        "backend": keras.backend.backend(),
        "device": "gpu" if gpus else "cpu",
        "cpu_count": os.cpu_count(),
        "host": platform.node(),
        "batch": args.batch,
        "input_shape": list(args.input_shape),
        "mixed_precision": args.mixed_precision,
        "xla": args.xla,
        "quick": args.quick,
        "results": results,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
