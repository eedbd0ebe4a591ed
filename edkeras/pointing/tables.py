"""Likelihood tables P(cos θ | E): how reconstructed electron directions scatter around the truth.

A :class:`LikelihoodTable` holds, per bin of reconstructed energy (and optionally of the
predicted κ, and separately for ES and CC events), the density of cos θ on [−1, 1], with an
optional detector-response map, detector acceptance and head–tail calibration. How the
rows are fitted and smoothed is in ``docs/methods.md`` (section ``edkeras.pointing.tables``); the file format in
``docs/formats.md``.

Example:
    >>> table = build_table(load_predictions("val.npz"), method="mixture")
    >>> save_table(table, "tables.npz")
    >>> table.pdf(np.array([0.99, -0.5]), np.array([12.0, 40.0]))
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import ARCHIVE_ERRORS, TableError
from edkeras.core.files import atomic_path
from edkeras.pointing.acceptance import Acceptance, legendre_moments
from edkeras.pointing.response import Response
from edkeras.pointing.rows import (
    FLOOR,
    _apply_floor,
)

__all__ = [
    "DEFAULT_ENERGY_EDGES",
    "REFERENCES",
    "SMOOTHINGS",
    "Acceptance",
    "LikelihoodTable",
    "load_table",
    "save_table",
]

DEFAULT_ENERGY_EDGES: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 30.0, 50.0, float("inf"))
"""Reconstructed-energy bin edges in MeV (the proposal's bins; the last is open)."""


REFERENCES = ("neutrino", "electron")
SENSES = ("auto", "predicted", "oriented")
"""How a table treats the sense of the predictions (see the module notes)."""
SMOOTHINGS = ("auto", "none", "params", "rows")
COMPONENTS = {"es": 1, "cc": 0}
"""Per-interaction sub-tables and the ``interaction`` code they hold."""


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class LikelihoodTable:
    """P(cos θ | E [, κ]) for one event class, with optional ES and CC sub-tables.

    Build with :func:`~edkeras.pointing.fitting.build_table` / :func:`~edkeras.pointing.fitting.fit_table`, read with :func:`load_table`.
    Evaluate with :meth:`pdf` (vectorised over events).

    Attributes:
        cosine_bin_edges: (n_cos + 1,) ascending from −1 to 1.
        energy_edges: (n_E + 1,) MeV; the last may be inf. Energies outside take the
            nearest bin.
        pdf_2d: (n_E, n_cos) bin-averaged densities; each row integrates to 1.
        n_events_per_bin: (n_E,) events that went into each energy bin.
        params: (n_E, n_par) fitted parameters per energy bin (after smoothing), NaN for
            pooled bins; names in ``param_names``.
        param_names: names of the parameter columns.
        method, reference, smoothing_method: how the table was made.
        floor: the floor (no density is below it).
        pooled_bins: (n_E,) True where a bin had too few events and took the all-energy fit.
        kappa_edges: (n_K + 1,) predicted-κ bin edges (0 … inf), or None.
        pdf_3d: (n_E, n_K, n_cos) or None.
        n_events_per_bin_3d: (n_E, n_K) or None.
        params_3d: (n_E, n_K, n_par) or None.
        interaction: "all", "es" or "cc": which events this table describes.
        components: sub-tables ``{"es": ..., "cc": ...}`` (empty when not split).
        response: the detector-response map cos θ is measured from (the ES sub-table
            shares it, a CC sub-table has none), or None: cos θ from the reference itself.
        acceptance: the reconstruction's detector-frame acceptance g(d), shared by the
            sub-tables (:mod:`edkeras.pointing.acceptance`), or None: a burst likelihood without the
            normalisation Z(s).
        sense: ``"predicted"`` (rows of cos θ of the predicted direction, flips included)
            or ``"oriented"`` (rows of the direction turned to its true sense; a burst
            weighs the two peaks by each event's flip probability).
        flip_calibration: (2, K) knots raw → calibrated P(sense wrong) of an oriented table.
        model: identity of the model whose predictions the table was fitted on (the
            predictions' ``model``), or "" when unknown.
        burst_temperature: T of tempered burst sky maps p ∝ exp(−ΔlnL / T), calibrated on
            simulated bursts of this model (:func:`~edkeras.pointing.resolution.burst_temperature`);
            1 when not calibrated.
        burst_temperature_events: events per burst T was calibrated for (0: none). ``model`` and
            the burst calibration are the file's: ES and CC sub-tables share the main table's.
    """

    cosine_bin_edges: np.ndarray
    energy_edges: np.ndarray
    pdf_2d: np.ndarray
    n_events_per_bin: np.ndarray
    params: np.ndarray
    param_names: tuple[str, ...]
    method: str
    reference: str
    smoothing_method: str
    floor: float
    pooled_bins: np.ndarray
    kappa_edges: np.ndarray | None = None
    pdf_3d: np.ndarray | None = None
    n_events_per_bin_3d: np.ndarray | None = None
    params_3d: np.ndarray | None = None
    interaction: str = "all"
    components: Mapping[str, LikelihoodTable] = field(default_factory=dict)
    response: Response | None = None
    acceptance: Acceptance | None = None
    sense: str = "predicted"
    flip_calibration: np.ndarray | None = None
    model: str = ""
    burst_temperature: float = 1.0
    burst_temperature_events: int = 0

    # ---- derived
    @property
    def cosine_bin_centers(self) -> np.ndarray:
        """(n_cos,) centres of the cos θ bins."""
        e = self.cosine_bin_edges
        return 0.5 * (e[1:] + e[:-1])

    @property
    def energy_bins(self) -> np.ndarray:
        """(n_E, 2) [lo, hi) of each energy bin, MeV."""
        return np.stack([self.energy_edges[:-1], self.energy_edges[1:]], axis=1)

    @property
    def kappa_bins(self) -> np.ndarray | None:
        """(n_K, 2) [lo, hi) of each κ bin, or None."""
        if self.kappa_edges is None:
            return None
        return np.stack([self.kappa_edges[:-1], self.kappa_edges[1:]], axis=1)

    def calibrated_flip(self, flip_probability: Any) -> np.ndarray:
        """Calibrated P(sense wrong) of events with the network's ``flip_probability`` (oriented tables)."""
        f = np.asarray(flip_probability, dtype=np.float64).ravel()
        if self.flip_calibration is None:
            return f
        x, y = self.flip_calibration
        return np.clip(np.interp(f, x, y), 0.0, 1.0)

    @property
    def has_kappa(self) -> bool:
        return self.pdf_3d is not None

    def component(self, name: str) -> LikelihoodTable:
        """The sub-table ``"es"`` or ``"cc"``, or ``"all"`` (this table without sub-tables)."""
        if name == "all":
            return replace(self, components={}) if self.components else self
        if name not in self.components:
            raise TableError(
                f"likelihood table has no {name!r} sub-table; available: {['all', *self.components]}"
            )
        return self.components[name]

    def check_model(self, model: str, where: str = "likelihood table") -> None:
        """Refuse (TableError) predictions of another model than the one the table was fitted on.

        Nothing is checked when either identity is unknown ("").
        """
        if self.model and model and self.model != model:
            raise TableError(
                f"{where}: the tables were built for the predictions of model {self.model}, the burst's "
                f"predictions come from model {model}; build tables for this model with edkeras likelihood "
                "on its validation predictions ('+mirror8': averaged over the mirror images, evaluate --mirror-average)"
            )

    # ---- lookup
    def row_index(self, energy: Any, kappa: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Row of the table each event uses.

        Args:
            energy: (N,) reconstructed energies, MeV (must be finite).
            kappa: (N,) predicted κ, or None; used only when the table has κ bins.

        Returns:
            (rows (R, n_cos) — pdf_2d, or pdf_3d flattened to (n_E·n_K, n_cos) —, index (N,)).
        """
        e = np.asarray(energy, dtype=np.float64).ravel()
        if not np.all(np.isfinite(e)):
            i = int(np.flatnonzero(~np.isfinite(e))[0])
            raise TableError(f"likelihood table: energy of event index {i} is not finite ({e[i]})")
        ie = np.searchsorted(self.energy_edges[1:-1], e, side="right")
        if kappa is None or not self.has_kappa:
            return self.pdf_2d, ie
        k = np.asarray(kappa, dtype=np.float64).ravel()
        if k.shape != e.shape or not np.all(np.isfinite(k)):
            raise TableError(
                f"likelihood table: kappa must be finite with shape {e.shape}; received {k.shape}"
            )
        ik = np.searchsorted(self.kappa_edges[1:-1], k, side="right")
        n_k = self.pdf_3d.shape[1]
        return self.pdf_3d.reshape(-1, self.pdf_3d.shape[-1]), ie * n_k + ik

    def interpolate(self, rows: np.ndarray, index: np.ndarray, cos: np.ndarray) -> np.ndarray:
        """Density of row ``rows[index[i]]`` at ``cos[i]``, linear between bin centres."""
        c = np.clip(np.asarray(cos, dtype=np.float64), -1.0, 1.0)
        centres = self.cosine_bin_centers
        j = np.clip(np.searchsorted(centres, c), 1, len(centres) - 1)
        x0, x1 = centres[j - 1], centres[j]
        w = np.clip((c - x0) / (x1 - x0), 0.0, 1.0)
        return rows[index, j - 1] * (1.0 - w) + rows[index, j] * w

    def pdf(self, cos: Any, energy: Any, kappa: Any = None, interaction: Any = None) -> np.ndarray:
        """P(cos θ | E [, κ] [, interaction]) per event, vectorised.

        Args:
            cos: (N,) cos θ (clipped into [−1, 1]).
            energy: (N,) reconstructed energy, MeV.
            kappa: (N,) predicted κ; used when the table has κ bins, else ignored.
            interaction: (N,) 1 = ES, 0 = CC, −1 unknown; events of a type with a sub-table
                use it, the others this table.

        Returns:
            (N,) densities ≥ floor.

        Example:
            >>> table.pdf([0.99, 0.1], [12.0, 35.0])
        """
        c = np.asarray(cos, dtype=np.float64).ravel()
        e = np.asarray(energy, dtype=np.float64).ravel()
        if e.shape != c.shape:
            raise TableError(
                f"pdf: cos and energy must have the same length; received {c.shape} and {e.shape}"
            )
        return self.rows_for(e, kappa, interaction)(c)

    def lookups(self, energy: Any, kappa: Any = None, interaction: Any = None) -> list[tuple]:
        """Which table and row each event uses: [(table, selection (N,), rows, index), …].

        Events of a type with a sub-table use it, the others this table (without sub-tables).
        """
        e = np.asarray(energy, dtype=np.float64).ravel()
        k = None if kappa is None else np.asarray(kappa, dtype=np.float64).ravel()
        groups = [(self.component("all"), np.ones(len(e), dtype=bool))]
        if interaction is not None and self.components:
            it = np.asarray(interaction).ravel()
            if it.shape != e.shape:
                raise TableError(f"pdf: interaction must have shape {e.shape}; received {it.shape}")
            groups = []
            used = np.zeros(len(e), dtype=bool)
            for name, code in COMPONENTS.items():
                if name in self.components:
                    sel = it == code
                    groups.append((self.components[name], sel))
                    used |= sel
            groups.append((self.component("all"), ~used))
        return [
            (table, sel, *table.row_index(e[sel], None if k is None else k[sel]))
            for table, sel in groups
            if sel.any()
        ]

    def rows_for(self, energy: Any, kappa: Any = None, interaction: Any = None) -> Any:
        """The rows N events use, looked up once: a function cos (N,) → density (N,).

        :meth:`pdf` is ``rows_for(E, κ, interaction)(cos)``; a caller that evaluates the same
        events at many cos θ (fitting a response map) keeps the function instead.
        """
        return _density(self.lookups(energy, kappa, interaction))

    def moments(self, rows: np.ndarray, l_max: int, n_grid: int = 2048) -> np.ndarray:
        """(R, l_max + 1) Legendre moments ∫ f(t) P_ℓ(t) dt of ``rows`` (as :meth:`interpolate` reads them)."""
        grid = np.linspace(-1.0, 1.0, n_grid + 1)
        r = len(rows)
        fine = self.interpolate(rows, np.repeat(np.arange(r), len(grid)), np.tile(grid, r)).reshape(r, -1)
        return legendre_moments(grid, fine, l_max)

    def event_terms(
        self, reference: Any, energy: Any, kappa: Any = None, interaction: Any = None, l_max: int = 0
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """Per event: the direction its row is measured from, its row's Legendre moments, its density.

        Args:
            reference: (N, 3) true (neutrino) directions s.
            energy, kappa, interaction: as :meth:`pdf` takes them.
            l_max: highest Legendre moment.

        Returns:
            (mapped (N, 3): m̂(s) for tables with a response map, else s; moments (N, l_max + 1);
            density: a function cos (N,) → (N,) as :meth:`rows_for` returns).
        """
        s = np.asarray(reference, dtype=np.float64).reshape(-1, 3)
        lookups = self.lookups(energy, kappa, interaction)
        mapped = s.copy()
        lam = np.empty((len(s), int(l_max) + 1))
        for table, sel, rows, idx in lookups:
            if table.response is not None:
                mapped[sel] = table.response(s[sel])
            used, inverse = np.unique(idx, return_inverse=True)
            lam[sel] = table.moments(rows[used], l_max)[inverse.ravel()]

        return mapped, lam, _density(lookups)

    def logpdf(self, cos: Any, energy: Any, kappa: Any = None, interaction: Any = None) -> np.ndarray:
        """log of :meth:`pdf`."""
        return np.log(self.pdf(cos, energy, kappa, interaction))

    def cdf(self, cos: Any, energy: Any, kappa: Any = None) -> np.ndarray:
        """P(cos' ≤ cos | E [, κ]) from the bin-averaged rows (exact for the binned density)."""
        c = np.clip(np.asarray(cos, dtype=np.float64).ravel(), -1.0, 1.0)
        rows, idx = self.row_index(energy, kappa)
        edges = self.cosine_bin_edges
        cum = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(rows * np.diff(edges), axis=1)], axis=1)
        j = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, len(edges) - 2)
        return np.clip(cum[idx, j] + rows[idx, j] * (c - edges[j]), 0.0, 1.0)


