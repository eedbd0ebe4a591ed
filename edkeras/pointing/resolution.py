"""Pointing resolution: the angle holding 68 % of simulated bursts around the true supernova direction.

Bursts are drawn from a sample simulated at a few fixed supernova directions (``resample``,
exact in distribution), simulated fresh (``direct``), or drawn from any sample and rotated
to random directions (``rotate``: valid only where reconstruction errors do not depend on
the orientation in the detector). Calibrated confidence-region thresholds come from the
same simulated bursts (:func:`region_thresholds`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edkeras.core.errors import PointingError
from edkeras.core.sphere import random_directions, rotate_to
from edkeras.events.eventfile import EventBatch
from edkeras.events.sim import SimConfig, simulate
from edkeras.pointing.burst import CALIBRATED, WILKS_2DOF, BurstFit, delta_log_likelihood, fit_burst
from edkeras.pointing.likelihood import classification_weights
from edkeras.pointing.tables import LikelihoodTable
from edkeras.reco.metrics import bootstrap_ci, containment_angle
from edkeras.reco.predictions import Predictions

__all__ = ['BURST_SAMPLING', 'BurstPlan', 'ResolutionResult', 'burst_temperature', 'direction_groups', 'flips_for', 'plan_bursts', 'pointing_resolution', 'region_thresholds', 'resolution_vs_events', 'simulator_generator']


@dataclass
class BurstPlan:
    """Which events make each burst, and where each burst's supernova is.

    Sharing a plan lets several prediction sets of the same events (true directions, the
    classical baseline, networks) be pointed on the same bursts.

    Attributes:
        indices: (n_bursts, n_events) event indices into the large sample.
        directions: (n_bursts, 3) supernova directions (for ``rotate``; for ``resample`` the
            direction the burst's events were simulated with).
        spins: (n_bursts,) rotation angles about the supernova direction (``rotate``).
    """

    indices: np.ndarray
    directions: np.ndarray
    spins: np.ndarray


def direction_groups(nu_directions: Any, decimals: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Group events by their (fixed) supernova direction.

    Args:
        nu_directions: (N, 3) neutrino directions.
        decimals: rounding used to decide that two directions are the same.

    Returns:
        (labels (N,), directions (K, 3)) — the K distinct directions.
    """
    nu = np.asarray(nu_directions, dtype=np.float64)
    if nu.ndim != 2 or nu.shape[1] != 3 or not np.all(np.isfinite(nu)):
        raise PointingError("direction groups need finite nu_directions of shape (N, 3)")
    dirs, labels = np.unique(np.round(nu, decimals), axis=0, return_inverse=True)
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    return labels.ravel(), dirs


def plan_bursts(
    n_sample: int,
    n_events: int | Mapping[int, int],
    n_bursts: int,
    rng: np.random.Generator,
    interaction: Any = None,
    groups: Any = None,
    group_directions: Any = None,
) -> BurstPlan:
    """Draw the events and supernova directions of ``n_bursts`` bursts.

    Args:
        n_sample: size of the large predicted sample.
        n_events: events per burst, or ``{1: n_ES, 0: n_CC}`` drawn from those classes
            (needs ``interaction``).
        n_bursts: number of bursts.
        rng: numpy Generator.
        interaction: (n_sample,) interaction codes.
        groups: (n_sample,) direction-group labels (:func:`direction_groups`): each burst
            takes one group (chosen uniformly) and draws only from it (``resample``).
        group_directions: (K, 3) the groups' directions (required with ``groups``).

    Returns:
        A :class:`BurstPlan`. Events are drawn without replacement within a burst when the
        pool is large enough, else with replacement.
    """
    counts: list[tuple[int | None, int]]
    if isinstance(n_events, Mapping):
        if interaction is None:
            raise PointingError(
                "n_events per interaction needs the sample's interaction codes; received none"
            )
        counts = [(int(code), int(k)) for code, k in n_events.items()]
    else:
        counts = [(None, int(n_events))]
    it = None if interaction is None else np.asarray(interaction).ravel()
    labels = np.zeros(n_sample, dtype=np.int64) if groups is None else np.asarray(groups).ravel()
    n_groups = int(labels.max()) + 1
    pools: dict[tuple[int, int | None], np.ndarray] = {}
    for g in range(n_groups):
        for code, k in counts:
            sel = labels == g if code is None else (labels == g) & (it == code)
            pools[g, code] = np.flatnonzero(sel)
            if k > 0 and len(pools[g, code]) == 0:
                raise PointingError(
                    f"no event with interaction {code} in direction group {g} of the sample to draw {k} from"
                )
    chosen = rng.integers(0, n_groups, n_bursts)
    idx = np.empty((n_bursts, sum(k for _, k in counts)), dtype=np.int64)
    for b in range(n_bursts):
        parts = []
        for code, k in counts:
            if k > 0:
                pool = pools[int(chosen[b]), code]
                parts.append(rng.choice(pool, size=k, replace=k > len(pool)))
        idx[b] = np.concatenate(parts)
    directions = random_directions(n_bursts, rng)
    if groups is not None:
        if group_directions is None:
            raise PointingError("plan_bursts: groups need group_directions")
        directions = np.asarray(group_directions, dtype=np.float64)[chosen]
    return BurstPlan(indices=idx, directions=directions, spins=rng.uniform(0.0, 2.0 * np.pi, n_bursts))


@dataclass
class ResolutionResult:
    """Pointing resolution from many simulated bursts.

    Attributes:
        n_events: events per burst.
        n_bursts: bursts fitted.
        errors_deg: (n_bursts,) angle between fitted and true supernova direction.
        theta68: angle holding 68 % of the bursts (the pointing resolution), degrees.
        theta68_ci: its bootstrap 68 % interval.
        coverage: {CL: share of bursts whose CL region holds the true direction}.
        region_radius_median: {CL: median equal-area region radius}, degrees.
        method: "resample", "rotate" or "direct".
        seconds_per_fit: mean fit time.
        delta_at_truth: (n_bursts,) ln L_max − ln L at the true direction (what
            :func:`region_thresholds` calibrates on).
        approximation: how the regions were made (Wilks or calibrated thresholds).
        secondary_delta: (n_bursts,) ln L_max − ln L at the burst's second local maximum
            ≥ 60° away (:attr:`BurstFit.secondary_delta`), NaN where it has none.
    """

    n_events: int
    n_bursts: int
    errors_deg: np.ndarray
    theta68: float
    theta68_ci: tuple[float, float]
    coverage: dict[float, float]
    region_radius_median: dict[float, float]
    method: str
    seconds_per_fit: float
    delta_at_truth: np.ndarray = field(default_factory=lambda: np.zeros(0))
    approximation: str = WILKS_2DOF
    secondary_delta: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def competing_share(self, delta: float) -> float:
        """Share of bursts with a second local maximum ≥ 60° away at most ``delta`` below the best."""
        return float(np.mean(np.nan_to_num(self.secondary_delta, nan=np.inf) <= delta))

    def coverage_with(self, thresholds: Mapping[float, float]) -> dict[float, float]:
        """{CL: share of these bursts whose region with ΔlnL ``thresholds[CL]`` holds the truth}.

        The same count :meth:`BurstFit.contains` makes, without refitting: for thresholds from
        :func:`region_thresholds` of *other* bursts, this is their held-out coverage.
        """
        return {float(cl): float(np.mean(self.delta_at_truth <= v)) for cl, v in thresholds.items()}

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "approximation": self.approximation,
            "n_events": self.n_events,
            "n_bursts": self.n_bursts,
            "theta68_deg": self.theta68,
            "theta68_ci": list(self.theta68_ci),
            "coverage": {f"{k:g}": v for k, v in self.coverage.items()},
            "region_radius_median_deg": {f"{k:g}": v for k, v in self.region_radius_median.items()},
            "method": self.method,
            "seconds_per_fit": self.seconds_per_fit,
        }


