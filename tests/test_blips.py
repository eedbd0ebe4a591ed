"""Blips round the event: the rules on hand-made TPs, their physics in the simulator, real events,
old files without the fields, and the logistic combination with the classifier network."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import REAL_TP_FILE, random_batch

from edkeras.core.errors import InputError
from edkeras.core.schema import from_dict
from edkeras.events.blips import BLIP_MIN_MEV, BOX_CHANNELS, BOX_TICKS, blip_features, charge_tps
from edkeras.events.eventfile import open_events, write_events
from edkeras.events.sim import SimConfig
from edkeras.events.sim.background import ar39_deposits
from edkeras.events.sim.generate import simulate_block
from edkeras.events.sim.readout import collection_blips, drift_charge
from edkeras.events.sim.transport import Deposits, point_dedx
from edkeras.reco.blip_combination import (
    apply_combination,
    fit_combination,
    load_combination,
    save_combination,
)

ADC_PER_MEV = 4000.0


def _tp(event, start, channel, mev, sot=10):
    return {"event": event, "start": start, "end": start + sot, "channel": channel, "adc": mev * ADC_PER_MEV}


def _features(tps, n, main=None):
    cols = {k: np.array([t[k] for t in tps]) for k in ("event", "start", "end", "channel", "adc")}
    return blip_features(cols["event"], cols["start"], cols["end"], cols["channel"], cols["adc"], n_events=n,
                         adc_per_mev=ADC_PER_MEV, main=main)


def test_a_blip_is_another_cluster_above_threshold_inside_the_box():
    tps = [
        _tp(0, 1000, 500, 8.0), _tp(0, 1008, 501, 8.0), _tp(0, 1016, 502, 8.0),  # the electron: one cluster
        _tp(0, 1200, 530, 1.0),  # a blip of 1 MeV, inside the box
        _tp(0, 900, 470, 2.0),  # another, 2 MeV
        _tp(0, 1100, 515, 0.5 * BLIP_MIN_MEV),  # too small (³⁹Ar-like)
        _tp(0, 1000 + BOX_TICKS + 50, 500, 3.0),  # outside the box in time
        _tp(0, 1000, 500 + BOX_CHANNELS + 10, 3.0),  # outside the box in wires
        _tp(1, 5000, 20, 5.0),  # event 1: the electron alone
    ]
    blips, energy = _features(tps, 3)
    np.testing.assert_allclose(blips, [2, 0, np.nan])
    np.testing.assert_allclose(energy, [3.0, 0.0, np.nan], rtol=1e-6)
    # TPs that touch (channels within 2, at most 3 empty ticks between) are one cluster, not a blip
    touching = [_tp(0, 1000, 500, 8.0), _tp(0, 1013, 502, 1.0), _tp(0, 1200, 530, 1.0)]
    assert _features(touching, 1)[0][0] == 1
    # the main cluster may be given: then the largest cluster counts as a blip
    main = np.array([False, False, True])
    blips, energy = _features(touching, 1, main=main)
    assert blips[0] == 1 and energy[0] == pytest.approx(8.0 + 1.0)


def test_charge_tps_joins_charge_on_a_wire_and_drops_what_stays_below_threshold():
    event = np.array([0, 0, 0, 0, 1])
    tick = np.array([100, 103, 300, 100, 50])
    channel = np.array([7, 7, 7, 8, 7])
    charge = np.array([1000.0, 1000.0, 1000.0, 10.0, 1000.0])
    t = charge_tps(event, tick, channel, charge, gain=1.0, threshold=60.0, sigma_ticks=3.0)
    # (0, 7): ticks 100 and 103 one pulse, 300 a second; (0, 8) too small; (1, 7) one
    assert t["event"].tolist() == [0, 0, 1] and t["channel"].tolist() == [7, 7, 7]
    np.testing.assert_allclose(t["adc"], [2000.0, 1000.0, 1000.0])
    assert t["start"].tolist() == [94, 294, 44] and t["end"].tolist() == [110, 307, 57]


@pytest.fixture(scope="module")
def es_cc_blocks():
    out = {}
    for ch in ("es", "cc"):
        for photons in (True, False):
            cfg = from_dict(SimConfig, {"channel": ch, "transport": {"photons": photons}})
            out[ch, photons] = simulate_block(400, cfg, np.random.default_rng(5))[0]
    return out


def test_simulated_blips_come_from_gamma_rays_and_tell_cc_from_es(es_cc_blocks):
    es, cc = es_cc_blocks["es", True], es_cc_blocks["cc", True]
    assert np.isfinite(es.blips).all() and np.isfinite(cc.blips).all()
    # de-excitation γ rays: most CC events have a blip, most ES events none (real DUNE
    # simulation: 2 clusters besides the main one for CC, 0.5 for ES on X)
    assert (cc.blips >= 1).mean() > 0.65 and (es.blips >= 1).mean() < 0.35
    assert cc.blips.mean() > 3 * es.blips.mean()
    np.testing.assert_array_equal(np.isclose(es.blip_energy, 0), es.blips == 0)
    assert (es.blip_energy[es.blips > 0] >= BLIP_MIN_MEV * es.blips[es.blips > 0] - 1e-3).all()
    # without photon transport (no γ ray travels) the blips are gone
    for ch in ("es", "cc"):
        assert es_cc_blocks[ch, False].blips.mean() < 0.1 * max(es_cc_blocks[ch, True].blips.mean(), 0.1)


def test_argon39_alone_never_makes_a_blip():
    """The largest ³⁹Ar charge (end-point β at the anode) stays below a blip; a 1.2 MeV deposit does not."""
    cfg = SimConfig()
    z = np.arange(1, 6) * 5.0  # five decays 5 cm apart beside a 10 MeV "electron" at z = 0

    def blips_of(energy, x):
        e = np.concatenate([[10.0], np.full(5, energy)])
        pos = np.column_stack([np.full(6, x), np.zeros(6), np.concatenate([[0.0], z])])
        deposits = Deposits(np.zeros(6, dtype=np.int64), pos, e, point_dedx(e), np.zeros(6, dtype=bool))
        return collection_blips(drift_charge(deposits, cfg.readout), 1, cfg)[0][0]

    assert blips_of(0.565, 0.5) == 0 and blips_of(0.565, -0.5) == 0  # β end point, no attachment loss
    assert blips_of(1.2, 100.0) == 5
    # natural ³⁹Ar round 40 events over the whole box in time: not one blip
    centre = np.column_stack([np.linspace(-300, 300, 40), np.zeros(40), np.zeros(40)])
    deposits = ar39_deposits(np.random.default_rng(3), centre, cfg, margin_ticks=BOX_TICKS)
    assert len(deposits.energy) > 40 * 20  # many decays in the box
    blips, _ = collection_blips(drift_charge(deposits, cfg.readout), 40, cfg)
    assert np.nansum(blips) == 0


@pytest.mark.skipif(not REAL_TP_FILE.exists(), reason="real TP file not present")
def test_real_es_events_get_blips_like_simulated_es(tmp_path, es_cc_blocks):
    from edkeras.events.tp_ingest import ingest_tpstream

    out = tmp_path / "es.h5"
    ingest_tpstream([REAL_TP_FILE], out, progress=False, command="test")
    with open_events(out) as ev:
        b = ev.read()
    assert np.isfinite(b.blips).all() and np.isfinite(b.blip_energy).all()
    # ES-like: few events with a blip (simulated ES ~ 0.2, CC ~ 0.8)
    assert (b.blips >= 1).mean() <= 0.5
    assert (b.blip_energy[b.blips > 0] >= BLIP_MIN_MEV).all()


def test_a_file_written_before_the_blip_fields_reads_them_as_unknown(tmp_path):
    path = write_events(tmp_path / "old.h5", random_batch(5, shape=(16, 8), seed=1), source={"generator": "tests"})
    with h5py.File(path, "a") as f:
        del f["reco/blips"], f["reco/blip_energy"]
    with open_events(path) as ev:
        assert np.isnan(ev.field("blips")).all() and ev.field("blip_energy").shape == (5,)
        assert np.isnan(ev.read([0, 2]).blips).all()


def test_combination_recovers_its_weights_for_equal_priors():
    rng = np.random.default_rng(0)
    n = 40000
    y = (rng.random(n) < 0.25).astype(np.int8)  # a sample of 25 % ES: the fit weighs the classes equally
    logit_net = rng.normal(np.where(y == 1, 1.0, -1.0), 1.2)
    blips = rng.poisson(np.where(y == 1, 0.3, 1.6)).astype(np.float32)
    energy = blips * rng.gamma(2.0, 0.8, n)
    p_net = 1 / (1 + np.exp(-logit_net))
    params = fit_combination(p_net, blips, energy, y)
    p = apply_combination(params, p_net, blips, energy)
    # equal priors: the mean probability of ES events ≈ 1 − that of CC events
    assert p[y == 1].mean() == pytest.approx(1 - p[y == 0].mean(), abs=0.02)
    w = dict(zip(params["features"], params["weights"]))
    assert w["logit_network"] > 0.5 and w["blips_capped_4"] < -0.5
    from edkeras.reco.metrics import es_cc_separation

    assert es_cc_separation(p, y)["auc"] > es_cc_separation(p_net, y)["auc"] + 0.03
    # unknown blips keep the network's probability
    q = apply_combination(params, p_net[:3], np.array([np.nan, 1, np.nan]), np.array([np.nan, 1, 0]))
    assert q[0] == p_net[0] and q[2] == p_net[2] and q[1] != p_net[1]
    with pytest.raises(InputError, match="holds 0 ES and 3 CC"):
        fit_combination(p_net[:3], blips[:3], energy[:3], np.zeros(3))
    with pytest.raises(InputError, match="no blip fields"):
        fit_combination(p_net[:3], np.array([np.nan, 0, 1]), energy[:3], np.array([0, 1, 1]))


def test_combination_file_round_trip_and_damage(tmp_path):
    params = {"format": "edkeras-blip-combination", "version": 1,
              "features": ["intercept", "logit_network", "blips_capped_4", "log1p_blip_energy_mev"],
              "weights": [0.1, 0.8, -1.5, 0.2]}
    path = save_combination(params, tmp_path / "blips.json")
    assert load_combination(path)["weights"] == params["weights"]
    path.write_text(json.dumps(replace_weights(params, [1.0, 2.0])))
    with pytest.raises(InputError, match="not an edkeras-blip-combination file"):
        load_combination(path)
    path.write_bytes(b"\x00\x01")
    with pytest.raises(InputError, match="cannot be read as a blip combination"):
        load_combination(path)


def replace_weights(params, weights):
    return {**params, "weights": weights}


def test_the_shipped_classifier_carries_its_blip_combination():
    from edkeras.reco.pretrained import pretrained_dir

    folder = pretrained_dir("es_cc")
    params = load_combination(folder / "blips.json")
    w = dict(zip(params["features"], params["weights"]))
    assert w["logit_network"] > 0 and w["blips_capped_4"] < 0  # more blips: more CC-like
    card = json.loads((folder / "card.json").read_text())
    m = card["metrics"]["simulated_test_es_cc_with_blips"]
    assert m["network_and_blips"]["auc"] > m["network_alone"]["auc"]
    assert params["fitted_on"]["seed"] != card["training_data"]["seed"]
