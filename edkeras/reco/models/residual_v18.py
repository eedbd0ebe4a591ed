"""``residual_v18`` (proposal 2a): per plane, a stem and three residual blocks (6 conv layers).

Per plane: a ResNet-style stem (Conv 3×3 stride 2, BN, ReLU, MaxPool 2: 128 × 32 → 32 × 8)
→ ``depth`` residual blocks, each
[Conv 3×3 → BN → ReLU → Conv 3×3 → BN] + shortcut → ReLU, the first conv of every block
after the first with stride 2 and the shortcut then a 1×1 stride-2 projection; filters
double per block. With the default ``depth=3`` that is 6 conv layers with residual
connections per branch. Global average pooling, concatenation of the planes, dense trunk,
head.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from edkeras.reco.models.heads import fused_branch_model
from edkeras.reco.models.registry import check_common_options, register

__all__ = ["residual_v18"]


def _branch_factory(filters: int, depth: int) -> Callable[[str], Callable[[Any], Any]]:
    L = keras.layers

    def make_branch(prefix: str) -> Callable[[Any], Any]:
        stem = [
            L.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"{prefix}_stem_conv"),
            L.BatchNormalization(name=f"{prefix}_stem_bn"),
            L.ReLU(name=f"{prefix}_stem_relu"),
            L.MaxPooling2D(2, padding="same", name=f"{prefix}_stem_pool"),
        ]
        blocks = []
        for i in range(depth):
            width, stride, p = filters * 2**i, (1 if i == 0 else 2), f"{prefix}_res{i + 1}"
            main = [
                L.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"{p}_conv1"),
                L.BatchNormalization(name=f"{p}_bn1"),
                L.ReLU(name=f"{p}_relu1"),
                L.Conv2D(width, 3, padding="same", use_bias=False, name=f"{p}_conv2"),
                L.BatchNormalization(name=f"{p}_bn2"),
            ]
            shortcut = (
                []
                if i == 0
                else [
                    L.Conv2D(width, 1, strides=stride, use_bias=False, name=f"{p}_proj"),
                    L.BatchNormalization(name=f"{p}_proj_bn"),
                ]
            )
            blocks.append((main, shortcut, L.Add(name=f"{p}_add"), L.ReLU(name=f"{p}_out")))
        pool = L.GlobalAveragePooling2D(name=f"{prefix}_pool")

        def apply(x: Any) -> Any:
            for layer in stem:
                x = layer(x)
            for main, shortcut, add, relu in blocks:
                y, s = x, x
                for layer in main:
                    y = layer(y)
                for layer in shortcut:
                    s = layer(s)
                x = relu(add([y, s]))
            return pool(x)

        return apply

    return make_branch


@register("residual_v18")
def residual_v18(
    *,
    input_shape: tuple[int, int] = (128, 32),
    head: str = "direction",
    energy_conditioning: bool = False,
    dropout: float = 0.3,
    filters: int = 32,
    depth: int = 3,
    dense_units: int = 256,
    dense_layers: int = 1,
    shared_branches: bool = False,
    normalization: str = "log1p",
) -> keras.Model:
    """Three residual CNN branches (2 conv per residual block), pooled and fused.

    Args:
        input_shape: (ticks, channels) of each plane image.
        head: ``direction``, ``vmf``, ``axial`` or ``multitask``.
        energy_conditioning: add the ``energy`` input, joined before the dense layers.
        dropout: dropout after each dense layer.
        filters: filters of the stem and first block (doubling per block).
        depth: number of residual blocks (3 → 6 conv layers per branch).
        dense_units, dense_layers: the dense trunk.
        shared_branches: one branch's weights for the three planes.
        normalization: ``log1p`` or ``none``.

    Returns:
        An uncompiled ``keras.Model`` named ``residual_v18``.
    """
    opts = check_common_options("residual_v18", dict(locals()))
    return fused_branch_model("residual_v18", opts, _branch_factory(opts["filters"], opts["depth"]))
