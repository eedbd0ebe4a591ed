"""``attention_v19`` (proposal 2b): cross-plane attention — the three planes look at each other.

Method notes: ``docs/methods.md``, section ``edkeras.reco.models.attention_v19``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from edkeras.core.errors import InputError
from edkeras.reco.models.heads import apply_branches, finish_model, make_inputs
from edkeras.reco.models.layers import LearnedQuery, PlaneTokens, PlaneWeights
from edkeras.reco.models.registry import check_common_options, check_positive_int, register

__all__ = ["attention_v19", "plane_attention_model"]


def _branch_factory(filters: int, depth: int, token_dim: int) -> Callable[[str], Callable[[Any], Any]]:
    L = keras.layers

    def make_branch(prefix: str) -> Callable[[Any], Any]:
        layers = []
        for i in range(depth):
            width = filters * 2 ** min(i, 1)
            layers += [
                L.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name=f"{prefix}_conv{i + 1}"),
                L.BatchNormalization(name=f"{prefix}_bn{i + 1}"),
                L.ReLU(name=f"{prefix}_relu{i + 1}"),
            ]
        layers += [
            L.Conv2D(token_dim, 1, name=f"{prefix}_to_tokens"),
            L.Reshape((-1, token_dim), name=f"{prefix}_tokens"),
        ]

        def apply(x: Any) -> Any:
            for layer in layers:
                x = layer(x)
            return x

        return apply

    return make_branch


@register("attention_v19")
def attention_v19(
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
    token_dim: int = 64,
    num_heads: int = 4,
    attention_layers: int = 1,
) -> keras.Model:
    """Per-plane CNN tokens, cross-plane multi-head self-attention, attention pooling.

    Args:
        input_shape: (ticks, channels) of each plane image.
        head: ``direction``, ``vmf``, ``axial`` or ``multitask``.
        energy_conditioning: add the ``energy`` input, joined before the dense layers.
        dropout: dropout in the attention blocks and after each dense layer.
        filters: width of the first conv stage (twice that afterwards).
        depth: stride-2 conv stages before tokenising (3: 128 × 32 → 16 × 4 = 64 tokens per plane).
        dense_units, dense_layers: the dense trunk.
        shared_branches: one CNN's weights for the three planes (the plane embedding
            still tells the planes apart).
        normalization: ``log1p`` or ``none``.
        token_dim: token width (a multiple of ``num_heads``).
        num_heads: attention heads.
        attention_layers: transformer encoder blocks across the planes (≥ 1).

    Returns:
        An uncompiled ``keras.Model`` named ``attention_v19``; its layer ``plane_weights``
        gives the per-plane attention shares (see :func:`plane_attention_model`).
    """
    name = "attention_v19"
    opts = check_common_options(name, dict(locals()))
    token_dim = check_positive_int(name, "token_dim", token_dim)
    num_heads = check_positive_int(name, "num_heads", num_heads)
    attention_layers = check_positive_int(name, "attention_layers", attention_layers)
    if token_dim % num_heads:
        raise InputError(
            f"model {name!r}: option 'token_dim' must be a multiple of 'num_heads' ({num_heads}), got {token_dim}"
        )
    L = keras.layers
    inputs, images, energy = make_inputs(opts["input_shape"], energy_conditioning, normalization)
    tokens = apply_branches(
        images, _branch_factory(opts["filters"], opts["depth"], token_dim), shared_branches
    )
    t = PlaneTokens(num_planes=3, name="plane_tokens")(tokens)
    key_dim = token_dim // num_heads
    for j in range(attention_layers):
        p = f"cross_plane{j + 1}"
        a = L.MultiHeadAttention(num_heads, key_dim, dropout=opts["dropout"], name=f"{p}_attention")(t, t)
        t = L.LayerNormalization(name=f"{p}_norm1")(L.Add(name=f"{p}_add1")([t, a]))
        f = L.Dense(2 * token_dim, activation="gelu", name=f"{p}_ffn1")(t)
        f = L.Dense(token_dim, name=f"{p}_ffn2")(L.Dropout(opts["dropout"], name=f"{p}_ffn_dropout")(f))
        t = L.LayerNormalization(name=f"{p}_norm2")(L.Add(name=f"{p}_add2")([t, f]))
    query = LearnedQuery(name="pool_query")(t)
    pooled, scores = L.MultiHeadAttention(num_heads, key_dim, name="attention_pool")(
        query, t, return_attention_scores=True
    )
    plane_w = PlaneWeights(num_planes=3, name="plane_weights")(scores)
    fused = L.Concatenate(name="fuse_planes")(
        [L.Flatten(name="pooled")(pooled), L.GlobalAveragePooling1D(name="mean_token")(t), plane_w]
    )
    return finish_model(
        inputs,
        fused,
        energy,
        head=head,
        dense_units=opts["dense_units"],
        dense_layers=opts["dense_layers"],
        dropout=opts["dropout"],
        name=name,
    )


def plane_attention_model(model: keras.Model) -> keras.Model:
    """A model with the same inputs returning the per-plane attention shares (N, 3) of ``model``.

    Works on a freshly built or a reloaded ``attention_v19`` model (it shares its layers).

    Raises:
        InputError: ``model`` has no ``plane_weights`` layer (not an attention_v19 model).
    """
    try:
        layer = model.get_layer("plane_weights")
    except ValueError as err:
        raise InputError(
            f"plane_attention_model: model {model.name!r} has no 'plane_weights' layer (expected attention_v19)"
        ) from err
    return keras.Model(inputs=model.input, outputs=layer.output, name=f"{model.name}_plane_weights")
