"""Augmentation of training batches: the exact mirror group of the three-plane geometry,
electronics-like noise, gain scaling, and (off by default) mix-up.

Method notes: ``docs/methods.md``, section ``edkeras.reco.augment``.

Example:
    >>> rng = np.random.default_rng(0)
    >>> inputs, targets = augment_batch(inputs, targets, rng, AugmentConfig(mirror=True))
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edkeras.core.schema import ConfigError

__all__ = ["MIRRORS", "AugmentConfig", "augment_batch", "mirror_event", "slerp"]

MIRRORS: tuple[tuple[bool, bool, bool], ...] = tuple(
    (bool(fx), bool(fy), bool(fz)) for fx, fy, fz in itertools.product((False, True), repeat=3)
)
"""The eight elements of the mirror group as (flip_x, flip_y, flip_z); the identity first."""

_VIEW_KEYS = {"U": "view_u", "V": "view_v", "X": "view_x"}


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations a training run applies (all off by default).

    Args:
        mirror: apply a random element of the mirror group to each event.
        mirror_axes: the axes whose mirrors may be used (any of ``"x"``, ``"y"``, ``"z"``);
            each allowed axis is flipped with probability ½, i.e. a uniform element of the
            subgroup they generate.
        noise_adc: RMS (ADC) of Gaussian noise added to the read-out (non-zero) pixels.
        gain_sigma: relative RMS of one overall gain factor per event (all planes).
        plane_gain_sigma: relative RMS of an independent gain factor per plane and event.
        mixup_alpha: mix-up with λ ~ Beta(α, α) between random pairs (0 = off).
        scale_energy_label: scale the true-energy target with the overall gain (the charge
            of an event is proportional to its energy); the reconstructed-energy input is
            always scaled with the gain of the X plane, from which it is computed.
    """

    mirror: bool = False
    mirror_axes: tuple[str, ...] = ("x", "y", "z")
    noise_adc: float = 0.0
    gain_sigma: float = 0.0
    plane_gain_sigma: float = 0.0
    mixup_alpha: float = 0.0
    scale_energy_label: bool = True

    def __post_init__(self) -> None:

        bad = [a for a in self.mirror_axes if a not in ("x", "y", "z")]
        if bad or len(set(self.mirror_axes)) != len(self.mirror_axes):
            raise ConfigError(
                f"augmentation.mirror_axes: expected distinct axes from 'x', 'y', 'z'; "
                f"received {list(self.mirror_axes)}"
            )
        for name in ("noise_adc", "gain_sigma", "plane_gain_sigma", "mixup_alpha"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"augmentation.{name}: must be a number >= 0; received {v!r}")
        for name in ("gain_sigma", "plane_gain_sigma"):
            if getattr(self, name) >= 0.5:
                raise ConfigError(
                    f"augmentation.{name}: must be < 0.5 (a relative gain spread); received {getattr(self, name)!r}"
                )

    @property
    def active(self) -> bool:
        """Whether any augmentation is switched on."""
        return bool(
            (self.mirror and self.mirror_axes) or self.noise_adc > 0 or self.gain_sigma > 0
            or self.plane_gain_sigma > 0 or self.mixup_alpha > 0
        )


def _plane_keys(images: dict[str, Any]) -> dict[str, str]:
    """Map U, V, X to the keys used in ``images`` (``U``… or ``view_u``…)."""
    if all(p in images for p in "UVX"):
        return {p: p for p in "UVX"}
    if all(k in images for k in _VIEW_KEYS.values()):
        return dict(_VIEW_KEYS)
    raise KeyError(
        f"images must hold planes 'U', 'V', 'X' or 'view_u', 'view_v', 'view_x'; received keys {sorted(images)}"
    )


