"""Custom Keras layers of the edkeras models: input scaling, output activations, plane tokens.

Method notes: ``docs/methods.md``, section ``edkeras.reco.models.layers``.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

__all__ = [
    "ADCNormalization",
    "EnergyActivation",
    "KappaActivation",
    "LearnedQuery",
    "LogEnergy",
    "PlaneTokens",
    "PlaneWeights",
    "SenseDirection",
    "UnitNormalize",
]

_register = keras.saving.register_keras_serializable(package="edkeras")


@_register
class ADCNormalization(keras.layers.Layer):
    """Scale raw ADC images inside the model: ``γ · log1p(max(x, 0) / adc_scale)`` (or ``x / adc_scale``).

    Args:
        mode: ``"log1p"`` (default) or ``"none"`` (only divides by ``adc_scale``, i.e. the
            raw ADC as the earlier system fed it, up to a constant).
        adc_scale: ADC value that maps to log1p(1) ≈ 0.69.
        learn_scale: whether γ (initialised to 1) is trainable.
    """

    MODES = ("log1p", "none")

    def __init__(
        self, mode: str = "log1p", adc_scale: float = 100.0, learn_scale: bool = True, **kwargs: Any
    ):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"ADCNormalization: mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.adc_scale = float(adc_scale)
        self.learn_scale = bool(learn_scale)

    def build(self, input_shape: Any) -> None:
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="ones", trainable=self.learn_scale)

    def call(self, inputs: Any) -> Any:
        x = ops.maximum(ops.cast(inputs, self.compute_dtype), 0.0) / self.adc_scale
        if self.mode == "log1p":
            x = ops.log1p(x)
        return x * ops.cast(self.gamma, self.compute_dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "mode": self.mode,
            "adc_scale": self.adc_scale,
            "learn_scale": self.learn_scale,
        }


@_register
class LogEnergy(keras.layers.Layer):
    """Normalised log-energy ``(log(max(E, floor)) − log(center_mev)) / width``.

    Args:
        center_mev: energy mapped to 0 (20 MeV: middle of the supernova spectrum in log).
        width: divisor of the log.
        floor_mev: energies below this (or ≤ 0, unknown) are clamped to it.
    """

    def __init__(self, center_mev: float = 20.0, width: float = 1.0, floor_mev: float = 0.1, **kwargs: Any):
        super().__init__(**kwargs)
        self.center_mev = float(center_mev)
        self.width = float(width)
        self.floor_mev = float(floor_mev)

    def call(self, inputs: Any) -> Any:
        e = ops.maximum(ops.cast(inputs, self.compute_dtype), self.floor_mev)
        return (ops.log(e) - math.log(self.center_mev)) / self.width

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "center_mev": self.center_mev,
            "width": self.width,
            "floor_mev": self.floor_mev,
        }


@_register
class UnitNormalize(keras.layers.Layer):
    """Divide each vector by its length (safe at zero length: ``x / sqrt(|x|² + ε)``).

    Kept beside ``keras.layers.UnitNormalization`` because the shipped models' saved graphs name
    this layer (``edkeras>UnitNormalize``); the two compute the same.

    Args:
        epsilon: added to |x|² (keeps the output and its gradient finite at x = 0).
    """

    def __init__(self, epsilon: float = 1e-12, **kwargs: Any):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, "float32")
        return x / ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + self.epsilon)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


@_register
class SenseDirection(keras.layers.Layer):
    """Axis and sense vector → ``[a · sgn(s), s, v̂]`` (N, 7), with the sense logit ``s = a · v``.

    Inputs ``[axis, sense]``: the unit axis ``a`` (its sign is arbitrary; the axial loss
    ignores it) and a free vector ``v``, the network's guess of the signed direction. The
    logit ``s = stop_gradient(a) · v`` says how sure the network is that the electron travels
    along +a: its sign is the hemisphere of v, its size grows with |v| (the sense loss
    trains v only, so the axis is learnt from the sign-free axial loss alone). Columns:
    0–2 the believed direction, ``a`` turned by the sign of ``s`` (``s = 0`` counts as +);
    3 the logit ``s``, so that P(sense wrong) = sigmoid(−|s|); 4–6 the unit vector v̂, which
    :func:`edkeras.reco.losses.axial_sense` also trains as a direction (the sense's own signal).
    """

    def call(self, inputs: Any) -> Any:
        axis, sense = (ops.cast(x, "float32") for x in inputs)
        s = ops.sum(ops.stop_gradient(axis) * sense, axis=-1, keepdims=True)
        sign = ops.where(s >= 0.0, 1.0, -1.0)
        unit = sense / ops.sqrt(ops.sum(ops.square(sense), axis=-1, keepdims=True) + 1e-12)
        return ops.concatenate([axis * sign, s, unit], axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[0][:-1], 7)


@_register
class KappaActivation(keras.layers.Layer):
    """Von Mises–Fisher concentration κ > 0 from a pre-activation z.

    ``parameterization="log"`` (the vmf head's): κ = exp(clip(z, ln floor, ln κ_max)), i.e.
    the network regresses ln κ, so a term of the loss in ln κ — the ``kappa_floor`` wall of
    :func:`edkeras.reco.losses.vmf_nll` — reaches z with its full gradient. ``"softplus"``
    (models saved before this option): κ = floor + scale · softplus(z).

    Why it matters: while the directions are still random the vMF likelihood pushes κ
    towards 0, and with either form alone the head sank out of reach (z ≈ −9 … −16 with
    the softplus, at the clip with the exp) and stayed there through a 10-epoch run that
    learnt its directions — κ ≈ 1e-3 for every event. The wall in the loss stops the fall
    at κ₀; the clip here is only a numerical guard.

    Args:
        floor: smallest κ (``"log"``: lower end of the clip; ``"softplus"``: the added floor).
        scale: ``"softplus"`` only: multiplies the softplus.
        parameterization: ``"log"`` or ``"softplus"``.
        kappa_max: largest κ (``"log"`` only; the NLL is stable in float32 up to 1e4).
    """

    def __init__(
        self,
        floor: float = 1e-3,
        scale: float = 1.0,
        parameterization: str = "softplus",
        kappa_max: float = 1e4,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if parameterization not in ("log", "softplus"):
            raise ValueError(f"KappaActivation: parameterization must be 'log' or 'softplus', got {parameterization!r}")
        if not 0 < floor < kappa_max:
            raise ValueError(f"KappaActivation: need 0 < floor < kappa_max, got {floor}, {kappa_max}")
        self.floor = float(floor)
        self.scale = float(scale)
        self.parameterization = parameterization
        self.kappa_max = float(kappa_max)

    def call(self, inputs: Any) -> Any:
        z = ops.cast(inputs, "float32")
        if self.parameterization == "log":
            return ops.exp(ops.clip(z, math.log(self.floor), math.log(self.kappa_max)))
        return self.floor + self.scale * ops.softplus(z)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "floor": self.floor,
            "scale": self.scale,
            "parameterization": self.parameterization,
            "kappa_max": self.kappa_max,
        }


@_register
class EnergyActivation(keras.layers.Layer):
    """Energy in MeV ``scale_mev · exp(clip(z, −10, 10))`` (the network regresses log E).

    Args:
        scale_mev: energy at z = 0.
    """

    def __init__(self, scale_mev: float = 20.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale_mev = float(scale_mev)

    def call(self, inputs: Any) -> Any:
        return self.scale_mev * ops.exp(ops.clip(ops.cast(inputs, "float32"), -10.0, 10.0))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale_mev": self.scale_mev}


@_register
class PlaneTokens(keras.layers.Layer):
    """Join the planes' token sequences, with learned position and plane embeddings.

    Input: a list of ``num_planes`` tensors (N, L, D) — the flattened feature maps of U, V,
    X (L = rows × columns of the map). Output: (N, num_planes · L, D), where token ``l`` of
    plane ``p`` is ``x + pos[l] + plane[p]``. Positions are shared by the planes (they
    share the image grid); the plane embedding tells attention which plane a token is from.
    """

    def __init__(self, num_planes: int = 3, **kwargs: Any):
        super().__init__(**kwargs)
        self.num_planes = int(num_planes)

    def build(self, input_shape: Any) -> None:
        length, dim = int(input_shape[0][1]), int(input_shape[0][2])
        init = keras.initializers.RandomNormal(stddev=0.02)
        self.position = self.add_weight(name="position", shape=(length, dim), initializer=init)
        self.plane = self.add_weight(name="plane", shape=(self.num_planes, dim), initializer=init)

    def call(self, inputs: Any) -> Any:
        parts = [
            x + ops.cast(self.position, x.dtype)[None] + ops.cast(self.plane[p], x.dtype)[None, None]
            for p, x in enumerate(inputs)
        ]
        return ops.concatenate(parts, axis=1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        first = input_shape[0]
        length = None if first[1] is None else first[1] * self.num_planes
        return (first[0], length, first[2])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_planes": self.num_planes}


@_register
class LearnedQuery(keras.layers.Layer):
    """A learned (1, D) query token repeated for every event of the batch: (N, L, D) → (N, 1, D)."""

    def build(self, input_shape: Any) -> None:
        self.query = self.add_weight(
            name="query",
            shape=(1, int(input_shape[-1])),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )

    def call(self, inputs: Any) -> Any:
        batch = ops.shape(inputs)[0]
        q = ops.cast(self.query, inputs.dtype)[None]
        return ops.broadcast_to(q, (batch, 1, ops.shape(q)[-1]))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], 1, input_shape[-1])


@_register
class PlaneWeights(keras.layers.Layer):
    """Attention share of each plane: scores (N, H, Q, P·L) → (N, P), rows summing to 1.

    The scores are the softmax attention weights of a pooling attention (one or few
    queries over all P·L plane tokens); they are averaged over heads and queries and
    summed over each plane's L tokens.
    """

    def __init__(self, num_planes: int = 3, **kwargs: Any):
        super().__init__(**kwargs)
        self.num_planes = int(num_planes)

    def call(self, inputs: Any) -> Any:
        s = ops.mean(ops.cast(inputs, "float32"), axis=(1, 2))  # (N, P·L)
        s = ops.reshape(s, (ops.shape(s)[0], self.num_planes, -1))
        w = ops.sum(s, axis=-1)
        return w / ops.sum(w, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], self.num_planes)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_planes": self.num_planes}
