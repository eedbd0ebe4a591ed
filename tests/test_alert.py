"""``edkeras alert``: a simulated burst from a known star at a known time, to alert.json, a FITS map and a picture."""

from __future__ import annotations

import json
import math

import healpy as hp
import numpy as np
import pytest

from edkeras import cli
from edkeras.events.sim import SimConfig, simulate_to_file
from edkeras.pointing.sky import nu_direction_from_radec

BETELGEUSE = (88.792939, 7.407064)
WHEN = "2026-12-06T22:00:00"


def _sep_deg(ra1, d1, ra2, d2):
    r = np.radians
    c = math.sin(r(d1)) * math.sin(r(d2)) + math.cos(r(d1)) * math.cos(r(d2)) * math.cos(r(ra1 - ra2))
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


@pytest.fixture(scope="module")
def burst(tmp_path_factory):
    """600 ES and CC events whose neutrinos come from Betelgeuse at WHEN."""
    nu = nu_direction_from_radec(*BETELGEUSE, WHEN)[0]
    path = tmp_path_factory.mktemp("alert") / "burst.h5"
    simulate_to_file(path, 600, seed=5, config=SimConfig(channel="mix", es_fraction=0.5, direction=tuple(nu)),
                     progress=False)
    return path


def test_a_burst_from_betelgeuse_gives_an_alert_near_betelgeuse(burst, tmp_path, capsys):
    out = tmp_path / "alert"
    rc = cli.main(["alert", str(burst), "--model", "pretrained:compact_vmf", "--classifier", "pretrained:es_cc",
                   "--tables", "pretrained:compact_vmf", "--time", WHEN, "--es-fraction", "0.5", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    alert = json.loads((out / "alert.json").read_text())
    assert alert["format"] == "edkeras-alert" and alert["time_utc"].startswith("2026-12-06T22:00:00")
    pos = alert["position"]
    r90 = alert["error_radius_deg"]["0.9"]
    assert _sep_deg(pos["ra_deg"], pos["dec_deg"], *BETELGEUSE) < max(2.0 * r90, 10.0)
    assert alert["credible_area_deg2"]["0.68"] < alert["credible_area_deg2"]["0.9"]
    assert alert["events"]["n"] == 600 and "ES probability" in alert["events"]["classification"]
    assert alert["sources"]["mirror_average"] is False and "mirror" not in alert["sources"]["model_identity"]
    assert abs(alert["site"]["z_axis_azimuth_deg"] - 277.167) < 0.01
    prob = hp.read_map(str(out / "skymap.fits"), nest=True)
    assert abs(prob.sum() - 1.0) < 1e-6
    assert (out / "skymap.png").stat().st_size > 10_000
    for stage in ("reconstructed 600 events", "fitted the burst", "sky map at nside"):
        assert f"edkeras alert: {stage}" in captured.err
    # the map's temperature is the tables' calibration, and a burst far from its size is flagged
    from astropy.io import fits

    from edkeras.pointing import load_table
    from edkeras.reco.pretrained import resolve_tables

    shipped = load_table(resolve_tables("pretrained:compact_vmf"))
    temp = alert["likelihood_temperature"]
    assert temp == {"T": shipped.burst_temperature, "calibrated_for_events": shipped.burst_temperature_events}
    assert fits.getheader(out / "skymap.fits", 1)["LNLTEMP"] == shipped.burst_temperature
    far = not shipped.burst_temperature_events or not 0.5 <= 600 / shipped.burst_temperature_events <= 2
    assert bool(alert["warnings"]) == far and (("edkeras alert: warning:" in captured.err) == far)
    # the same folder again: refused without --force, replaced with it
    assert cli.main(["alert", str(burst), "--model", "pretrained:compact_vmf", "--tables", "pretrained:compact_vmf",
                     "--time", WHEN, "--out", str(out)]) == 1
    assert "pass --force" in capsys.readouterr().err


@pytest.mark.parametrize("time", ["", "tomorrow", "2026-02-30T00:00:00"])
def test_a_bad_time_is_one_line(burst, tmp_path, capsys, time):
    rc = cli.main(["alert", str(burst), "--model", "pretrained:compact_vmf", "--tables", "pretrained:compact_vmf",
                   "--time", time, "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "expected ISO 8601 UTC" in err
    assert not (tmp_path / "a").exists()


def test_tables_of_another_model_are_refused(burst, tmp_path, capsys):
    """Tables fitted on another model's predictions: one line naming both models, no alert folder."""
    from edkeras.pointing import build_table, save_table
    from edkeras.reco.predictions import load_predictions, save_predictions

    rng = np.random.default_rng(1)
    nu = rng.normal(size=(500, 3))
    cal = load_predictions(save_predictions(tmp_path / "cal.npz", predictions=nu + 0.3 * rng.normal(size=(500, 3)),
                                            energies=rng.uniform(6, 40, 500), nu_directions=nu,
                                            model="sha256:0123456789abcdef"))
    save_table(build_table(cal, method="vmf"), tmp_path / "other.npz")
    rc = cli.main(["alert", str(burst), "--model", "pretrained:compact_vmf", "--tables", str(tmp_path / "other.npz"),
                   "--time", WHEN, "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and "model sha256:0123456789abcdef" in err[-1] and "edkeras likelihood" in err[-1]
    assert not [e for e in err if "Traceback" in e] and not (tmp_path / "a").exists()


def test_tables_of_mirror_averaged_predictions_make_the_alert_mirror_average(burst, tmp_path, capsys):
    """Tables that carry '+mirror8' point only mirror-averaged directions, so the alert averages them too."""
    from edkeras.pointing import build_table, save_table
    from edkeras.reco.evaluate import evaluate
    from edkeras.reco.predictions import MIRROR_TAG, load_predictions

    evaluate("pretrained:compact_vmf", burst, out=tmp_path / "mirror.npz", mirror_average=True)
    mirrored = load_predictions(tmp_path / "mirror.npz")
    table = build_table(mirrored, method="vmf", reference="neutrino")
    assert table.model == mirrored.model and table.model.endswith(MIRROR_TAG)  # the tag is not taken for a join
    save_table(table, tmp_path / "mirror_tables.npz")
    out = tmp_path / "alert"
    rc = cli.main(["alert", str(burst), "--model", "pretrained:compact_vmf", "--tables", str(tmp_path / "mirror_tables.npz"),
                   "--time", WHEN, "--es-fraction", "0.5", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    alert = json.loads((out / "alert.json").read_text())
    assert alert["sources"]["mirror_average"] is True and alert["sources"]["model_identity"] == table.model
    assert "reconstructed 600 events, mirror-averaged" in err
    np.testing.assert_allclose(load_predictions(out / "predictions.npz").predictions, mirrored.predictions, atol=1e-6)


def test_real_dune_tp_dumps_go_to_an_alert(tmp_path, capsys):
    """The real 10-event DUNE dump, straight from the DAQ format: ingested, reconstructed, mapped, flagged as tiny."""
    from conftest import REAL_TP_FILE

    if not REAL_TP_FILE.exists():
        pytest.skip(f"{REAL_TP_FILE} is not here")
    out = tmp_path / "real"
    rc = cli.main(["alert", str(REAL_TP_FILE), "--model", "pretrained:compact_vmf", "--classifier", "pretrained:es_cc",
                   "--tables", "pretrained:compact_vmf", "--time", WHEN, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    alert = json.loads((out / "alert.json").read_text())
    assert alert["events"]["n"] == 10 and (out / "events.h5").exists() and "ingest" in alert["stage_seconds"]
    assert "edkeras alert: ingested 1 TP dump(s)" in err
    assert any("calibrated on bursts of" in w for w in alert["warnings"])  # 10 events, not a 10 kpc burst
    assert alert["credible_area_deg2"]["0.9"] > 1000.0  # ten events cannot locate a supernova