def _density(lookups: list[tuple]) -> Any:
    """cos (N,) → density (N,) for events looked up by :meth:`LikelihoodTable.lookups`."""

    def density(cos: Any) -> np.ndarray:
        c = np.asarray(cos, dtype=np.float64).ravel()
        out = np.empty_like(c)
        for table, sel, rows, idx in lookups:
            out[sel] = table.interpolate(rows, idx, c[sel])
        return out

    return density


# --------------------------------------------------------------------------- fitting


# --------------------------------------------------------------------------- validation


# --------------------------------------------------------------------------- files


_SUFFIXED = (
    "pdf_2d",
    "n_events_per_bin",
    "params",
    "pooled_bins",
    "pdf_3d",
    "n_events_per_bin_3d",
    "params_3d",
)


def _arrays(table: LikelihoodTable, suffix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key in _SUFFIXED:
        v = getattr(table, key)
        if v is not None:
            out[key + suffix] = np.asarray(v)
    return out


def save_table(table: LikelihoodTable, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write a table file (docs/formats.md §3) atomically (temporary name, then rename).

    Args:
        table: the table.
        path: output ``.npz``.
        overwrite: replace an existing file.

    Returns:
        The path written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; use --force (overwrite=True) to replace it")
    arrays: dict[str, Any] = {
        "cosine_bin_edges": table.cosine_bin_edges,
        "cosine_bin_centers": table.cosine_bin_centers,
        "energy_bins": table.energy_bins,
        "smoothing_method": np.asarray(table.smoothing_method),
        "method": np.asarray(table.method),
        "reference": np.asarray(table.reference),
        "param_names": np.asarray(table.param_names, dtype=str).reshape(-1),
        "floor": np.asarray(table.floor),
        "interactions": np.asarray(list(table.components), dtype=str).reshape(-1),
        **_arrays(table),
    }
    if table.kappa_edges is not None:
        arrays["kappa_bins"] = table.kappa_bins
    if table.response is not None:
        arrays["response_degree"] = np.asarray(table.response.degree)
        arrays["response_coefficients"] = table.response.coefficients
        arrays["response_tables"] = np.asarray(
            ["all", *[k for k, c in table.components.items() if c.response is not None]], dtype=str
        )
    if table.acceptance is not None:
        arrays["acceptance_degree"] = np.asarray(table.acceptance.l_max)
        arrays["acceptance_coefficients"] = table.acceptance.coefficients
    if table.sense != "predicted":
        arrays["sense"] = np.asarray(table.sense)
        if table.flip_calibration is not None:
            arrays["flip_calibration"] = table.flip_calibration
    if table.model:
        arrays["model"] = np.asarray(table.model)
    if table.burst_temperature_events or table.burst_temperature != 1.0:
        arrays["burst_temperature"] = np.asarray(float(table.burst_temperature))
        arrays["burst_temperature_events"] = np.asarray(int(table.burst_temperature_events))
    for name, comp in table.components.items():
        arrays.update(_arrays(comp, f"_{name}"))

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def _str(data: Mapping[str, Any], key: str, default: str) -> str:
    if key not in data:
        return default
    v = np.asarray(data[key])
    item = v.item() if v.ndim == 0 else v
    return item.decode() if isinstance(item, bytes) else str(item)


def load_table(path: str | os.PathLike[str]) -> LikelihoodTable:
    """Read a table file: edkeras's own or the earlier system's ``cosine_energy_pdf.npz``.

    The earlier files hold raw histograms: their rows are renormalised and floored here
    (method recorded as ``"legacy histogram"``, reference ``"neutrino"``).

    Raises:
        TableError: a missing file or key, or arrays that do not fit together (the message
            names the file and key).
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise TableError(f"{where}: no such likelihood table file")
    try:  # the file is opened here: np.load leaks its handle when the archive is cut short
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except ARCHIVE_ERRORS as e:
        raise TableError(f"{where}: not a readable likelihood table .npz ({type(e).__name__}: {e})") from None
    for key in ("pdf_2d", "cosine_bin_edges", "energy_bins"):
        if key not in data:
            raise TableError(f"{where}: key '{key}' is missing; found {sorted(data)}")
    edges = np.asarray(data["cosine_bin_edges"], dtype=np.float64)
    pdf = np.asarray(data["pdf_2d"], dtype=np.float64)
    eb = np.asarray(data["energy_bins"], dtype=np.float64)
    if (
        edges.ndim != 1
        or np.any(np.diff(edges) <= 0)
        or abs(edges[0] + 1) > 1e-6
        or abs(edges[-1] - 1) > 1e-6
    ):
        raise TableError(f"{where}: key 'cosine_bin_edges' must ascend from -1 to 1; received {edges[:3]}…")
    edges[0], edges[-1] = -1.0, 1.0
    if eb.ndim != 2 or eb.shape[1] != 2 or np.any(eb[1:, 0] != eb[:-1, 1]):
        raise TableError(
            f"{where}: key 'energy_bins' must be contiguous (n_E, 2) [lo, hi) rows; received {eb.shape}"
        )
    if pdf.shape != (len(eb), len(edges) - 1):
        raise TableError(
            f"{where}: key 'pdf_2d' must have shape (n_E={len(eb)}, n_cos={len(edges) - 1}); received {pdf.shape}"
        )
    if not np.all(np.isfinite(pdf)) or np.any(pdf < 0):
        raise TableError(f"{where}: key 'pdf_2d' has negative or non-finite values")
    energy_edges = np.concatenate([eb[:, 0], eb[-1:, 1]])
    legacy = "method" not in data
    floor = float(data["floor"]) if "floor" in data else FLOOR
    n_e, n_cos = pdf.shape

    def norm_rows(rows: np.ndarray) -> np.ndarray:
        s = np.sum(rows * np.diff(edges), axis=-1, keepdims=True)
        if np.any(s <= 0):
            raise TableError(f"{where}: a row of the table is empty (sums to 0)")
        rows = rows / s
        return _apply_floor(rows, floor) if legacy else rows

    names = tuple(str(x) for x in data.get("param_names", np.zeros(0, dtype=str)))

    def get(key: str, suffix: str, shape: tuple[int, ...] | None, default: Any = None) -> Any:
        k = key + suffix
        if k not in data:
            return default
        v = np.asarray(data[k])
        if shape is not None and v.shape != shape:
            raise TableError(f"{where}: key '{k}' must have shape {shape}; received {v.shape}")
        return v

    kappa_edges = None
    n_k = 0
    if "kappa_bins" in data:
        kb = np.asarray(data["kappa_bins"], dtype=np.float64)
        if kb.ndim != 2 or kb.shape[1] != 2:
            raise TableError(f"{where}: key 'kappa_bins' must have shape (n_K, 2); received {kb.shape}")
        kappa_edges = np.concatenate([kb[:, 0], kb[-1:, 1]])
        n_k = len(kb)

    response = None
    if ("response_degree" in data) != ("response_coefficients" in data):
        raise TableError(f"{where}: keys 'response_degree' and 'response_coefficients' go together; one is missing")
    if "response_degree" in data:
        deg = int(np.asarray(data["response_degree"]))
        n_mono = Response.monomials(np.zeros((1, 3)), max(deg, 0)).shape[1]
        coef = np.asarray(data["response_coefficients"], dtype=np.float64)
        if deg < 1 or coef.shape != (n_mono, 3) or not np.all(np.isfinite(coef)):
            raise TableError(
                f"{where}: key 'response_coefficients' must be finite with shape ({n_mono}, 3) for "
                f"response_degree {deg} >= 1; received {coef.shape}"
            )
        response = Response(degree=deg, coefficients=coef)
    acceptance = None
    if ("acceptance_degree" in data) != ("acceptance_coefficients" in data):
        raise TableError(
            f"{where}: keys 'acceptance_degree' and 'acceptance_coefficients' go together; one is missing"
        )
    if "acceptance_degree" in data:
        l_max = int(np.asarray(data["acceptance_degree"]))
        a = np.asarray(data["acceptance_coefficients"], dtype=np.float64)
        n_coef = (max(l_max, 0) + 1) ** 2 - 1
        if l_max < 1 or a.shape != (n_coef,) or not np.all(np.isfinite(a)):
            raise TableError(
                f"{where}: key 'acceptance_coefficients' must be finite with shape ({n_coef},) for "
                f"acceptance_degree {l_max} >= 1; received {a.shape}"
            )
        acceptance = Acceptance(l_max=l_max, coefficients=a)
    mapped_tables = [str(x) for x in data.get("response_tables", np.asarray(["all", "es", "cc"]))]
    sense = _str(data, "sense", "predicted")
    if sense not in ("predicted", "oriented"):
        raise TableError(f"{where}: key 'sense' is {sense!r}; expected 'predicted' or 'oriented'")
    calibration = None
    if "flip_calibration" in data:
        calibration = np.asarray(data["flip_calibration"], dtype=np.float64)
        if (
            calibration.ndim != 2
            or calibration.shape[0] != 2
            or not np.all(np.isfinite(calibration))
            or np.any(np.diff(calibration[0]) <= 0)
        ):
            raise TableError(
                f"{where}: key 'flip_calibration' must be finite (2, K) knots with ascending first row; "
                f"received shape {calibration.shape}"
            )

    temperature, temperature_events = 1.0, 0
    if ("burst_temperature" in data) != ("burst_temperature_events" in data):
        raise TableError(f"{where}: keys 'burst_temperature' and 'burst_temperature_events' go together; one is missing")
    if "burst_temperature" in data:
        temperature = float(np.asarray(data["burst_temperature"]))
        temperature_events = int(np.asarray(data["burst_temperature_events"]))
        if not (math.isfinite(temperature) and temperature > 0.0) or temperature_events < 0:
            raise TableError(f"{where}: key 'burst_temperature' must be a number > 0 with 'burst_temperature_events' "
                             f">= 0; received {temperature} for {temperature_events} events")

    def build(suffix: str, label: str) -> LikelihoodTable:
        p2 = get("pdf_2d", suffix, (n_e, n_cos))
        if p2 is None:
            raise TableError(f"{where}: key 'pdf_2d{suffix}' is missing (listed in 'interactions')")
        p3 = get("pdf_3d", suffix, (n_e, n_k, n_cos)) if kappa_edges is not None else None
        if kappa_edges is not None and p3 is None:
            raise TableError(f"{where}: key 'pdf_3d{suffix}' is missing but 'kappa_bins' is present")
        counts = get("n_events_per_bin", suffix, None, np.zeros(n_e, dtype=np.int64))
        return LikelihoodTable(
            cosine_bin_edges=edges,
            energy_edges=energy_edges,
            pdf_2d=norm_rows(np.asarray(p2, dtype=np.float64)),
            n_events_per_bin=np.asarray(counts).reshape(-1).astype(np.int64),
            params=get("params", suffix, None, np.zeros((n_e, 0))),
            param_names=names,
            method="legacy histogram" if legacy else _str(data, "method", "histogram"),
            reference=_str(data, "reference", "neutrino"),
            smoothing_method=_str(data, "smoothing_method", ""),
            floor=floor,
            pooled_bins=get("pooled_bins", suffix, None, np.zeros(n_e, dtype=bool)),
            kappa_edges=kappa_edges,
            pdf_3d=None if p3 is None else norm_rows(np.asarray(p3, dtype=np.float64)),
            n_events_per_bin_3d=get("n_events_per_bin_3d", suffix, None),
            params_3d=get("params_3d", suffix, None),
            interaction=label,
            response=response if label in mapped_tables else None,
            acceptance=acceptance,
            sense=sense,
            flip_calibration=calibration,
            model=_str(data, "model", ""),
            burst_temperature=temperature,
            burst_temperature_events=temperature_events,
        )

    main = build("", "all")
    comps = {}
    for name in (str(x) for x in data.get("interactions", np.zeros(0, dtype=str))):
        if name not in COMPONENTS:
            raise TableError(f"{where}: key 'interactions' lists {name!r}; expected 'es' or 'cc'")
        comps[name] = build(f"_{name}", name)
    return replace(main, components=comps)
