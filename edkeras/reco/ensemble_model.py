"""Ensembles as one Keras model: the :class:`SphericalMean` combiner and the :class:`Ensemble` model.

The numpy side (spherical mean, spread, membership) is :mod:`edkeras.reco.ensembles`.

Method notes: ``docs/methods.md``, section ``edkeras.reco.ensembles``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

import edkeras.reco.keras_metrics
import edkeras.reco.losses
import edkeras.reco.models.layers  # noqa: F401  (registers the model layers for load_model)
from edkeras.core.errors import InputError
from edkeras.reco.ensembles import _KAPPA_MAX, _KAPPA_MIN, _RBAR_MAX, KAPPA_MODES, WEIGHTINGS, _check_modes

__all__ = ["Ensemble", "SphericalMean", "build_ensemble", "load_ensemble"]


@keras.saving.register_keras_serializable(package="edkeras")
class SphericalMean(keras.layers.Layer):
    """Combine members' direction outputs: spherical mean and (optionally) an ensemble κ.

    Input: a list of M ≥ 2 tensors (N, 3) or (N, 4) (κ in column 3). Output: (N, 3)
    for ``kappa="none"``, else (N, 4) with the ensemble κ in column 3 (see the module
    docstring for the modes). Where the members cancel, the first member's direction.

    Args:
        weighting: ``"uniform"`` or ``"kappa"``.
        kappa: ``"none"``, ``"spread"``, ``"members"`` or ``"combined"``.
        min_resultant: R̄ below which an event is degenerate.
    """

    def __init__(
        self,
        weighting: str = "uniform",
        kappa: str = "spread",
        min_resultant: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if weighting not in WEIGHTINGS:
            raise InputError(
                f"SphericalMean: weighting must be one of {WEIGHTINGS}; received {weighting!r}"
            )
        if kappa not in KAPPA_MODES or kappa == "auto":
            raise InputError(f"SphericalMean: kappa must be one of {KAPPA_MODES[1:]}; received {kappa!r}")
        self.weighting = weighting
        self.kappa = kappa
        self.min_resultant = float(min_resultant)

    def build(self, input_shape: Any) -> None:
        shapes = list(input_shape)
        widths = {int(s[-1]) for s in shapes}
        _check_modes(self.weighting, self.kappa, min(widths) >= 4, len(shapes))
        self.built = True

    def call(self, inputs: Any) -> Any:
        dirs = []
        for x in inputs:
            v = ops.cast(x[..., :3], "float32")
            dirs.append(v / ops.sqrt(ops.sum(ops.square(v), axis=-1, keepdims=True) + 1e-12))
        stack = ops.stack(dirs, axis=1)  # (N, M, 3)
        if self.weighting == "kappa":
            w = ops.stack([ops.cast(x[..., 3], "float32") for x in inputs], axis=1)
        else:
            w = ops.ones_like(stack[..., 0])
        res = ops.sum(stack * w[..., None], axis=1) / ops.sum(w, axis=1, keepdims=True)
        r = ops.sqrt(ops.sum(ops.square(res), axis=-1, keepdims=True))
        degenerate = r < self.min_resultant
        mean = ops.where(degenerate, dirs[0], res / ops.maximum(r, 1e-30))
        if self.kappa == "none":
            return mean
        rbar = ops.clip(r[..., 0], 0.0, _RBAR_MAX)
        k_spread = ops.clip(rbar * (3.0 - rbar * rbar) / (1.0 - rbar * rbar), _KAPPA_MIN, _KAPPA_MAX)
        k_spread = ops.where(degenerate[..., 0], _KAPPA_MIN, k_spread)
        if self.kappa == "spread":
            k = k_spread
        else:
            mk = ops.clip(
                ops.stack([ops.cast(x[..., 3], "float32") for x in inputs], axis=1),
                _KAPPA_MIN,
                _KAPPA_MAX,
            )
            if self.kappa == "members":
                k = ops.mean(mk, axis=1)
            else:
                k = 1.0 / (ops.mean(1.0 / mk, axis=1) + 1.0 / k_spread)
        k = ops.clip(k, _KAPPA_MIN, _KAPPA_MAX)
        return ops.concatenate([mean, k[..., None]], axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        first = tuple(input_shape[0])
        return (*first[:-1], 3 if self.kappa == "none" else 4)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "weighting": self.weighting,
            "kappa": self.kappa,
            "min_resultant": self.min_resultant,
        }

@keras.saving.register_keras_serializable(package="edkeras")
class Ensemble(keras.Model):
    """A functional Keras model that runs N member models and combines them.

    Build it with :meth:`from_members` (or :func:`build_ensemble`); it saves to
    ``.keras`` and reloads with ``keras.saving.load_model`` as an ``Ensemble``. The
    constructor is the functional one (``inputs``, ``outputs``, ``name``), which is what
    lets Keras revive it from its saved graph.
    """

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)

    @property
    def members(self) -> list[Any]:
        """The member models, in order."""
        return [layer for layer in self.layers if isinstance(layer, keras.Model)]

    @property
    def combiner(self) -> Any:
        """The :class:`SphericalMean` layer producing ``direction``."""
        return next(layer for layer in self.layers if isinstance(layer, SphericalMean))

    @classmethod
    def from_members(
        cls,
        members: Sequence[Any],
        *,
        weighting: str = "uniform",
        kappa: str = "auto",
        min_resultant: float = 1e-6,
        name: str = "ensemble",
    ) -> Any:
        """Wrap M ≥ 2 member models (renamed ``member_<i>`` in place) into one model.

        Args:
            members: Keras models with the edkeras contract: inputs named ``view_u``,
                ``view_v``, ``view_x`` (``energy``), a ``direction`` output (N, 3) or
                (N, 4), optionally ``energy`` and ``interaction`` (multitask).
            weighting: ``"uniform"`` or ``"kappa"`` (vMF members).
            kappa: one of :data:`KAPPA_MODES`.
            min_resultant: see :class:`SphericalMean`.
            name: the ensemble model's name.

        Returns:
            An :class:`Ensemble`; outputs ``direction`` (and the averaged ``energy`` and
            ``interaction`` when every member has them), as a dict.
        """
        members = list(members)
        if len(members) < 2:
            raise InputError(f"ensemble: needs at least 2 members; received {len(members)}")
        specs: dict[str, Any] = {}
        member_inputs: list[list[str]] = []
        for i, m in enumerate(members):
            if not isinstance(m, keras.Model):
                raise InputError(f"ensemble: member {i} is a {type(m).__name__}; expected a keras.Model")
            names = []
            for t in keras.tree.flatten(m.inputs):
                nm = t.name
                shape = tuple(t.shape[1:])
                if nm in specs and tuple(specs[nm].shape[1:]) != shape:
                    raise InputError(
                        f"ensemble: input {nm!r} of member {i} has shape {shape}; another member has "
                        f"{tuple(specs[nm].shape[1:])}"
                    )
                specs.setdefault(nm, keras.Input(shape=shape, name=nm, dtype=t.dtype))
                names.append(nm)
            member_inputs.append(names)
        outs: list[dict[str, Any]] = []
        for i, (m, names) in enumerate(zip(members, member_inputs)):
            m.name = f"member_{i}"
            o = m({nm: specs[nm] for nm in names})
            if not isinstance(o, dict):
                out_names = list(getattr(m, "output_names", None) or [])
                o = dict(zip(out_names, keras.tree.flatten(o))) if out_names else {"direction": o}
            if "direction" not in o:
                raise InputError(f"ensemble: member {i} has no 'direction' output; outputs: {sorted(o)}")
            outs.append(o)
        widths = {int(o["direction"].shape[-1]) for o in outs}
        if widths - {3, 4}:
            raise InputError(
                f"ensemble: a member's direction output has width {max(widths)}; ensembles take direction "
                "(3) or vMF (4) heads, not the axial head (its column 3 is a sense logit, not κ)"
            )
        if len(widths) != 1:
            raise InputError(
                f"ensemble: members mix direction widths {sorted(widths)}; expected all 3 or all 4"
            )
        mode = _check_modes(weighting, kappa, widths.pop() >= 4, len(members))
        result = {
            "direction": SphericalMean(
                weighting=weighting, kappa=mode, min_resultant=min_resultant, name="direction"
            )([o["direction"] for o in outs])
        }
        for extra in ("energy", "interaction"):
            if all(extra in o for o in outs):
                result[extra] = keras.layers.Average(name=extra)([o[extra] for o in outs])
        return cls(inputs=specs, outputs=result, name=name)


def build_ensemble(
    members: Sequence[Any],
    *,
    weighting: str = "uniform",
    kappa: str = "auto",
    min_resultant: float = 1e-6,
    name: str = "ensemble",
) -> Any:
    """An :class:`Ensemble` of ``members`` (see :meth:`Ensemble.from_members`).

    ``weighting="kappa"`` and the κ modes that use the members' own κ read column 3 of a vmf
    head as κ: members trained with ``gaussian_angular_nll``'s default ``scale: "sigma"`` store
    σ there (:func:`edkeras.reco.config.uncertainty_output`); combine those with uniform weights
    and ``kappa="spread"``, or train them with ``scale: "kappa"``.

    Example:
        >>> from edkeras.reco.models import build_model
        >>> ens = build_ensemble([build_model("compact", head="vmf") for _ in range(3)], weighting="kappa")
        >>> out = ens.predict({"view_u": u, "view_v": v, "view_x": x})["direction"]   # (N, 4)
    """
    return Ensemble.from_members(
        members, weighting=weighting, kappa=kappa, min_resultant=min_resultant, name=name
    )


def load_ensemble(path: str | os.PathLike[str]) -> Any:
    """Load a saved ensemble (``.keras``) in Keras's safe mode.

    Every edkeras layer, loss and metric is registered by this module's imports.

    Raises:
        InputError: no such file.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such ensemble file (expected a .keras file)")
    return keras.saving.load_model(path)