def mirror_event(
    images: dict[str, np.ndarray], direction: np.ndarray, flip_x: bool, flip_y: bool, flip_z: bool
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Apply one mirror-group element to the images and the direction label.

    Args:
        images: plane images of shape (…, T, C) under keys ``U, V, X`` (or ``view_u, view_v,
            view_x``); other keys are passed through unchanged.
        direction: (…, 3) direction labels.
        flip_x, flip_y, flip_z: which reflections to compose.

    Returns:
        (new images dict with the same keys, new directions); inputs are not modified.

    Example:
        >>> imgs, d = mirror_event({"U": u, "V": v, "X": x}, d, True, False, False)
    """
    keys = _plane_keys(images)
    u, v, x = (images[keys[p]] for p in "UVX")
    if flip_y != flip_z:  # y and z each swap U and V; together they don't
        u, v = v, u
    planes = {"U": u, "V": v, "X": x}
    for p in planes:
        img = planes[p]
        if flip_x:
            img = img[..., ::-1, :]
        if flip_z:
            img = img[..., :, ::-1]
        planes[p] = np.ascontiguousarray(img)
    out = dict(images)
    for p in "UVX":
        out[keys[p]] = planes[p]
    d = np.array(direction, copy=True)
    sign = np.array([-1.0 if flip_x else 1.0, -1.0 if flip_y else 1.0, -1.0 if flip_z else 1.0], dtype=d.dtype)
    return out, d * sign


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between unit vectors ``a`` and ``b`` (n, 3) at fractions ``t`` (n,).

    ``t = 0`` gives ``a``, ``t = 1`` gives ``b``; along the great circle in between. For
    (nearly) opposite vectors the great circle is undefined and the nearer endpoint is
    returned.
    """
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    t = np.asarray(t, dtype=np.float64)[:, None]
    cos = np.clip(np.sum(a * b, axis=1, keepdims=True), -1.0, 1.0)
    omega = np.arccos(cos)
    sin = np.sin(omega)
    safe = sin > 1e-6
    s = np.where(safe, sin, 1.0)
    out = np.where(safe, (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / s, np.where(t < 0.5, a, b))
    # Nearly identical vectors: the linear blend is exact to rounding.
    close = (~safe) & (cos > 0)
    out = np.where(close, (1.0 - t) * a + t * b, out)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _flip_rows(arr: np.ndarray, mask: np.ndarray) -> None:
    if mask.any():
        arr[mask] = arr[mask][:, ::-1, :]


def _flip_cols(arr: np.ndarray, mask: np.ndarray) -> None:
    if mask.any():
        arr[mask] = arr[mask][:, :, ::-1]


def augment_batch(
    inputs: dict[str, np.ndarray], targets: dict[str, np.ndarray], rng: np.random.Generator, config: AugmentConfig
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Augment one training batch (vectorised over events; numpy only).

    Applied in this order: mirrors, overall and per-plane gain, noise, mix-up.

    Mix-up (proposal 3b) blends random pairs, images λ·x₁ + (1 − λ)·x₂ with λ ~ Beta(α, α),
    directions by SLERP along the great circle (λ = 1 gives the first event's direction),
    energies and interaction labels linearly. **A blend of two events is not a physical
    event**: two superposed tracks with one interpolated direction label teach the network
    a target that no real electron carries; it is a regulariser to be judged on held-out
    data, not a symmetry.

    Args:
        inputs: ``view_u``, ``view_v``, ``view_x`` arrays (B, T, C) (and optionally
            ``energy`` (B, 1), the reconstructed energy).
        targets: ``direction`` (B, 3) (and optionally ``energy``, ``interaction``).
        rng: numpy Generator (seeded per batch by the caller).
        config: :class:`AugmentConfig`.

    Returns:
        New ``(inputs, targets)`` dicts; the given arrays are not modified.
    """
    keys = _plane_keys(inputs)
    out_in = {k: np.array(v, copy=True) for k, v in inputs.items()}
    out_t = {k: np.array(v, copy=True) for k, v in targets.items()}
    if not config.active:
        return out_in, out_t
    u, v, x = (out_in[keys[p]] for p in "UVX")
    n = u.shape[0]
    direction = out_t["direction"]

    if config.mirror and config.mirror_axes:
        flips = {a: (rng.random(n) < 0.5) if a in config.mirror_axes else np.zeros(n, dtype=bool)
                 for a in ("x", "y", "z")}
        swap = flips["y"] ^ flips["z"]
        if swap.any():
            u_s = u[swap].copy()
            u[swap] = v[swap]
            v[swap] = u_s
        for img in (u, v, x):
            _flip_rows(img, flips["x"])
            _flip_cols(img, flips["z"])
        for i, a in enumerate("xyz"):
            direction[flips[a], i] *= -1

    if config.gain_sigma > 0 or config.plane_gain_sigma > 0:
        overall = np.clip(1.0 + config.gain_sigma * rng.standard_normal(n), 0.2, None)
        per_plane = np.clip(1.0 + config.plane_gain_sigma * rng.standard_normal((3, n)), 0.2, None)
        for img, g in zip((u, v, x), per_plane):
            img *= (overall * g).astype(img.dtype)[:, None, None]
        if "energy" in out_in:
            e = out_in["energy"]
            e *= (overall * per_plane[2]).reshape((n,) + (1,) * (e.ndim - 1)).astype(e.dtype)
        if config.scale_energy_label and "energy" in out_t:
            e = out_t["energy"]
            e *= overall.reshape((n,) + (1,) * (e.ndim - 1)).astype(e.dtype)

    if config.noise_adc > 0:
        for img in (u, v, x):
            on = img > 0
            noise = rng.standard_normal(img.shape).astype(img.dtype) * np.asarray(config.noise_adc, img.dtype)
            np.add(img, noise, out=img, where=on)
            np.maximum(img, 0, out=img)

    if config.mixup_alpha > 0 and n > 1:
        lam = rng.beta(config.mixup_alpha, config.mixup_alpha, n)
        perm = rng.permutation(n)
        for img in (u, v, x):
            lam_i = lam.astype(img.dtype)[:, None, None]
            img[:] = lam_i * img + (1 - lam_i) * img[perm]
        direction[:] = slerp(direction, direction[perm], 1.0 - lam).astype(direction.dtype)
        for d in (out_in, out_t):
            for key in ("energy", "interaction"):
                if key in d:
                    if not np.issubdtype(d[key].dtype, np.floating):
                        d[key] = d[key].astype(np.float32)
                    arr = d[key]
                    lam_k = lam.reshape((n,) + (1,) * (arr.ndim - 1)).astype(arr.dtype)
                    arr[:] = lam_k * arr + (1 - lam_k) * arr[perm]
    return out_in, out_t
