"""``multiscale_v20`` (proposal 2c): inception-style blocks seeing 3×3, 5×5 and 7×7 neighbourhoods.

Per plane: a stem (Conv 3×3 stride 2, BN, ReLU, MaxPool 2: 128 × 32 → 32 × 8), then
``depth`` multi-scale blocks. Each block runs parallel convolutions over three scales —
3×3, 5×5, 7×7 kernels, or with ``dilated=True`` three 3×3 kernels with dilation 1, 2, 3
(the same reach for fewer FLOPs), the two wide ones behind a 1×1 bottleneck as in
Inception — concatenates them, mixes them with a 1×1 convolution, BN, ReLU, and halves
the map with max pooling. A short electron track and a longer shower are then both seen
at a matching scale. Global average pooling, concatenation of the planes, dense trunk,
head.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from edkeras.core.errors import InputError
from edkeras.reco.models.heads import fused_branch_model
from edkeras.reco.models.registry import check_common_options, register

__all__ = ["multiscale_v20"]


def _branch_factory(filters: int, depth: int, dilated: bool) -> Callable[[str], Callable[[Any], Any]]:
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
            width, p = filters * 2 ** min(i, 1), f"{prefix}_ms{i + 1}"
            # Inception style: the wide kernels see a 1×1 bottleneck of width/4 channels.
            narrow = max(width // 4, 1)
            scales = []
            for r in (1, 2, 3):
                k = 3 if dilated else 2 * r + 1
                tag = f"d{r}" if dilated else f"k{k}"
                conv = L.Conv2D(
                    width // 2,
                    k,
                    dilation_rate=r if dilated else 1,
                    padding="same",
                    activation="relu",
                    name=f"{p}_{tag}",
                )
                scales.append(
                    [conv]
                    if r == 1
                    else [L.Conv2D(narrow, 1, activation="relu", name=f"{p}_{tag}_reduce"), conv]
                )
            tail = [
                L.Concatenate(name=f"{p}_concat"),
                L.Conv2D(width, 1, use_bias=False, name=f"{p}_mix"),
                L.BatchNormalization(name=f"{p}_bn"),
                L.ReLU(name=f"{p}_relu"),
                L.MaxPooling2D(2, padding="same", name=f"{p}_pool"),
            ]
            blocks.append((scales, tail))
        pool = L.GlobalAveragePooling2D(name=f"{prefix}_gap")

        def apply(x: Any) -> Any:
            for layer in stem:
                x = layer(x)
            for scales, tail in blocks:
                outs = []
                for path in scales:
                    y = x
                    for layer in path:
                        y = layer(y)
                    outs.append(y)
                x = tail[0](outs)
                for layer in tail[1:]:
                    x = layer(x)
            return pool(x)

        return apply

    return make_branch


@register("multiscale_v20")
def multiscale_v20(
    *,
    input_shape: tuple[int, int] = (128, 32),
    head: str = "direction",
    energy_conditioning: bool = False,
    dropout: float = 0.3,
    filters: int = 32,
    depth: int = 3,
    dense_units: int = 128,
    dense_layers: int = 1,
    shared_branches: bool = False,
    normalization: str = "log1p",
    dilated: bool = False,
) -> keras.Model:
    """Three branches of multi-scale (inception-style) blocks, pooled and fused.

    Args:
        input_shape: (ticks, channels) of each plane image.
        head: ``direction``, ``vmf``, ``axial`` or ``multitask``.
        energy_conditioning: add the ``energy`` input, joined before the dense layers.
        dropout: dropout after each dense layer.
        filters: output width of the stem and first block (twice that afterwards); each
            scale gets half the block width. At least 2.
        depth: number of multi-scale blocks.
        dense_units, dense_layers: the dense trunk.
        shared_branches: one branch's weights for the three planes.
        normalization: ``log1p`` or ``none``.
        dilated: 3×3 kernels dilated 1, 2, 3 instead of 3×3, 5×5, 7×7 kernels.

    Returns:
        An uncompiled ``keras.Model`` named ``multiscale_v20``.
    """
    opts = check_common_options("multiscale_v20", dict(locals()))
    if not isinstance(dilated, bool):
        raise InputError(f"model 'multiscale_v20': option 'dilated' must be true or false, got {dilated!r}")
    if opts["filters"] < 2:
        raise InputError(f"model 'multiscale_v20': option 'filters' must be >= 2, got {filters!r}")
    return fused_branch_model("multiscale_v20", opts, _branch_factory(opts["filters"], opts["depth"], dilated))
