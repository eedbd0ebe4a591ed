"""Size and cost of the models: parameters and floating-point operations per event.

FLOPs are counted **analytically from the layer shapes** of the built model (no profiler,
no data): 2 × multiply-adds of every ``Conv2D`` (2·H_out·W_out·k_h·k_w·C_in·C_out, plus
the bias), ``Dense`` (2·inputs·units per position, plus the bias) and
``MultiHeadAttention`` (its four projections and the two attention products) call, for a
forward pass of one event. Element-wise layers (BatchNorm, activations, pooling, adds,
layer norms, softmax) are not counted; they are a few per cent of the total here. A layer
shared by the three planes is counted once per call (three times). Training costs about
three times the forward FLOPs.

Example:
    >>> from edkeras.reco.models import summary_table
    >>> rows = summary_table()        # prints one line per registered builder
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import keras

from edkeras.reco.models.registry import REGISTRY, build_model

__all__ = ["count_flops", "model_summary", "summary_table"]


def _prod(shape: Iterable[Any]) -> int:
    return math.prod(int(s) for s in shape)


def _node_flops(layer: Any, inputs: list[Any], outputs: list[Any]) -> int:
    if isinstance(layer, keras.layers.Conv2D):
        out = outputs[0].shape  # (N, H, W, C_out)
        kh, kw = layer.kernel_size
        c_in = int(inputs[0].shape[-1]) // layer.groups
        flops = 2 * _prod(out[1:]) * kh * kw * c_in
        return flops + (_prod(out[1:]) if layer.use_bias else 0)
    if isinstance(layer, keras.layers.Dense):
        in_shape = inputs[0].shape
        positions = _prod(in_shape[1:-1]) if len(in_shape) > 2 else 1
        return positions * (2 * int(in_shape[-1]) * layer.units + (layer.units if layer.use_bias else 0))
    if isinstance(layer, keras.layers.MultiHeadAttention):
        q_shape, v_shape = inputs[0].shape, inputs[1].shape
        lq, dq = _prod(q_shape[1:-1]), int(q_shape[-1])
        lv, dv = _prod(v_shape[1:-1]), int(v_shape[-1])
        k_shape = inputs[2].shape if len(inputs) > 2 else v_shape
        dk = int(k_shape[-1])
        h, kd = layer.num_heads, layer.key_dim
        vd = layer.value_dim or kd
        out_dim = int(outputs[0].shape[-1])
        proj = 2 * (lq * dq * h * kd + lv * dk * h * kd + lv * dv * h * vd + lq * h * vd * out_dim)
        attend = 2 * h * lq * lv * (kd + vd)
        return proj + attend
    return 0


def count_flops(model: Any) -> int:
    """Forward FLOPs of one event through ``model`` (analytic; see the module docstring)."""
    total = 0
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            layer = node.operation
            if isinstance(layer, keras.Model):
                total += count_flops(layer)
                continue
            total += _node_flops(layer, list(node.input_tensors), list(node.outputs))
    return int(total)


def model_summary(model: Any) -> dict[str, Any]:
    """``{"name", "params", "trainable_params", "flops_per_event"}`` of a built model."""
    trainable = sum(_prod(w.shape) for w in model.trainable_weights)
    return {
        "name": model.name,
        "params": int(model.count_params()),
        "trainable_params": int(trainable),
        "flops_per_event": count_flops(model),
    }


def summary_table(
    names: Iterable[str] | None = None,
    *,
    input_shape: tuple[int, int] = (128, 32),
    head: str = "direction",
    file: TextIO | None = None,
) -> list[dict[str, Any]]:
    """Print parameters and forward FLOPs per event of each builder (default options).

    Args:
        names: builders to list (default: all registered).
        input_shape: image shape of every plane.
        head: head to build.
        file: where to print (default: stdout); ``None`` prints to stdout.

    Returns:
        One :func:`model_summary` dict per builder, with ``"builder"`` added.
    """
    out = sys.stdout if file is None else file
    rows = []
    print(
        f"{'builder':<16}{'params':>14}{'MFLOPs/event':>16}   (input 3 × {input_shape[0]} × {input_shape[1]}, head {head})",
        file=out,
    )
    for name in names or sorted(REGISTRY):
        model = build_model(name, input_shape=input_shape, head=head)
        row = {"builder": name, **model_summary(model)}
        rows.append(row)
        print(f"{name:<16}{row['params']:>14,}{row['flops_per_event'] / 1e6:>16.1f}", file=out)
        del model
    return rows
