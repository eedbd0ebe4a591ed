"""Check an event file for the problems that quietly ruin a direction network.

Method notes: ``docs/methods.md``, section ``edkeras.events.doctor``.

Example:
    >>> report = check_event_file("data/events.h5")
    >>> print(format_report(report))
    >>> report.status
    'ok'
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.detector import PLANES, project_direction
from edkeras.core.errors import InputError
from edkeras.events.eventfile import EventFileError, open_events

__all__ = [
    "APA_LENGTH_CM",
    "AXIS_MARGIN_DEG",
    "EMPTY_FAIL_FRACTION",
    "EMPTY_WARN_FRACTION",
    "FAIL_AGREEMENT",
    "FAIL_DROP",
    "MIN_ABS_CORRELATION",
    "MIN_EVENTS",
    "MIN_PIXELS",
    "SIGNIFICANCE",
    "UNIT_TOLERANCE",
    "WARN_DROP",
    "Check",
    "Report",
    "check_event_file",
    "format_report",
    "principal_axis_slope_sign",
    "vertex_regions",
]

UNIT_TOLERANCE = 1e-3
"""Largest accepted | |d| − 1 | of a known direction."""
EMPTY_WARN_FRACTION = 0.01
"""Share of empty images on a plane above which the check warns."""
EMPTY_FAIL_FRACTION = 0.5
"""Share of empty images on a plane above which the check fails."""
MIN_PIXELS = 3
"""Charged pixels an image needs for its principal axis to be considered (1–2 define none)."""
MIN_ABS_CORRELATION = 0.1
"""Smallest |charge-weighted row–column correlation| for the image slope sign to count."""
AXIS_MARGIN_DEG = 10.0
"""Projected true directions this close (degrees) to an image axis have no reliable slope sign."""
MIN_EVENTS = 25
"""Compared events a group (plane overall, or region) needs before it is judged."""
FAIL_AGREEMENT = 0.6
"""Agreement below this fails (a flipped group sits near or below one half)."""
FAIL_DROP = 0.25
"""A region this far below the other regions' agreement fails (if significant)."""
WARN_DROP = 0.10
"""A region this far below the other regions' agreement warns (if significant)."""
SIGNIFICANCE = 3.0
"""Standard errors a drop must exceed to count."""
APA_LENGTH_CM = 231.6
"""Length of one APA along z (cm): width of the z bins of the vertex regions."""

_STATUS_ORDER = {"ok": 0, "warn": 1, "fail": 2}

# Per-event, per-plane orientation codes.
_AGREE, _DISAGREE, _FEW_PIXELS, _NO_AXIS, _TRUTH_ON_AXIS, _NO_TRUTH = 1, 0, -1, -2, -3, -4


@dataclass
class Check:
    """One check of the doctor.

    Args:
        name: short identifier (``"pixels_finite"``, ``"orientation_U"``, …).
        status: ``"ok"``, ``"warn"`` or ``"fail"``.
        message: one line for a person.
        numbers: the figures behind it (JSON-serialisable).
    """

    name: str
    status: str
    message: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Everything ``edkeras doctor`` found in one file.

    Args:
        path: the event file.
        n_events: events in it (0 if it could not be opened).
        checks: the checks, in the order they ran.
    """

    path: str
    n_events: int
    checks: list[Check] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The worst status of any check (``"ok"`` for no checks)."""
        return max((c.status for c in self.checks), key=_STATUS_ORDER.__getitem__, default="ok")

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == "fail"]

    def check(self, name: str) -> Check:
        """The check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; checks: {[c.name for c in self.checks]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN and inf become ``None``)."""
        return _jsonable({
            "path": self.path,
            "n_events": self.n_events,
            "status": self.status,
            "checks": [
                {"name": c.name, "status": c.status, "message": c.message, "numbers": c.numbers}
                for c in self.checks
            ],
        })

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.integer, bool, np.bool_)):
        return x.item() if isinstance(x, np.generic) else x
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None
    return x


# ----------------------------------------------------------------------------- physics helpers


