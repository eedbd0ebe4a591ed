"""Small vectorised helpers for directions: isotropic sampling and deflection by (θ, φ)."""

from __future__ import annotations

import numpy as np

__all__ = ["deflect", "isotropic", "normalise"]


def normalise(v: np.ndarray) -> np.ndarray:
    """Rows of ``v`` (…, 3) scaled to unit length."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` unit vectors uniform on the sphere, shape (n, 3)."""
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, 1.0))
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)


def deflect(d: np.ndarray, cos_t: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Turn unit vectors ``d`` (n, 3) by polar angle arccos(``cos_t``) and azimuth ``phi``.

    The azimuth is measured in a right-handed basis perpendicular to each ``d``; the result
    is exactly unit length up to rounding.
    """
    cos_t = np.clip(cos_t, -1.0, 1.0)
    sin_t = np.sqrt(1.0 - cos_t**2)
    dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
    # Basis perpendicular to d: e1 = d × ẑ / |…| (or d × x̂ near the z axis), e2 = d × e1.
    near_z = np.abs(dz) > 0.9
    rxy = np.sqrt(dx * dx + dy * dy)
    ryz = np.sqrt(dy * dy + dz * dz)
    inv = 1.0 / np.where(near_z, ryz, rxy)
    zero = np.zeros_like(dx)
    e1x = np.where(near_z, zero, dy) * inv
    e1y = np.where(near_z, dz, -dx) * inv
    e1z = np.where(near_z, -dy, zero) * inv
    e2x = np.where(near_z, -(dy * dy + dz * dz), dz * dx) * inv
    e2y = np.where(near_z, dx * dy, dz * dy) * inv
    e2z = np.where(near_z, dx * dz, -(dx * dx + dy * dy)) * inv
    a = sin_t * np.cos(phi)
    b = sin_t * np.sin(phi)
    return np.stack([cos_t * dx + a * e1x + b * e2x, cos_t * dy + a * e1y + b * e2y,
                     cos_t * dz + a * e1z + b * e2z], axis=1)
