"""Detector constants and wire projections of a DUNE-like horizontal-drift TPC.

Method notes: ``docs/methods.md``, section ``edkeras.core.detector``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "ALPHA_DEG",
    "DRIFT_PER_TICK",
    "PITCH",
    "PLANES",
    "Geometry",
    "plane_unit_vector",
    "project_direction",
    "wire_coordinate",
]

PLANES: tuple[str, str, str] = ("U", "V", "X")
"""Plane names in file order: U and V induction, X collection."""

ALPHA_DEG = 35.71
"""Angle of the induction wires from vertical, degrees."""

PITCH: dict[str, float] = {"U": 0.4667, "V": 0.4667, "X": 0.479}
"""Wire pitch per plane, cm."""

DRIFT_PER_TICK = 0.08
"""Drift distance per 500 ns tick, cm (1.6 mm/µs at 500 V/cm)."""


def plane_unit_vector(plane: str) -> np.ndarray:
    """Unit vector ``e_p`` along which the wire coordinate of ``plane`` increases.

    Args:
        plane: ``"U"``, ``"V"`` or ``"X"``.

    Returns:
        float64 array of shape (3,) in the detector frame (x, y, z).

    Example:
        >>> plane_unit_vector("X")
        array([0., 0., 1.])
    """
    a = np.deg2rad(ALPHA_DEG)
    if plane == "X":
        return np.array([0.0, 0.0, 1.0])
    if plane == "U":
        return np.array([0.0, -np.sin(a), np.cos(a)])
    if plane == "V":
        return np.array([0.0, np.sin(a), np.cos(a)])
    raise ValueError(f"plane must be one of 'U', 'V', 'X'; received {plane!r}")


def wire_coordinate(points: np.ndarray, plane: str) -> np.ndarray:
    """Wire coordinate ``w_p = r · e_p`` (cm) of points ``r`` of shape (..., 3)."""
    return np.asarray(points, dtype=np.float64) @ plane_unit_vector(plane)


def project_direction(direction: np.ndarray, plane: str) -> np.ndarray:
    """Project 3-D directions onto a plane's image axes, in physical units (cm).

    Args:
        direction: array (..., 3) of directions (need not be unit).
        plane: ``"U"``, ``"V"`` or ``"X"``.

    Returns:
        array (..., 2): (row component = d_x, column component = d · e_p), both in cm
        per cm of track; divide by ``DRIFT_PER_TICK`` and ``PITCH[plane]`` to get
        pixels.
    """
    d = np.asarray(direction, dtype=np.float64)
    return np.stack([d[..., 0], d @ plane_unit_vector(plane)], axis=-1)


@dataclass(frozen=True)
class Geometry:
    """Readout geometry of an event file: written as JSON into its ``geometry`` attribute.

    Args:
        image_shape: (ticks, channels) of each plane's image.
        pitch: wire pitch per plane, cm.
        drift_per_tick: cm of drift per tick.
        alpha_deg: induction wire angle from vertical, degrees.
    """

    image_shape: tuple[int, int] = (128, 32)
    pitch: dict[str, float] = field(default_factory=lambda: dict(PITCH))
    drift_per_tick: float = DRIFT_PER_TICK
    alpha_deg: float = ALPHA_DEG

    def to_json(self) -> str:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Geometry:
        d = json.loads(text)
        d["image_shape"] = tuple(d["image_shape"])
        return cls(**d)
