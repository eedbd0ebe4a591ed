"""What every builder shares: the three plane inputs, energy conditioning, the dense trunk and the heads.

Method notes: ``docs/methods.md``, section ``edkeras.reco.models.heads``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras

from edkeras.reco.models.layers import (
    ADCNormalization,
    EnergyActivation,
    KappaActivation,
    LogEnergy,
    SenseDirection,
    UnitNormalize,
)

__all__ = ["PLANE_INPUTS", "apply_branches", "attach_head", "finish_model", "fused_branch_model", "make_inputs"]

PLANE_INPUTS = ("view_u", "view_v", "view_x")
"""Input names of the three plane images, in the order U, V, X."""


def make_inputs(
    input_shape: tuple[int, int], energy_conditioning: bool, normalization: str
) -> tuple[dict[str, Any], list[Any], Any | None]:
    """Create the model inputs and the normalised (T, C, 1) images.

    Args:
        input_shape: (ticks, channels) of each plane image.
        energy_conditioning: add an ``energy`` input (MeV, shape (1,)).
        normalization: ``"log1p"`` or ``"none"`` (see ADCNormalization).

    Returns:
        ``(inputs, images, energy)``: the dict of Keras inputs by name, the three
        normalised image tensors (U, V, X), and the energy input or ``None``.
    """
    inputs: dict[str, Any] = {}
    images = []
    for name in PLANE_INPUTS:
        plane = name[-1]
        inp = keras.Input(shape=input_shape, name=name)
        inputs[name] = inp
        x = keras.layers.Reshape((*input_shape, 1), name=f"channel_axis_{plane}")(inp)
        images.append(ADCNormalization(mode=normalization, name=f"adc_norm_{plane}")(x))
    energy = None
    if energy_conditioning:
        energy = keras.Input(shape=(1,), name="energy")
        inputs["energy"] = energy
    return inputs, images, energy


def apply_branches(
    images: list[Any], make_branch: Callable[[str], Callable[[Any], Any]], shared: bool
) -> list[Any]:
    """Run one feature extractor per plane (or one shared by the three planes).

    Args:
        images: the three normalised images (U, V, X).
        make_branch: ``make_branch(prefix)`` creates the layers of one branch, with layer
            names starting with ``prefix``, and returns a function applying them (a function,
            not a ``keras.Sequential``: branches fork — average and max pooling, residual
            shortcuts — and their layers stay at the top level of the model, by name).
        shared: one branch (prefix ``"shared"``) for the three planes instead of three.

    Returns:
        The three planes' features.
    """
    if shared:
        branch = make_branch("shared")
        return [branch(x) for x in images]
    return [make_branch(plane)(x) for plane, x in zip("uvx", images)]


def attach_head(x: Any, head: str) -> dict[str, Any]:
    """Output layers of ``head`` on the feature vector ``x``; returns the outputs by name."""
    # A small random bias: an event whose features are all zero (dead ReLUs) still gets a
    # defined direction instead of the zero vector.
    raw = keras.layers.Dense(
        3, name="direction_raw", bias_initializer=keras.initializers.RandomNormal(stddev=0.01)
    )(x)
    if head == "direction":
        return {"direction": UnitNormalize(name="direction")(raw)}
    if head == "vmf":
        unit = UnitNormalize(name="direction_unit")(raw)
        # The head regresses ln κ. Bias ln 0.3: κ ≈ 0.3 at the start (68 % cone ≈ 100°, close
        # to "no idea", which is what an untrained net has); vmf_nll's kappa_floor keeps it
        # from sinking while the directions are random (see KappaActivation).
        # Zero kernel: at the start κ is 0.3 for every event. With the default (Glorot) kernel the
        # batch-normalised features of a training step spread ln κ over ±10 (κ from 0.01 up to
        # the 1e4 clip at initialisation, measured), and κ·(1 − cos θ) of random directions
        # then gave gradients ~1,000× those of the angle, orthogonal to them, that wrecked the
        # shared layers for the first epochs: v21 learnt its directions far more slowly than
        # the same network with the angular loss (75.5° against 58.7° at 6,000 × 8 epochs).
        z = keras.layers.Dense(
            1,
            name="kappa_raw",
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(math.log(0.3)),
        )(x)
        kappa = KappaActivation(floor=1e-4, parameterization="log", name="kappa")(z)
        return {"direction": keras.layers.Concatenate(name="direction", dtype="float32")([unit, kappa])}
    if head == "axial":
        axis = UnitNormalize(name="axis")(raw)
        # the default (Glorot) kernel: with a zero kernel no gradient of the sense loss reached
        # the shared layers at the start, and the sense was still a coin toss after 42,000
        # sample passes (θ68 104° against 61° of the vmf head, measured)
        sense = keras.layers.Dense(
            3, name="sense_vector", bias_initializer=keras.initializers.RandomNormal(stddev=0.01)
        )(x)
        return {"direction": SenseDirection(name="direction", dtype="float32")([axis, sense])}
    if head == "multitask":
        return {
            "direction": UnitNormalize(name="direction")(raw),
            "energy": EnergyActivation(scale_mev=20.0, name="energy_mev")(
                keras.layers.Dense(1, name="energy_raw")(x)
            ),
            "interaction": keras.layers.Dense(1, activation="sigmoid", name="interaction", dtype="float32")(
                x
            ),
        }
    raise ValueError(f"unknown head {head!r}")


def finish_model(
    inputs: dict[str, Any],
    features: Any,
    energy: Any | None,
    *,
    head: str,
    dense_units: int,
    dense_layers: int,
    dropout: float,
    name: str,
) -> Any:
    """Join energy, run the dense trunk, attach the head and return the ``keras.Model``.

    Args:
        inputs: the model inputs (from :func:`make_inputs`).
        features: the fused per-event feature vector (N, F).
        energy: the energy input or ``None`` (no conditioning).
        head: ``direction``, ``vmf``, ``axial`` or ``multitask``.
        dense_units, dense_layers, dropout: the trunk, ``dense_layers`` × [Dense ReLU → Dropout].
        name: the model's name.
    """
    x = features
    if energy is not None:
        e = LogEnergy(name="log_energy")(energy)
        e = keras.layers.Dense(16, activation="relu", name="energy_embedding")(e)
        x = keras.layers.Concatenate(name="join_energy")([x, e])
    for i in range(dense_layers):
        x = keras.layers.Dense(dense_units, activation="relu", name=f"dense_{i + 1}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
    return keras.Model(inputs=inputs, outputs=attach_head(x, head), name=name)


def fused_branch_model(name: str, opts: dict[str, Any], make_branch: Any) -> Any:
    """The model every three-branch builder makes: inputs, one branch per plane, fused, trunk and head.

    Args:
        name: the builder's (and the model's) name.
        opts: the builder's checked options (:func:`~edkeras.reco.models.registry.check_common_options`).
        make_branch: ``prefix -> (image -> features)`` (see :func:`apply_branches`).
    """
    inputs, images, energy = make_inputs(opts["input_shape"], opts["energy_conditioning"], opts["normalization"])
    feats = apply_branches(images, make_branch, opts["shared_branches"])
    fused = keras.layers.Concatenate(name="fuse_planes")(feats)
    return finish_model(
        inputs, fused, energy, head=opts["head"], dense_units=opts["dense_units"],
        dense_layers=opts["dense_layers"], dropout=opts["dropout"], name=name,
    )
