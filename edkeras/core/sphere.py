"""Directions on the sphere: isotropic sampling, deflection by (θ, φ), lattices and rotations."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from edkeras.core.errors import PointingError
from edkeras.core.vmf import orthonormal_basis

__all__ = ["deflect", "fibonacci_lattice", "isotropic", "monomial_powers", "monomials", "normalise", "random_directions", "rotate_to"]


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


def fibonacci_lattice(n: int) -> np.ndarray:
    """n nearly uniform points on the unit sphere (golden-angle spiral), (n, 3).

    Each point stands for a solid angle 4π/n; neighbours are ≈ √(4π/n) rad apart.
    """
    n = int(n)
    if n < 2:
        raise PointingError(f"lattice needs at least 2 points; received {n}")
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, 1.0))
    phi = np.pi * (1.0 + np.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def random_directions(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def rotate_to(vectors: Any, source: Any, target: Any, spin: float = 0.0) -> np.ndarray:
    """Rotate each vector by the rotation taking ``source`` to ``target``, then by ``spin`` about ``target``.

    The rotation is the smallest one (about source × target); when source = −target any
    perpendicular axis is used. The angle of every vector to ``source`` becomes its angle
    to ``target``, and relative geometry within a burst is kept.

    Args:
        vectors: (N, 3).
        source: (3,) or (N, 3) unit vectors (each event's neutrino direction).
        target: (3,) the new supernova direction.
        spin: extra rotation angle about ``target`` (radians).

    Returns:
        (N, 3) rotated vectors.
    """

    v = np.asarray(vectors, dtype=np.float64)
    s = np.broadcast_to(np.asarray(source, dtype=np.float64), v.shape)
    s = s / np.linalg.norm(s, axis=1, keepdims=True)
    t = np.asarray(target, dtype=np.float64)
    t = t / np.linalg.norm(t)
    axis = np.cross(s, t)
    sin = np.linalg.norm(axis, axis=1)
    cos = s @ t
    anti = sin < 1e-12
    if anti.any():
        e1, _ = orthonormal_basis(t)
        axis[anti] = e1
        sin[anti] = 0.0
    k = axis / np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-300)
    out = Rotation.from_rotvec(k * np.arctan2(sin, cos)[:, None]).apply(v)
    if spin:
        out = Rotation.from_rotvec(t * float(spin)).apply(out)
    return out


def monomial_powers(degree: int) -> list[tuple[int, int, int]]:
    """The exponents (a, b, c) of the columns of :func:`monomials`, in its order."""
    return [(a, b, t - a - b) for t in range(int(degree) + 1) for a in range(t, -1, -1) for b in range(t - a, -1, -1)]


def monomials(d: Any, degree: int) -> np.ndarray:
    """(N, n) x^a y^b z^c of the rows of ``d`` for every a + b + c ≤ ``degree``: 1, x, y, z, x², xy, …

    Ordered by total degree, then by falling a, then by falling b (:func:`monomial_powers`).
    """
    d = np.atleast_2d(np.asarray(d, dtype=np.float64))
    degree = int(degree)
    n = len(d)
    powers = np.empty((3, degree + 1, n))
    powers[:, 0] = 1.0
    for k in range(1, degree + 1):
        np.multiply(powers[:, k - 1], d.T, out=powers[:, k])
    px, py, pz = powers
    terms = monomial_powers(degree)
    out = np.empty((n, len(terms)))
    for j, (a, b, c) in enumerate(terms):
        np.multiply(px[a], py[b], out=out[:, j])
        out[:, j] *= pz[c]
    return out