def _burst_inputs(pred: Any, idx: Any = None) -> dict[str, Any]:
    sel = slice(None) if idx is None else idx

    def get(name: str) -> np.ndarray | None:
        v = getattr(pred, name, None)
        return None if v is None else np.asarray(v)[sel]

    out = {
        "directions": np.asarray(pred.predictions)[sel],
        "energies": get("energies"),
        "kappa": get("kappa_equivalent") if hasattr(pred, "kappa_equivalent") else get("kappa"),  # κ, or 2/σ²
        "interaction": get("interaction"),
        "es_probability": get("es_probability"),
        "flip_probability": get("flip_probability"),
        "nu": get("nu_directions"),
    }
    if out["energies"] is None:
        raise PointingError("burst: the predictions have no 'energies' (reconstructed energy)")
    return out


def _fit_one(
    inputs: dict[str, Any],
    tables: LikelihoodTable | Mapping[str, LikelihoodTable],
    classification: str,
    es_fraction: float | None,
    use_kappa: bool,
    fit_options: Mapping[str, Any],
) -> BurstFit:
    weights = None
    if not isinstance(tables, LikelihoodTable):
        weights = classification_weights(
            len(inputs["directions"]),
            mode=classification,
            es_fraction=es_fraction,
            # "mixed" is the expected fractions alone even where the events carry a classifier's output
            es_probability=inputs["es_probability"] if classification == "classifier" else None,
            interaction=inputs["interaction"],
        )
    return fit_burst(
        inputs["directions"],
        inputs["energies"],
        tables,
        kappa=inputs["kappa"] if use_kappa else None,
        weights=weights,
        flip_probability=flips_for(tables, inputs["flip_probability"]),
        **fit_options,
    )


