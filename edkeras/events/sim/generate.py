"""Simulate blocks of supernova-electron events into :class:`EventBatch` objects or event files.

A run of ``n_events`` with a seed is cut into blocks of ``config.block_size`` events.
Block b draws its random numbers from ``SeedSequence(seed, spawn_key=(b, 0))`` (physics)
and ``(b, 1)`` (electronics noise), so the output depends on the seed, the event count and
the config, never on how many worker processes share the blocks.

Per block: interactions → primary-electron transport → photons (bremsstrahlung, ⁴⁰K* γ)
→ secondary electrons → … (``transport.max_generations`` rounds) → ³⁹Ar decays in the
window → charge → readout (waveforms → trigger primitives → images).

Example:
    >>> batch = simulate(1000, seed=1)                    # in memory
    >>> simulate_to_file("events.h5", 5000, seed=1, workers=2)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edkeras import __version__
from edkeras.core.detector import Geometry
from edkeras.core.errors import InputError
from edkeras.core.schema import from_dict, to_dict
from edkeras.events.eventfile import EventBatch, EventFileWriter
from edkeras.events.sim.background import ar39_deposits
from edkeras.events.sim.config import SimConfig
from edkeras.events.sim.interactions import Interactions, sample_interactions
from edkeras.events.sim.photons import emit_isotropic, transport_photons
from edkeras.events.sim.readout import Charges, collection_blips, drift_charge, read_out
from edkeras.events.sim.transport import (
    Deposits,
    Electrons,
    Photons,
    TrackStats,
    point_dedx,
    transport_electrons,
)

__all__ = ["BlockDetails", "block_rngs", "simulate", "simulate_block", "simulate_to_file", "source_record"]


@dataclass
class BlockDetails:
    """Internals of one simulated block, for tests and studies.

    Attributes:
        interactions: the sampled primaries.
        deposits: every energy deposit (primary and secondaries).
        charges: the drifted charge (what the readout sees; mirror it to test the mirrors).
        primary_tracks: start/end/path/brems count of each primary electron.
        deposited_energy: (n,) energy deposited by the event's particles, MeV (background excluded).
    """

    interactions: Interactions
    deposits: Deposits
    charges: Charges
    primary_tracks: TrackStats
    deposited_energy: np.ndarray


def block_rngs(seed: int, block: int) -> tuple[np.random.Generator, ...]:
    """Physics, electronics noise, background and detector-response streams of one block."""
    return tuple(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block, k))) for k in range(4))


def simulate_block(
    n: int,
    config: SimConfig,
    rng: np.random.Generator,
    noise_rng: np.random.Generator | None = None,
    first_event_id: int = 0,
    background_rng: np.random.Generator | None = None,
    response_rng: np.random.Generator | None = None,
) -> tuple[EventBatch, BlockDetails]:
    """Simulate ``n`` events in lock-step.

    Args:
        n: number of events.
        config: the simulation settings.
        rng: random stream for the physics.
        noise_rng: random stream for the electronics noise and noise TPs (default: one
            derived from ``rng``).
        first_event_id: event id of the first event.
        background_rng: random stream for the ³⁹Ar decays (default: derived from ``rng``).
        response_rng: random stream for the per-event response spread (default: derived
            from ``rng``).

    Returns:
        (the events as an :class:`EventBatch`, :class:`BlockDetails`).
    """
    tc = config.transport
    inter = sample_interactions(rng, n, config)
    primaries = Electrons(np.arange(n, dtype=np.int64), inter.vertex.copy(), inter.direction.copy(), inter.energy.copy())
    deps, photons, deltas, tracks = transport_electrons(primaries, rng, tc, primary=True)
    all_deps = [deps]
    photons = Photons.concatenate([photons, emit_isotropic(rng, inter.gamma_event, inter.gamma_energy, inter.vertex)])
    electrons = deltas
    for gen in range(tc.max_generations):
        if tc.photons and len(photons):
            d_ph, e_ph = transport_photons(photons, rng, tc)
            all_deps.append(d_ph)
            electrons = Electrons.concatenate([electrons, e_ph])
        photons = Photons.empty()
        if not len(electrons):
            break
        last = gen == tc.max_generations - 1
        d_el, photons, electrons, _ = transport_electrons(electrons, rng, tc, primary=False, allow_secondaries=not last)
        all_deps.append(d_el)
    if len(electrons):  # beyond the last generation: on the spot
        all_deps.append(Deposits(electrons.event, electrons.pos, electrons.energy, point_dedx(electrons.energy),
                                 np.zeros(len(electrons), dtype=bool)))
    if noise_rng is None or background_rng is None or response_rng is None:
        extra = rng.spawn(3)
        noise_rng = noise_rng or extra[0]
        background_rng = background_rng or extra[1]
        response_rng = response_rng or extra[2]
    edep = np.bincount(np.concatenate([d.event for d in all_deps]),
                       weights=np.concatenate([d.energy for d in all_deps]), minlength=n)
    primary = Deposits.concatenate(all_deps[:1])
    w = np.bincount(primary.event, weights=primary.energy, minlength=n)
    centre = np.column_stack([np.bincount(primary.event, weights=primary.energy * primary.pos[:, k], minlength=n)
                              for k in range(3)]) / np.maximum(w, 1e-12)[:, None]
    centre = np.where(w[:, None] > 0, centre, inter.vertex)
    all_deps.append(ar39_deposits(background_rng, centre, config))
    deposits = Deposits.concatenate(all_deps)
    charges = drift_charge(deposits, config.readout)
    images, origin = read_out(charges, n, config, noise_rng=noise_rng, response_rng=response_rng)
    reco = images["X"].reshape(n, -1).sum(axis=1, dtype=np.float64) / config.readout.reco_adc_per_mev
    blips, blip_energy = collection_blips(charges, n, config)
    batch = EventBatch(
        U=images["U"], V=images["V"], X=images["X"],
        event_id=np.arange(first_event_id, first_event_id + n, dtype=np.int64),
        direction=inter.direction.astype(np.float32),
        energy=inter.energy.astype(np.float32),
        interaction=inter.interaction,
        nu_direction=inter.nu_direction.astype(np.float32),
        nu_energy=inter.nu_energy.astype(np.float32),
        vertex=inter.vertex.astype(np.float32),
        reco_energy=reco.astype(np.float32),
        window_origin=origin,
        blips=blips,
        blip_energy=blip_energy,
    )
    return batch, BlockDetails(inter, deposits, charges, tracks, edep)


def _blocks(n_events: int, block_size: int) -> list[tuple[int, int, int]]:
    """(block index, first event, number of events) for a run."""
    return [(b, a, min(block_size, n_events - a)) for b, a in enumerate(range(0, n_events, block_size))]


def _run_block(task: tuple[int, int, int, int, dict]) -> EventBatch:
    """Worker entry point: (seed, block, first event, n, config dict) → EventBatch."""
    seed, block, first, n, cfg = task
    config = from_dict(SimConfig, cfg)
    rng, noise, background, response = block_rngs(seed, block)
    return simulate_block(n, config, rng, noise, first_event_id=first, background_rng=background,
                          response_rng=response)[0]


def _check_args(n_events: Any, seed: Any, workers: Any = 1) -> None:
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise InputError(f"simulate: n_events must be an integer >= 1; received {n_events!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"simulate: seed must be an integer >= 0; received {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InputError(f"simulate: workers must be an integer >= 1; received {workers!r}")


def _start_method() -> str:
    """``fork`` (no re-imports: fast) when it is safe, else ``spawn``.

    Forking is safe on Linux from a single-threaded parent that has not loaded a threaded
    runtime (TensorFlow, JAX, PyTorch); otherwise the workers are spawned afresh.
    """
    import sys
    import threading

    heavy = {"tensorflow", "jax", "torch"}.intersection(sys.modules)
    if sys.platform.startswith("linux") and threading.active_count() == 1 and not heavy:
        return "fork"
    return "spawn"


def _iter_batches(n_events: int, seed: int, config: SimConfig, workers: int) -> Iterator[tuple[int, EventBatch]]:
    """(events in the block, its EventBatch) in block order, from 1 or several processes."""
    cfg = to_dict(config)
    tasks = [(int(seed), b, a, n, cfg) for b, a, n in _blocks(int(n_events), config.block_size)]
    if workers == 1 or len(tasks) == 1:
        for t in tasks:
            yield t[3], _run_block(t)
        return
    import multiprocessing

    with multiprocessing.get_context(_start_method()).Pool(processes=min(workers, len(tasks))) as pool:
        for t, batch in zip(tasks, pool.imap(_run_block, tasks, chunksize=1)):
            yield t[3], batch


def simulate(n_events: int, seed: int = 0, config: SimConfig | None = None, workers: int = 1) -> EventBatch:
    """Simulate ``n_events`` events in memory.

    Args:
        n_events: number of events.
        seed: random seed (the same seed and config give identical events).
        config: :class:`SimConfig` (default: the ES + CC mix, 128 × 32 windows).
        workers: processes (the result does not depend on it).

    Returns:
        An :class:`EventBatch` with images, full truth, reconstructed energy and window origins.

    Example:
        >>> b = simulate(100, seed=3, config=SimConfig(channel="es"))
        >>> b.U.shape
        (100, 128, 32)
    """
    _check_args(n_events, seed, workers)
    config = config or SimConfig()
    return EventBatch.concatenate([b for _, b in _iter_batches(int(n_events), int(seed), config, int(workers))])


def source_record(n_events: int, seed: int, config: SimConfig) -> dict:
    """The ``source`` attribute of a simulated file: generator, version, seed, full config."""

    return {"generator": "edkeras.events.sim", "version": __version__, "seed": int(seed), "n_events": int(n_events),
            "config": to_dict(config)}


def simulate_to_file(
    path: str | os.PathLike,
    n_events: int,
    seed: int = 0,
    config: SimConfig | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Simulate ``n_events`` events into an event file (written atomically).

    Args:
        path: output file (``.h5``).
        n_events: number of events.
        seed: random seed.
        config: :class:`SimConfig` (recorded in the file's ``source`` attribute).
        workers: processes (identical output for any number).
        overwrite: replace an existing file.
        progress: show a tqdm progress bar.

    Returns:
        The path of the complete file.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    _check_args(n_events, seed, workers)
    config = config or SimConfig()
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True (--force) to replace it")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=int(n_events), unit="ev", desc="simulate")
    try:
        with EventFileWriter(path, image_shape=config.image_shape, geometry=Geometry(image_shape=config.image_shape),
                             source=source_record(n_events, seed, config), overwrite=overwrite) as writer:
            for n, batch in _iter_batches(int(n_events), int(seed), config, int(workers)):
                writer.append(batch)
                if bar is not None:
                    bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    return path

