"""``baseline_v15``: the earlier system's three-branch CNN, reproduced faithfully (the reference).

Per plane (U, V, X), an independent branch of 4 × [Conv2D(64·2^i, 3×3, ReLU, same) →
MaxPool 2 → BatchNorm]; the three branches are flattened and concatenated (24,576
features on 128 × 32 images), then 2 × [Dense 256 ReLU → Dropout 0.3] and Dense 3 — about
11.0 M parameters on 128 × 32 (NOTES.md). Two additions, both needed for a sound
comparison and neither adding capacity: the output is unit-normalised (the earlier
outputs' norms grew into the thousands and angles became undefined), and the raw ADC is
scaled inside the model (``normalization="log1p"`` by default; ``"none"`` gives the raw
ADC / 100, closest to the original).

It is slow on a CPU (≈ 6 samples/s training on 2 cores): use ``compact`` there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from edkeras.reco.models.heads import fused_branch_model
from edkeras.reco.models.registry import check_common_options, register

__all__ = ["baseline_v15"]


def _branch_factory(filters: int, depth: int) -> Callable[[str], Callable[[Any], Any]]:
    def make_branch(prefix: str) -> Callable[[Any], Any]:
        layers = []
        for i in range(depth):
            layers += [
                keras.layers.Conv2D(
                    filters * 2**i, 3, padding="same", activation="relu", name=f"{prefix}_conv{i + 1}"
                ),
                keras.layers.MaxPooling2D(2, name=f"{prefix}_pool{i + 1}"),
                keras.layers.BatchNormalization(name=f"{prefix}_bn{i + 1}"),
            ]
        layers.append(keras.layers.Flatten(name=f"{prefix}_flatten"))

        def apply(x: Any) -> Any:
            for layer in layers:
                x = layer(x)
            return x

        return apply

    return make_branch


@register("baseline_v15")
def baseline_v15(
    *,
    input_shape: tuple[int, int] = (128, 32),
    head: str = "direction",
    energy_conditioning: bool = False,
    dropout: float = 0.3,
    filters: int = 64,
    depth: int = 4,
    dense_units: int = 256,
    dense_layers: int = 2,
    shared_branches: bool = False,
    normalization: str = "log1p",
) -> keras.Model:
    """The earlier system's CNN (v15): three conv branches, flatten, concatenate, dense.

    Args:
        input_shape: (ticks, channels) of each plane image; both ≥ 2**depth.
        head: ``direction``, ``vmf``, ``axial`` or ``multitask``.
        energy_conditioning: add the ``energy`` input, joined before the dense layers.
        dropout: dropout after each dense layer (0.3 in v15).
        filters: filters of the first conv (doubling at each of the ``depth`` blocks).
        depth: number of [Conv → MaxPool → BN] blocks (4 in v15).
        dense_units, dense_layers: the dense trunk (2 × 256 in v15).
        shared_branches: one branch's weights for the three planes (v15: separate).
        normalization: ``log1p`` or ``none``.

    Returns:
        An uncompiled ``keras.Model`` named ``baseline_v15``.
    """
    opts = check_common_options("baseline_v15", dict(locals()))
    opts = check_common_options("baseline_v15", opts, min_size=2 ** opts["depth"])  # depth poolings
    return fused_branch_model("baseline_v15", opts, _branch_factory(opts["filters"], opts["depth"]))
