"""edkeras compare: image statistics, energy matching, verdicts, errors, the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edkeras.cli import main as cli_main
from edkeras.core.errors import InputError
from edkeras.events.compare import compare_batches, image_statistics, matched_indices
from edkeras.events.eventfile import write_events
from edkeras.events.sim import SimConfig, simulate
from tests.conftest import random_batch


def test_image_statistics_of_a_drawn_image():
    img = np.zeros((1, 20, 10), dtype=np.float32)
    img[0, 2:8, 3] = 100.0  # main cluster: 6 ticks on one channel, 600 ADC
    img[0, 4:6, 4] = 300.0  # joined to it (adjacent channel), 2 pixels
    img[0, 16, 9] = 80.0  # a lone blip 8 ticks later: another cluster
    s = image_statistics(img, np.array([2.0]))
    assert s["pixels"][0] == 9
    assert s["pulses"][0] == 3 and s["pulse_samples"][0] == 2  # runs of 6, 2 and 1 ticks
    assert s["ticks"][0] == 6 and s["channels"][0] == 2
    assert s["other_clusters"][0] == 1
    assert s["adc_per_mev"][0] == pytest.approx((600 + 600 + 80) / 2.0)
    assert s["adc_median"][0] == 100.0
    two = np.zeros((1, 30, 4), dtype=np.float32)
    two[0, 1:4, 0] = two[0, 10:20, 0] = two[0, 5:10, 2] = 90.0  # channel 0: runs of 3 and 10; channel 2: 5
    t = image_statistics(two)
    assert t["pulses"][0] == 3 and t["pulse_samples"][0] == 5
    empty = image_statistics(np.zeros((1, 20, 10), np.float32))
    assert empty["pixels"][0] == 0 and np.isnan(empty["adc_median"][0])


def test_matching_picks_the_nearest_energies():
    idx = matched_indices(np.array([10.0, 30.0]), np.array([1.0, 9.0, 11.0, 29.0, 50.0]), k=2)
    assert sorted(idx[:2].tolist()) == [1, 2] and sorted(idx[2:].tolist()) == [2, 3]


def test_a_simulation_agrees_with_itself_and_not_with_a_changed_gain():
    a = simulate(300, seed=1, config=SimConfig(channel="es"))
    b = simulate(300, seed=2, config=SimConfig(channel="es"))
    same = compare_batches(a, b, k=5)
    assert same.n_differ == 0, [r for r in same.rows if r["verdict"] == "differs"]
    assert same.n_asymmetry_differ == 0, [a for a in same.asymmetry if a["verdict"] == "differs"]
    # a U-V difference: V 1.5 times brighter changes the ADC asymmetry, not the pixel count's
    bright = simulate(300, seed=2, config=SimConfig(channel="es"))
    bright.V[:] *= 1.5
    asym = {a["statistic"]: a for a in compare_batches(a, bright, k=5).asymmetry}
    assert asym["adc_median"]["verdict"] == "differs" and 0.6 < asym["adc_median"]["other"] < 0.75
    lo, hi = asym["adc_median"]["other_interval"]
    assert lo <= asym["adc_median"]["other"] <= hi
    assert asym["pixels"]["verdict"] == "agree"
    from edkeras.core.schema import from_dict

    loud = simulate(300, seed=2, config=from_dict(SimConfig, {"channel": "es", "readout": {"gain_collection": 0.35}}))
    c = compare_batches(a, loud, k=5)
    x = {r["statistic"]: r for r in c.rows if r["plane"] == "X"}
    assert x["adc_per_mev"]["verdict"] == "differs" and x["adc_per_mev"]["ratio"] > 1.4
    assert c.to_dict()["uv_asymmetry"][0]["statistic"] == "pixels"
    # windows that do not line up in time: U moved by 5 rows against X (what a window centred
    # on the charge, not on the plane's own TPs, does to a one-lobe induction image)
    moved = simulate(300, seed=2, config=SimConfig(channel="es"))
    moved.U[:] = np.roll(moved.U, 5, axis=1)
    d = compare_batches(a, moved, k=5)
    offset = {r["plane"]: r for r in d.rows if r["statistic"] == "x_offset"}
    assert set(offset) == {"U", "V"}
    assert offset["U"]["verdict"] == "differs" and offset["U"]["other"] > 3.5 and offset["V"]["verdict"] == "agree"
    assert offset["U"]["reference"] < 1.5  # each plane centred on its own TPs
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edkeras.reports.plots.compare import comparison_figure

    fig = comparison_figure(d)
    points = [len(ax.lines) for ax in fig.axes[:3]]
    plt.close(fig)
    assert points[0] > points[2]  # x_offset drawn on U, absent on X


def test_bad_input_is_one_clear_error(tmp_path):
    a = random_batch(5)
    b = random_batch(5, shape=(64, 16))
    with pytest.raises(InputError, match="same image shape"):
        compare_batches(a, b)
    no_e = random_batch(5)
    no_e.energy = np.full(5, np.nan)
    with pytest.raises(InputError, match="no true energy"):
        compare_batches(a, no_e, names=("real.h5", "sim.h5"))
    fa = write_events(tmp_path / "a.h5", a)
    fb = write_events(tmp_path / "b.h5", b)
    assert cli_main(["compare", str(fa), str(fb)]) == 1


def test_command_prints_json(tmp_path, capsys):
    fa = write_events(tmp_path / "a.h5", random_batch(6, seed=1))
    fb = write_events(tmp_path / "b.h5", random_batch(30, seed=2))
    assert cli_main(["compare", str(fa), str(fb), "--json", "--matched", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_reference"] == 6 and out["n_matched"] == 18
    assert {r["plane"] for r in out["rows"]} == {"U", "V", "X"}