def principal_axis_slope_sign(
    images: np.ndarray, drift_per_tick: float, pitch: float, min_pixels: int = MIN_PIXELS,
    min_abs_correlation: float = MIN_ABS_CORRELATION,
) -> tuple[np.ndarray, np.ndarray]:
    """Slope sign of each image's charge-weighted principal axis, rows against columns in cm.

    The principal (largest-variance) axis of a 2-D charge distribution has slope sign equal
    to the sign of the charge-weighted covariance of its coordinates, so no eigenvectors are
    needed. Non-finite and negative pixels count as no charge.

    Args:
        images: (N, T, C) charge images (rows = ticks, columns = wires).
        drift_per_tick: cm per row.
        pitch: cm per column.
        min_pixels: fewer charged pixels → no axis.
        min_abs_correlation: smaller |row–column correlation| → no axis.

    Returns:
        ``(sign, code)``: ``sign`` (N,) in {−1, 0, +1} (0 where undefined); ``code`` (N,) int8:
        0 defined, −1 too few pixels, −2 no clear axis.

    Example:
        >>> img = np.zeros((1, 8, 8)); img[0, np.arange(8), np.arange(8)] = 1.0
        >>> principal_axis_slope_sign(img, 0.08, 0.48)[0]
        array([1])
    """
    img = np.asarray(images)
    n, t, c = img.shape
    w = np.where(np.isfinite(img) & (img > 0), img, 0.0).astype(np.float64)
    npix = (w > 0).reshape(n, -1).sum(axis=1)
    total = w.reshape(n, -1).sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    r = (np.arange(t) - (t - 1) / 2) * drift_per_tick
    q = (np.arange(c) - (c - 1) / 2) * pitch
    wr, wq = w.sum(axis=2), w.sum(axis=1)
    mr, mq = wr @ r / safe, wq @ q / safe
    srr = wr @ (r * r) / safe - mr * mr
    sqq = wq @ (q * q) / safe - mq * mq
    srq = np.einsum("ntc,t,c->n", w, r, q) / safe - mr * mq
    denom = np.sqrt(np.clip(srr, 0, None) * np.clip(sqq, 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denom > 0, srq / np.where(denom > 0, denom, 1.0), 0.0)
    code = np.zeros(n, dtype=np.int8)
    code[np.abs(rho) < min_abs_correlation] = -2
    code[npix < min_pixels] = -1
    sign = np.where(code == 0, np.sign(srq), 0).astype(np.int64)
    return sign, code


def _truth_slope_sign(direction: np.ndarray, plane: str, margin_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope sign of the projected truth; code 0 defined, −3 within ``margin_deg`` of an axis, −4 unknown."""
    d = np.asarray(direction, dtype=np.float64)
    known = np.isfinite(d).all(axis=1)
    proj = project_direction(np.where(known[:, None], d, 0.0), plane)
    a, b = proj[:, 0], proj[:, 1]
    norm2 = a * a + b * b
    with np.errstate(invalid="ignore", divide="ignore"):
        sin2phi = np.where(norm2 > 1e-12, 2 * a * b / np.where(norm2 > 1e-12, norm2, 1.0), 0.0)
    code = np.zeros(len(d), dtype=np.int8)
    code[np.abs(sin2phi) < math.sin(math.radians(2 * margin_deg))] = -3
    code[~known] = -4
    return np.where(code == 0, np.sign(a * b), 0).astype(np.int64), code


def vertex_regions(vertex: np.ndarray, apa_length_cm: float = APA_LENGTH_CM) -> np.ndarray:
    """Name of the vertex region of each event: ``"x<0 y>=0 z[232,463)"``, or ``"vertex unknown"``.

    Args:
        vertex: (N, 3) cm, NaN where unknown.
        apa_length_cm: width of the z bins.

    Returns:
        (N,) array of str.
    """
    v = np.asarray(vertex, dtype=np.float64)
    out = np.full(len(v), "vertex unknown", dtype=object)
    known = np.isfinite(v).all(axis=1)
    for i in np.flatnonzero(known):
        x, y, z = v[i]
        k = math.floor(z / apa_length_cm)
        out[i] = (
            f"x{'<' if x < 0 else '>='}0 y{'<' if y < 0 else '>='}0 "
            f"z[{k * apa_length_cm:.0f},{(k + 1) * apa_length_cm:.0f})"
        )
    return out.astype(str)


# ----------------------------------------------------------------------------- the checks


def _fraction(k: int, n: int) -> float:
    return k / n if n else 0.0


def _summary(values: np.ndarray) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    known = v[~np.isnan(v)]
    out: dict[str, Any] = {"known": int(known.size), "unknown": int(v.size - known.size)}
    finite = known[np.isfinite(known)]
    out["infinite"] = int(known.size - finite.size)
    out["negative"] = int((known < 0).sum())
    if finite.size:
        out.update(min=float(finite.min()), median=float(np.median(finite)), max=float(finite.max()))
    return out


def _direction_check(name: str, what: str, d: np.ndarray) -> Check:
    d = np.asarray(d, dtype=np.float64)
    finite = np.isfinite(d)
    known = finite.all(axis=1)
    partial = finite.any(axis=1) & ~known
    norms = np.linalg.norm(np.where(known[:, None], d, 0.0), axis=1)
    zero = known & (norms == 0)
    off = known & ~zero & (np.abs(norms - 1) > UNIT_TOLERANCE)
    nums = {
        "known": int(known.sum()), "unknown": int((~finite.any(axis=1)).sum()),
        "partly_nan": int(partial.sum()), "zero": int(zero.sum()), "non_unit": int(off.sum()),
        "max_norm_deviation": float(np.abs(norms[known] - 1).max()) if known.any() else 0.0,
    }
    bad = int(partial.sum() + zero.sum() + off.sum())
    if bad:
        return Check(name, "fail",
                     f"{bad} {what} unusable: {nums['zero']} zero, {nums['non_unit']} non-unit "
                     f"(| |d| - 1 | > {UNIT_TOLERANCE:g}), {nums['partly_nan']} partly NaN", nums)
    if not known.any():
        return Check(name, "ok", f"no {what} known ({nums['unknown']} unknown)", nums)
    return Check(name, "ok", f"{nums['known']} {what} known and unit, {nums['unknown']} unknown", nums)


def _judge_group(k: int, n: int, k_rest: int, n_rest: int) -> tuple[str, str]:
    """Status and reason of one orientation group against the rest of its plane."""
    if n < MIN_EVENTS:
        return "ok", f"too few events to judge (< {MIN_EVENTS})"
    a = k / n
    if a < FAIL_AGREEMENT:
        return "fail", f"agreement {a:.0%} < {FAIL_AGREEMENT:.0%}"
    if n_rest >= MIN_EVENTS:
        ar = k_rest / n_rest
        # standard errors with a +1/+2 prior so that 0 % or 100 % do not give zero width
        pa, pr = (k + 1) / (n + 2), (k_rest + 1) / (n_rest + 2)
        se = math.sqrt(pa * (1 - pa) / n + pr * (1 - pr) / n_rest)
        drop = ar - a
        if drop > FAIL_DROP and drop > SIGNIFICANCE * se:
            return "fail", f"agreement {a:.0%} is {drop:.0%} below the other regions ({ar:.0%})"
        if drop > WARN_DROP and drop > SIGNIFICANCE * se:
            return "warn", f"agreement {a:.0%} is {drop:.0%} below the other regions ({ar:.0%})"
    return "ok", ""


def _orientation_check(plane: str, codes: np.ndarray, regions: np.ndarray) -> Check:
    name = f"orientation_{plane}"
    has_truth = codes != _NO_TRUTH
    n_truth = int(has_truth.sum())
    excluded = {
        "few_pixels": int((codes == _FEW_PIXELS).sum()),
        "no_clear_axis": int((codes == _NO_AXIS).sum()),
        "truth_near_axis": int((codes == _TRUTH_ON_AXIS).sum()),
    }
    compared = (codes == _AGREE) | (codes == _DISAGREE)
    agree = codes == _AGREE
    n, k = int(compared.sum()), int(agree.sum())
    nums: dict[str, Any] = {
        "events_with_truth": n_truth, "excluded": excluded, "compared": n, "agree": k,
        "agreement": (k / n) if n else None,
        "thresholds": {
            "min_pixels": MIN_PIXELS, "min_abs_correlation": MIN_ABS_CORRELATION,
            "axis_margin_deg": AXIS_MARGIN_DEG, "min_events": MIN_EVENTS,
            "fail_agreement": FAIL_AGREEMENT, "fail_drop": FAIL_DROP, "warn_drop": WARN_DROP,
            "significance": SIGNIFICANCE,
        },
        "regions": {},
    }
    if n_truth == 0:
        return Check(name, "ok", "no truth directions: orientation not checked", nums)
    status, reason = _judge_group(k, n, 0, 0)
    problems: list[tuple[str, str, str]] = []
    if status != "ok":
        problems.append((status, "overall", reason))
    for region in sorted(set(regions[compared].tolist())):
        in_r = compared & (regions == region)
        nr, kr = int(in_r.sum()), int((agree & in_r).sum())
        st, why = _judge_group(kr, nr, k - kr, n - nr)
        nums["regions"][region] = {"compared": nr, "agree": kr, "agreement": kr / nr, "status": st,
                                   "reason": why}
        if st != "ok":
            problems.append((st, f"region {region}", why))
    worst = max((p[0] for p in problems), key=_STATUS_ORDER.__getitem__, default="ok")
    if n == 0:
        return Check(name, "ok", f"no event with a defined slope sign (of {n_truth} with truth)", nums)
    head = f"agreement {k / n:.0%} of {n} events"
    if not problems:
        msg = head + (" (too few events to judge)" if n < MIN_EVENTS else f" in {len(nums['regions'])} regions")
        return Check(name, "ok", msg, nums)
    shown = [p for p in problems if p[0] == worst]
    msg = f"{head}; " + "; ".join(f"{where}: {why}" for _, where, why in shown[:4])
    if len(shown) > 4:
        msg += f"; and {len(shown) - 4} more regions"
    return Check(name, worst, msg, nums)


def check_event_file(path: str | os.PathLike, chunk_events: int = 512, progress: bool = False) -> Report:
    """Run every check on an event file, reading it ``chunk_events`` events at a time.

    Args:
        path: the event file.
        chunk_events: events read at once (memory ≈ chunk × 3 × T × C × 4 bytes × a few).
        progress: show a tqdm progress bar.

    Returns:
        a :class:`Report`; a file that does not open as an event file gives a report with a
        failed ``structure`` check.

    Raises:
        InputError: ``path`` does not exist.
    """
    from tqdm.auto import tqdm

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such event file")
    report = Report(path=str(path), n_events=0)
    try:
        ev = open_events(path)
    except EventFileError as e:
        report.checks.append(Check("structure", "fail", str(e)))
        return report
    with ev:
        n = len(ev)
        t, c = ev.image_shape
        geo = ev.geometry
        report.n_events = n
        nums = {"events": n, "image_shape": [t, c], "drift_per_tick_cm": geo.drift_per_tick,
                "pitch_cm": dict(geo.pitch)}
        report.checks.append(Check(
            "structure", "warn" if n == 0 else "ok",
            f"{n} events, images {t} x {c} per plane (U, V, X)" + ("; the file is empty" if n == 0 else ""),
            nums,
        ))

        nonfinite = dict.fromkeys(PLANES, 0)
        negative = dict.fromkeys(PLANES, 0)
        empty = dict.fromkeys(PLANES, 0)
        first_bad: dict[str, dict[str, int]] = {"nonfinite": {}, "negative": {}}
        ids, dirs, nus, energy, reco, inter, vertex = [], [], [], [], [], [], []
        codes = {p: [] for p in PLANES}
        bar = tqdm(total=n, desc="doctor", unit="ev", disable=not progress)
        for start in range(0, n, chunk_events):
            b = ev.read(slice(start, min(n, start + chunk_events)))
            ids.append(b.event_id)
            dirs.append(b.direction)
            nus.append(b.nu_direction)
            energy.append(b.energy)
            reco.append(b.reco_energy)
            inter.append(b.interaction)
            vertex.append(b.vertex)
            for p in PLANES:
                img = b.images[p].reshape(len(b), -1)
                fin = np.isfinite(img)
                bad = ~fin.all(axis=1)
                neg = (np.where(fin, img, 0) < 0).any(axis=1)
                nonfinite[p] += int(bad.sum())
                negative[p] += int(neg.sum())
                empty[p] += int((~(np.where(fin, img, 0) > 0).any(axis=1)).sum())
                if bad.any() and p not in first_bad["nonfinite"]:
                    first_bad["nonfinite"][p] = int(b.event_id[np.flatnonzero(bad)[0]])
                if neg.any() and p not in first_bad["negative"]:
                    first_bad["negative"][p] = int(b.event_id[np.flatnonzero(neg)[0]])
                img_sign, img_code = principal_axis_slope_sign(b.images[p], geo.drift_per_tick, geo.pitch[p])
                tru_sign, tru_code = _truth_slope_sign(b.direction, p, AXIS_MARGIN_DEG)
                # precedence of the reasons to leave an event out: no truth, then the image's
                # reasons (too few pixels, no clear axis), then a truth direction near an axis
                code = np.where(img_sign == tru_sign, _AGREE, _DISAGREE).astype(np.int8)
                code = np.where(tru_code == _TRUTH_ON_AXIS, tru_code, code)
                code = np.where(img_code != 0, img_code, code)
                code = np.where(tru_code == _NO_TRUTH, tru_code, code)
                codes[p].append(code)
            bar.update(len(b))
        bar.close()

    def cat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0, *shape), dtype=dtype)

    ids_a = cat(ids, (), np.int64)
    dir_a, nu_a, vtx_a = cat(dirs, (3,), np.float32), cat(nus, (3,), np.float32), cat(vertex, (3,), np.float32)
    e_a, r_a, i_a = cat(energy, (), np.float32), cat(reco, (), np.float32), cat(inter, (), np.int8)

    def per_plane_check(name: str, counts: dict[str, int], what: str, first: dict[str, int]) -> Check:
        total = sum(counts.values())
        nums = {"events": dict(counts), "first_event_id": dict(first)}
        if total:
            where = ", ".join(f"{p} {counts[p]}" + (f" (first event {first[p]})" if p in first else "")
                              for p in PLANES if counts[p])
            return Check(name, "fail", f"images with {what}: {where}", nums)
        return Check(name, "ok", f"no image has {what}", nums)

    report.checks.append(per_plane_check("pixels_finite", nonfinite, "NaN or inf pixels", first_bad["nonfinite"]))
    report.checks.append(per_plane_check("pixels_nonnegative", negative, "negative pixels", first_bad["negative"]))

    frac = {p: _fraction(empty[p], n) for p in PLANES}
    worst = max(frac.values(), default=0.0)
    st = "fail" if worst > EMPTY_FAIL_FRACTION else "warn" if worst > EMPTY_WARN_FRACTION else "ok"
    report.checks.append(Check(
        "empty_images", st,
        "empty images: " + ", ".join(f"{p} {empty[p]} ({frac[p]:.1%})" for p in PLANES)
        + (f" (warn > {EMPTY_WARN_FRACTION:.0%}, fail > {EMPTY_FAIL_FRACTION:.0%})" if st != "ok" else ""),
        {"events": dict(empty), "fraction": frac,
         "warn_fraction": EMPTY_WARN_FRACTION, "fail_fraction": EMPTY_FAIL_FRACTION},
    ))

    report.checks.append(_direction_check("truth_direction", "truth directions", dir_a))
    report.checks.append(_direction_check("nu_direction", "neutrino directions", nu_a))

    uniq, counts = np.unique(ids_a, return_counts=True)
    dup = uniq[counts > 1]
    report.checks.append(Check(
        "event_ids", "fail" if dup.size else "ok",
        (f"{dup.size} event ids occur more than once (e.g. {', '.join(str(int(x)) for x in dup[:5])}); "
         "ids must be unique") if dup.size else f"{uniq.size} unique event ids",
        {"unique": int(uniq.size), "duplicated_ids": int(dup.size),
         "events_with_duplicated_id": int(counts[counts > 1].sum()), "examples": dup[:10].tolist()},
    ))

    te, rc = _summary(e_a), _summary(r_a)
    bad = {f"{w} {k}": v[k] for w, v in (("true", te), ("reco", rc)) for k in ("negative", "infinite") if v[k]}

    def rng_txt(s: dict[str, Any]) -> str:
        return (f"{s['min']:.3g}..{s['max']:.3g} MeV (median {s['median']:.3g}, {s['known']} known)"
                if "min" in s else f"unknown for all {s['unknown']}")

    report.checks.append(Check(
        "energy", "fail" if bad else "ok",
        f"true energy {rng_txt(te)}; reco energy {rng_txt(rc)}"
        + ("; bad values: " + ", ".join(f"{k} {v}" for k, v in bad.items()) if bad else ""),
        {"truth": te, "reco": rc},
    ))

    n_es, n_cc, n_unk = int((i_a == 1).sum()), int((i_a == 0).sum()), int((i_a == -1).sum())
    n_bad = int(len(i_a) - n_es - n_cc - n_unk)
    report.checks.append(Check(
        "interaction", "fail" if n_bad else "ok",
        f"ES {n_es}, CC {n_cc}, unknown {n_unk}" + (f", invalid {n_bad} (expected 1, 0 or -1)" if n_bad else ""),
        {"es": n_es, "cc": n_cc, "unknown": n_unk, "invalid": n_bad},
    ))

    regions = vertex_regions(vtx_a)
    for p in PLANES:
        report.checks.append(_orientation_check(p, cat(codes[p], (), np.int8), regions))
    return report


# ----------------------------------------------------------------------------- text


def format_report(report: Report) -> str:
    """The report as readable text: one line per check, and the orientation tables.

    Args:
        report: from :func:`check_event_file`.

    Returns:
        multi-line text.
    """
    n_fail = sum(c.status == "fail" for c in report.checks)
    n_warn = sum(c.status == "warn" for c in report.checks)
    verdict = {"ok": "OK", "warn": "WARNINGS", "fail": "FAILED"}[report.status]
    lines = [f"edkeras doctor: {report.path}: {report.n_events} events: {verdict}"
             f" ({n_fail} failed, {n_warn} warnings, {len(report.checks)} checks)"]
    tag = {"ok": "  ok", "warn": "WARN", "fail": "FAIL"}
    for c in report.checks:
        lines.append(f"[{tag[c.status]}] {c.name:<20} {c.message}")
        if c.name.startswith("orientation_") and c.numbers.get("events_with_truth"):
            ex = c.numbers["excluded"]
            lines.append(
                f"       excluded: {ex['few_pixels']} with < {MIN_PIXELS} charged pixels, "
                f"{ex['no_clear_axis']} without a clear axis, {ex['truth_near_axis']} with the true "
                f"direction within {AXIS_MARGIN_DEG:g} deg of an image axis"
            )
            regions = c.numbers["regions"]
            if regions:
                width = max(len(r) for r in regions)
                lines.append(f"       {'vertex region':<{width}}  compared  agreement")
                for r, v in regions.items():
                    flag = "" if v["status"] == "ok" else f"  {v['status'].upper()}: {v['reason']}"
                    lines.append(f"       {r:<{width}}  {v['compared']:>8}  {v['agreement']:>8.0%}{flag}")
    return "\n".join(lines)
