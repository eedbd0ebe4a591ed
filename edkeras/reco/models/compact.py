"""``compact``: the CPU-friendly default model (strided stem, few filters, global pooling).

Per plane: a stride-2 stem convolution, then ``depth`` blocks of [Conv 3×3 stride 2 →
BN → ReLU] with filters doubling up to 2 × ``filters``, then global average and max
pooling (so that the parameter count does not grow with the image size). The three planes'
pooled features are concatenated, then the dense trunk and the head. It trains at well
over 150 samples/s on a 2-core CPU (``benchmarks/train.py``), ~50 × fewer FLOPs than
``baseline_v15``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from edkeras.reco.models.heads import fused_branch_model
from edkeras.reco.models.registry import check_common_options, register

__all__ = ["compact"]


def _conv_bn_relu(filters: int, kernel: int, strides: int, name: str) -> list[Any]:
    return [
        keras.layers.Conv2D(
            filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
        ),
        keras.layers.BatchNormalization(name=f"{name}_bn"),
        keras.layers.ReLU(name=f"{name}_relu"),
    ]


def _branch_factory(filters: int, depth: int) -> Callable[[str], Callable[[Any], Any]]:
    def make_branch(prefix: str) -> Callable[[Any], Any]:
        layers = _conv_bn_relu(max(filters // 2, 4), 5, 2, f"{prefix}_stem")
        for i in range(depth):
            width = filters * (2 if i >= depth // 2 and depth > 1 else 1)
            layers += _conv_bn_relu(width, 3, 2 if i < depth - 1 else 1, f"{prefix}_block{i + 1}")
        avg = keras.layers.GlobalAveragePooling2D(name=f"{prefix}_avgpool")
        mx = keras.layers.GlobalMaxPooling2D(name=f"{prefix}_maxpool")
        join = keras.layers.Concatenate(name=f"{prefix}_pooled")

        def apply(x: Any) -> Any:
            for layer in layers:
                x = layer(x)
            return join([avg(x), mx(x)])

        return apply

    return make_branch


@register("compact")
def compact(
    *,
    input_shape: tuple[int, int] = (128, 32),
    head: str = "direction",
    energy_conditioning: bool = False,
    dropout: float = 0.2,
    filters: int = 32,
    depth: int = 3,
    dense_units: int = 128,
    dense_layers: int = 1,
    shared_branches: bool = False,
    normalization: str = "log1p",
) -> keras.Model:
    """A small three-branch CNN for CPU training (the default model).

    Args:
        input_shape: (ticks, channels) of each plane image.
        head: ``direction``, ``vmf``, ``axial`` or ``multitask``.
        energy_conditioning: add the ``energy`` input, joined before the dense layers.
        dropout: dropout after each dense layer.
        filters: width of the conv blocks (the stem has half, the last blocks twice).
        depth: number of conv blocks after the stem (all but the last stride 2).
        dense_units, dense_layers: the dense trunk.
        shared_branches: one branch's weights for the three planes.
        normalization: ``log1p`` or ``none``.

    Returns:
        An uncompiled ``keras.Model`` named ``compact``.
    """
    opts = check_common_options("compact", dict(locals()))
    return fused_branch_model("compact", opts, _branch_factory(opts["filters"], opts["depth"]))