def flips_for(tables: LikelihoodTable | Mapping[str, LikelihoodTable], flips: Any) -> Any:
    """The events' flip probabilities where the tables use them (sense "oriented"), else None."""
    first = tables if isinstance(tables, LikelihoodTable) else next(iter(tables.values()))
    return flips if first.sense == "oriented" else None


BURST_SAMPLING = ("resample", "rotate", "direct")
"""Ways :func:`pointing_resolution` makes bursts."""


def pointing_resolution(
    predictions: Any,
    tables: LikelihoodTable | Mapping[str, LikelihoodTable],
    n_events: int | Mapping[int, int],
    n_bursts: int,
    rng: np.random.Generator,
    method: str = "resample",
    *,
    generator: Callable[[np.ndarray, Any, np.random.Generator], Any] | None = None,
    directions: Any = None,
    plan: BurstPlan | None = None,
    classification: str = "mixed",
    es_fraction: float | None = None,
    use_kappa: bool = True,
    levels: Sequence[float] = (0.68, 0.90),
    progress: bool = False,
    **fit_options: Any,
) -> ResolutionResult:
    """Pointing resolution: fit many bursts and take the angle holding 68 % of them.

    Three ways to make the bursts:

    * ``"resample"`` (default, fast and exact in distribution): ``predictions`` holds events
      simulated (and reconstructed) with the supernova at one or a few fixed directions;
      each burst takes one of those directions and draws ``n_events`` of its events. The
      bursts are then what fresh simulation at those directions gives (re-used events
      correlate bursts a little: keep the sample several times larger than a burst).
      Average over orientations by simulating at several directions.
    * ``"rotate"``: draws from a large sample and rotates every event by the rotation
      taking its neutrino direction to a random supernova direction (:func:`rotate_to`).
      This keeps each event's angle to the neutrino but **assumes that the reconstruction
      errors do not depend on the orientation in the detector**. It agrees with fresh
      bursts for such (isotropic) error models (``tests/test_pointing.py``); for the
      classical reconstruction of simulated events it does not (coherent,
      orientation-dependent biases; the slow test there), so do not use it for detector
      predictions.
    * ``"direct"``: each burst is made fresh by ``generator(direction, n_events, rng)``
      (e.g. :func:`simulator_generator`), which returns a Predictions-like object; the
      directions are drawn isotropically, or uniformly from ``directions``.

    Args:
        predictions: the large predicted sample (``resample``, ``rotate``).
        tables: a table or ``{"es": …, "cc": …}``.
        n_events: events per burst, or ``{1: n_ES, 0: n_CC}``.
        n_bursts: number of bursts.
        rng: numpy Generator.
        method: one of :data:`BURST_SAMPLING`.
        generator: burst maker for ``direct``.
        directions: (K, 3) supernova directions for ``direct`` (default isotropic).
        plan: a :class:`BurstPlan` to reuse (``resample``/``rotate``); drawn when None.
        classification: ``"mixed"`` (expected fractions), ``"classifier"`` (with the events'
            ``es_probability``) or ``"perfect"`` (with two tables).
        es_fraction: expected ES share (mixed, classifier); defaults to the burst's true share.
        use_kappa: pass κ to tables with κ bins.
        levels: confidence levels whose coverage is counted.
        progress: show a tqdm bar.
        **fit_options: passed to :func:`fit_burst` (e.g. ``n_lattice``).

    Returns:
        A :class:`ResolutionResult`.
    """

    if method not in BURST_SAMPLING:
        raise PointingError(f"pointing_resolution method must be one of {list(BURST_SAMPLING)}; received {method!r}")
    if method == "direct" and generator is None:
        raise PointingError("method 'direct' needs a generator(direction, n_events, rng)")
    if method in ("resample", "rotate"):
        if getattr(predictions, "nu_directions", None) is None:
            raise PointingError(f"method {method!r} needs the sample's 'nu_directions'")
        if plan is None:
            groups = group_dirs = None
            if method == "resample":
                groups, group_dirs = direction_groups(predictions.nu_directions)
                smallest = int(np.bincount(groups).min())
                per_burst = sum(n_events.values()) if isinstance(n_events, Mapping) else int(n_events)
                if smallest < 2 * per_burst:
                    raise PointingError(
                        f"method 'resample' needs events simulated at fixed supernova directions, at least "
                        f"2 × {per_burst} per direction; the sample has {len(group_dirs)} distinct directions, "
                        f"the smallest with {smallest} events (simulate at a few fixed directions, or use 'direct')"
                    )
            plan = plan_bursts(
                len(predictions.predictions),
                n_events,
                n_bursts,
                rng,
                getattr(predictions, "interaction", None),
                groups=groups,
                group_directions=group_dirs,
            )
        n_bursts = len(plan.indices)
    fixed = None if directions is None else np.asarray(directions, dtype=np.float64).reshape(-1, 3)
    if fit_options.get("region_thresholds"):
        levels = tuple(float(cl) for cl in fit_options["region_thresholds"])
    errors = np.empty(n_bursts)
    delta = np.empty(n_bursts)
    second = np.full(n_bursts, np.nan)
    covered = {float(cl): np.zeros(n_bursts, dtype=bool) for cl in levels}
    radii = {float(cl): np.empty(n_bursts) for cl in levels}
    seconds = 0.0
    it: Any = range(n_bursts)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"bursts ({method})", unit="burst")
    n_per = 0
    for b in it:
        if method == "rotate":
            truth = plan.directions[b]
            inputs = _burst_inputs(predictions, plan.indices[b])
            inputs["directions"] = rotate_to(inputs["directions"], inputs["nu"], truth, plan.spins[b])
        elif method == "resample":
            inputs = _burst_inputs(predictions, plan.indices[b])
            nu = inputs["nu"] / np.linalg.norm(inputs["nu"], axis=1, keepdims=True)
            truth = nu[0]
            if np.max(np.linalg.norm(nu - truth, axis=1)) > 1e-4:
                raise PointingError(
                    f"resample: burst {b} mixes events of different supernova directions; "
                    "make the plan with direction groups (plan_bursts(..., groups=...))"
                )
        else:
            if fixed is None:
                truth = random_directions(1, rng)[0]
            else:
                truth = fixed[rng.integers(0, len(fixed))]
                truth = truth / np.linalg.norm(truth)
            inputs = _burst_inputs(generator(truth, n_events, rng))
        n_per = len(inputs["directions"])
        frac = es_fraction
        if frac is None and not isinstance(tables, LikelihoodTable) and classification in ("mixed", "classifier"):
            if inputs["interaction"] is None:
                raise PointingError(f"{classification} classification needs es_fraction or the events' interaction codes")
            frac = float(np.clip(np.mean(inputs["interaction"] == 1), 1e-3, 1 - 1e-3))
        fit = _fit_one(inputs, tables, classification, frac, use_kappa, {"levels": levels, **fit_options})
        seconds += fit.seconds
        errors[b] = fit.angle_to_deg(truth)
        delta[b] = fit.delta_at(truth)
        if fit.secondary_delta is not None:
            second[b] = fit.secondary_delta
        for cl in covered:
            covered[cl][b] = fit.contains(truth, cl)
            radii[cl][b] = fit.region_radius_deg[cl]
    theta68 = containment_angle(errors, 0.68)
    ci = bootstrap_ci(errors, lambda x: containment_angle(x, 0.68), n_boot=500, cl=0.68, seed=0)
    return ResolutionResult(
        n_events=n_per,
        n_bursts=n_bursts,
        errors_deg=errors,
        theta68=float(theta68),
        theta68_ci=(float(ci[0]), float(ci[1])),
        coverage={cl: float(v.mean()) for cl, v in covered.items()},
        region_radius_median={cl: float(np.median(v)) for cl, v in radii.items()},
        method=method,
        seconds_per_fit=seconds / max(n_bursts, 1),
        delta_at_truth=delta,
        approximation=CALIBRATED if fit_options.get("region_thresholds") else WILKS_2DOF,
        secondary_delta=second,
    )


def region_thresholds(
    calibration: ResolutionResult | Sequence[ResolutionResult] | Any, levels: Sequence[float] = (0.68, 0.90)
) -> dict[float, float]:
    """ΔlnL thresholds that make regions hold the truth at their level, from calibration bursts.

    Wilks' −ln(1 − CL) assumes the likelihood is the true density of the events. The tables
    are averages over all supernova directions and energies, and what is left of a
    reconstruction's detector-frame bias after the response map is not in them, so for
    reconstructions the Wilks regions are too small (the pointing notebook measured 68 %
    regions holding the truth in 0–20 % of bursts). Taking the CL quantile of ln L_max − ln L
    at the true direction over simulated bursts makes regions that hold the truth in a
    share CL of such bursts — on average over the directions simulated, so calibrate on
    supernova directions spread over the sky and **not** on the bursts whose coverage is
    then quoted. The thresholds hold for bursts like the calibration ones (the same event
    counts and classification): where a leftover bias dominates, ΔlnL at the truth grows
    with the number of events.

    Args:
        calibration: a :class:`ResolutionResult` (or several, pooled) of calibration bursts,
            or an array of ln L_max − ln L at the truth.
        levels: confidence levels.

    Returns:
        {CL: ΔlnL threshold} for :func:`fit_burst` / :func:`pointing_resolution`
        (``region_thresholds=``) and ``edkeras point --region-threshold``.

    Raises:
        PointingError: fewer than 10 calibration bursts, or a level outside (0, 1).
    """
    if isinstance(calibration, ResolutionResult):
        values = calibration.delta_at_truth
    elif isinstance(calibration, Sequence) and calibration and isinstance(calibration[0], ResolutionResult):
        values = np.concatenate([r.delta_at_truth for r in calibration])
    else:
        values = np.asarray(calibration, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if len(values) < 10:
        raise PointingError(f"region_thresholds needs at least 10 calibration bursts; received {len(values)}")
    out = {}
    for cl in levels:
        delta_log_likelihood(cl)  # checks the level
        # conservative: never below Wilks' value (the quantile of a few dozen bursts is noisy)
        out[float(cl)] = float(max(np.quantile(np.maximum(values, 0.0), cl), delta_log_likelihood(cl)))
    return out


def burst_temperature(
    delta_at_truth: Any, levels: Sequence[float] = (0.68, 0.90), grid: Any = None
) -> float:
    """The temperature T that makes tempered burst maps p ∝ exp(−ΔlnL / T) hold the truth at their levels.

    For a likelihood peak close to a 2-D Gaussian, the credible region of level CL of the
    tempered map is {ΔlnL ≤ −T ln(1 − CL)}, so it holds the truth in the share of calibration
    bursts whose ΔlnL at the truth is below that. T is chosen on a grid to bring those shares
    closest to the levels (least squares over ``levels``), never below 1: tempering widens,
    it never sharpens the likelihood. As with :func:`region_thresholds`, calibrate on bursts
    spread over the sky and like the ones to be mapped (event counts, classification), and
    quote coverage on other bursts.

    Args:
        delta_at_truth: ln L_max − ln L at the true direction, one per calibration burst.
        levels: the credible levels to match.
        grid: candidate temperatures (default 1 to 30 in steps of 1 %).

    Raises:
        PointingError: fewer than 10 finite values.
    """
    d = np.asarray(delta_at_truth, dtype=np.float64).ravel()
    d = np.maximum(d[np.isfinite(d)], 0.0)
    if len(d) < 10:
        raise PointingError(f"burst_temperature needs at least 10 calibration bursts; received {len(d)}")
    temps = np.exp(np.arange(0.0, np.log(30.0), 0.01)) if grid is None else np.asarray(grid, dtype=np.float64)
    cls = np.asarray([float(cl) for cl in levels])
    for cl in cls:
        delta_log_likelihood(cl)  # checks the level
    cover = np.mean(d[None, None, :] <= (-temps[:, None, None] * np.log1p(-cls)[None, :, None]), axis=2)
    miss = np.sum((cover - cls[None, :]) ** 2, axis=1)
    return float(max(temps[int(np.argmin(miss))], 1.0))


def simulator_generator(
    predict: Callable[[Any], Any] | None = None,
    config: Any = None,
) -> Callable[[np.ndarray, int | Mapping[int, int], np.random.Generator], Any]:
    """A burst maker for ``pointing_resolution(method="direct")`` built on :mod:`edkeras.events.sim`.

    Each call simulates a fresh burst with the supernova at ``direction`` and reconstructs
    it with ``predict``.

    Args:
        predict: callable(EventBatch) → (N, 3) directions, or (N, 4) with κ in column 3
            (a wrapped Keras model, the classical baseline …); None uses the true electron
            directions (the statistical floor).
        config: a :class:`edkeras.events.sim.SimConfig` (its ``direction`` is replaced per burst;
            default: ``SimConfig(channel="mix", es_fraction=0.1)``).

    Returns:
        generator(direction, n_events, rng) → Predictions, where ``n_events`` is a count
        (the config's channel mix) or ``{1: n_ES, 0: n_CC}``.
    """
    from dataclasses import replace as dc_replace

    def make(direction: np.ndarray, n_events: int | Mapping[int, int], rng: np.random.Generator) -> Any:

        base = config if config is not None else SimConfig(channel="mix", es_fraction=0.1)
        d = tuple(float(x) for x in np.asarray(direction, dtype=np.float64).ravel())
        if isinstance(n_events, Mapping):
            parts = [
                simulate(
                    int(k),
                    seed=int(rng.integers(2**31)),
                    config=dc_replace(base, channel="es" if code == 1 else "cc", direction=d),
                )
                for code, k in n_events.items()
                if k > 0
            ]
            batch = EventBatch.concatenate(parts)
        else:
            batch = simulate(
                int(n_events), seed=int(rng.integers(2**31)), config=dc_replace(base, direction=d)
            )
        out = np.asarray(batch.direction if predict is None else predict(batch), dtype=np.float64)
        energy = np.where(np.isfinite(batch.reco_energy), batch.reco_energy, batch.energy)
        return Predictions(
            predictions=out[:, :3],
            kappa=out[:, 3] if out.shape[1] == 4 else None,
            energies=energy.astype(np.float64),
            true_directions=batch.direction.astype(np.float64),
            interaction=batch.interaction,
            nu_directions=batch.nu_direction.astype(np.float64),
        )

    return make


def resolution_vs_events(
    predictions: Any,
    tables: LikelihoodTable | Mapping[str, LikelihoodTable],
    n_events_list: Sequence[int],
    n_bursts: int,
    rng: np.random.Generator,
    **options: Any,
) -> list[ResolutionResult]:
    """:func:`pointing_resolution` for each burst size in ``n_events_list`` (expect θ68 ∝ 1/√N)."""
    return [pointing_resolution(predictions, tables, n, n_bursts, rng, **options) for n in n_events_list]
