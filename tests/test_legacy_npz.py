"""The earlier system's per-plane NPZ files → event file (``edkeras convert-npz``).

Every fixture image carries a fingerprint of where it came from: pixel [0, 0] = event + 1,
[0, 1] = match_id + 1, [0, 2] = plane code + 1, [0, 3] = a mark of its base name. So the
tests can check, event by event, that the U, V and X images of a written event belong to
the same (event, match_id) of the same base, and that the truth written with them is that
key's truth.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from edkeras import cli
from edkeras.core.errors import InputError
from edkeras.events.eventfile import open_events
from edkeras.events.legacy_convert import convert_npz
from edkeras.events.legacy_npz import (
    METADATA_COLUMNS,
    LegacyNpzError,
    decode_event_id,
    find_plane_files,
    read_plane_file,
)

PLANE_CODE = {"U": 0, "V": 1, "X": 2}


def key_truth(base_mark: int, event: int, match: int, zero: bool = False) -> dict[str, np.ndarray | float]:
    """Deterministic truth of one key (the same on every plane, as for one real electron)."""
    rng = np.random.default_rng(1000 * base_mark + 10 * event + match + 7)
    p = np.zeros(3) if zero else rng.normal(size=3) * rng.uniform(0.005, 0.05)
    return {
        "vertex": rng.uniform(-300, 300, 3),
        "p": p,
        "es": float(rng.integers(0, 2)),
        "true_e": float(rng.uniform(5, 50)),
    }


def plane_rows(
    keys: list[tuple[int, int]], plane: str, base_mark: int, zero_keys: set[tuple[int, int]],
    shape: tuple[int, int], rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Images and (N, 14) metadata of one plane file, in the order of ``keys``."""
    n = len(keys)
    images = (rng.random((n, *shape)) > 0.97) * rng.uniform(60, 400, (n, *shape))
    meta = np.zeros((n, len(METADATA_COLUMNS)))
    for i, (ev, mid) in enumerate(keys):
        t = key_truth(base_mark, ev, mid, zero=(ev, mid) in zero_keys)
        images[i, 0, :4] = (ev + 1, mid + 1, PLANE_CODE[plane] + 1, base_mark)
        meta[i, 0] = ev
        meta[i, 1] = 1
        meta[i, 2] = 1
        meta[i, 3] = t["es"]
        meta[i, 4:7] = t["vertex"]
        meta[i, 7:10] = t["p"]
        # the cluster energy differs per plane, so the test sees which plane's is used
        meta[i, 10] = 10 * base_mark + ev + 0.1 * mid + 1000 * PLANE_CODE[plane]
        meta[i, 11] = t["true_e"]
        meta[i, 12] = PLANE_CODE[plane]
        meta[i, 13] = mid
    return images.astype(np.float32), meta.astype(np.float32)


def write_base(
    folder: Path, base: str, base_mark: int, layout: str, *, matched: list[tuple[int, int]],
    only_on: dict[str, list[tuple[int, int]]] | None = None, n_unmatched: int = 0,
    zero_keys: set[tuple[int, int]] = frozenset(), shapes: dict[str, tuple[int, int]] | None = None,
    seed: int = 0,
) -> dict[str, Path]:
    """Write one base name in the earlier format, rows shuffled differently on each plane."""
    rng = np.random.default_rng(seed)
    only_on = only_on or {}
    paths = {}
    for plane in "UVX":
        keys = list(matched) + list(only_on.get(plane, [])) + [(100 + i, -1) for i in range(n_unmatched)]
        keys = [keys[i] for i in rng.permutation(len(keys))]
        shape = (shapes or {}).get(plane, (128, 32))
        images, meta = plane_rows(keys, plane, base_mark, set(zero_keys), shape, rng)
        d = folder / plane if layout == "sub" else folder
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{base}_plane{plane}.npz"
        np.savez_compressed(path, images=images, metadata=meta)
        paths[plane] = path
    return paths


KEYS_A = [(e, m) for e in range(6) for m in range(2)]          # 12 keys on every plane
KEYS_B = [(e, 0) for e in range(4)]                             # same keys as part of A, other base
KEYS_C = [(e, m) for e in range(3, 8) for m in (0, 3)]          # 10 keys


@pytest.fixture
def legacy_tree(tmp_path: Path) -> dict:
    """Two layouts, unmatched rows, one-plane keys, a zero-momentum key, 128×16 files."""
    flat, sub = tmp_path / "flat", tmp_path / "sub"
    # runA: 12 matched keys (one with zero momentum), 2 rows with match_id -1 per plane,
    # keys (7, 0) on U only, (8, 3) on X only, (9, 1) on U and V only.
    write_base(flat, "runA", 1, "flat", matched=KEYS_A, n_unmatched=2, zero_keys={(5, 1)},
               only_on={"U": [(7, 0), (9, 1)], "V": [(9, 1)], "X": [(8, 3)]}, seed=1)
    # runB: same (event, match_id) values as runA: must not mix with runA.
    write_base(flat, "runB", 2, "flat", matched=KEYS_B, seed=2)
    # old16: a whole base of 128×16 files.
    write_base(flat, "old16", 3, "flat", matched=KEYS_B, shapes=dict.fromkeys("UVX", (128, 16)), seed=3)
    # runC in U/ V/ X/ sub-folders, 1 unmatched row per plane.
    write_base(sub, "runC", 4, "sub", matched=KEYS_C, n_unmatched=1, seed=4)
    # mixed: only its U file is 128×16, so the base cannot be completed and is skipped.
    write_base(sub, "mixed", 5, "sub", matched=KEYS_B, shapes={"U": (128, 16)}, seed=5)
    expected_written = (
        {("runA", k) for k in KEYS_A if k != (5, 1)} | {("runB", k) for k in KEYS_B} | {("runC", k) for k in KEYS_C}
    )
    counts = {
        "files_found": 15,
        "bases_found": 5,
        "files_skipped_shape": 4,                     # old16 ×3, mixed U
        "bases_skipped_shape": 2,
        "rows_in_skipped_bases": 2 * len(KEYS_B),     # mixed: its V and X rows
        "rows_read": 3 * (12 + 2) + 4 + 3 * len(KEYS_B) + 3 * (10 + 1),  # runA, its 4 one-plane rows, runB, runC
        "rows_unmatched": 3 * 2 + 3 * 1,
        "rows_duplicate_key": 0,
        "rows_no_partner": 4,                         # (7,0) U, (8,3) X, (9,1) U and V
        "events_matched": 12 + 4 + 10,
        "events_zero_momentum": 1,
        "events_truth_differs": 0,
        "events_written": len(expected_written),
    }
    marks = {"runA": 1, "runB": 2, "runC": 4}
    return {"inputs": [flat, sub], "expected": expected_written, "counts": counts, "marks": marks,
            "root": tmp_path}


def test_triplets_belong_together_and_counts(legacy_tree, tmp_path):
    out = tmp_path / "out" / "legacy.h5"
    result = convert_npz(legacy_tree["inputs"], out, image_shape=(128, 32))
    for k, v in legacy_tree["counts"].items():
        assert result.counts[k] == v, k
    assert len(result.skipped_files) == 4
    assert all(s["shape"] == [128, 16] for s in result.skipped_files)

    ev = open_events(out)
    assert len(ev) == result.n_events == len(legacy_tree["expected"])
    assert ev.source["counts"] == result.counts          # recorded in the file
    b = ev.read()
    fp = {p: b.images[p][:, 0, :4] for p in "UVX"}
    # the three planes of each event carry the same event, match_id and base fingerprint …
    np.testing.assert_array_equal(fp["U"][:, [0, 1, 3]], fp["V"][:, [0, 1, 3]])
    np.testing.assert_array_equal(fp["U"][:, [0, 1, 3]], fp["X"][:, [0, 1, 3]])
    # … and each plane's image sits in its own dataset
    for p, code in PLANE_CODE.items():
        assert (fp[p][:, 2] == code + 1).all()

    bases, events, matches = decode_event_id(b.event_id, ev.source)
    written = set()
    for i in range(len(b)):
        name = Path(bases[i]).name
        assert fp["U"][i, 0] == events[i] + 1 and fp["U"][i, 1] == matches[i] + 1
        assert fp["U"][i, 3] == legacy_tree["marks"][name]
        written.add((name, (int(events[i]), int(matches[i]))))
        t = key_truth(legacy_tree["marks"][name], int(events[i]), int(matches[i]))
        np.testing.assert_allclose(b.direction[i], t["p"] / np.linalg.norm(t["p"]), rtol=1e-5)
        np.testing.assert_allclose(b.vertex[i], t["vertex"], rtol=1e-5)
        assert b.interaction[i] == int(t["es"])
        # reco energy is the X-plane cluster energy (plane code 2 → +2000)
        expect_e = 10 * legacy_tree["marks"][name] + events[i] + 0.1 * matches[i] + 2000
        assert b.reco_energy[i] == pytest.approx(expect_e, rel=1e-5)
    assert written == legacy_tree["expected"]
    assert len(set(b.event_id.tolist())) == len(b)
    assert np.isnan(b.energy).all()                      # truth energy unknown (column 11 unreliable)
    assert np.isnan(b.nu_direction).all()
    assert (b.window_origin == 0).all()
    assert np.allclose(np.linalg.norm(b.direction, axis=1), 1, atol=1e-6)


def test_single_files_and_scalar_decode(legacy_tree, tmp_path):
    sub = legacy_tree["root"] / "sub"
    files = [sub / p / f"runC_plane{p}.npz" for p in "UVX"]
    groups = find_plane_files(files)
    assert list(groups) == [(sub.resolve(), "runC")]
    out = tmp_path / "c.h5"
    result = convert_npz(files, out)
    assert result.counts["events_written"] == len(KEYS_C)
    assert result.counts["rows_unmatched"] == 3
    ev = open_events(out)
    base, event, match = decode_event_id(int(ev.event_id[0]), ev.source)
    assert base.endswith("/runC") and (event, match) == KEYS_C[0]


def test_image_shape_option_picks_the_other_files(legacy_tree, tmp_path):
    result = convert_npz([legacy_tree["root"] / "flat"], tmp_path / "o16.h5", image_shape=(128, 16))
    assert result.counts["files_skipped_shape"] == 6       # runA, runB (3 files each)
    assert result.counts["events_written"] == len(KEYS_B)  # old16
    assert open_events(tmp_path / "o16.h5").image_shape == (128, 16)


def test_duplicate_keys_are_dropped_and_counted(tmp_path):
    write_base(tmp_path, "dup", 1, "flat", matched=[(0, 0), (1, 0), (2, 0)], seed=0)
    path = tmp_path / "dup_planeV.npz"
    with np.load(path) as z:
        images, meta = z["images"], z["metadata"]
    np.savez(path, images=np.concatenate([images, images[:1]]), metadata=np.concatenate([meta, meta[:1]]))
    result = convert_npz([tmp_path], tmp_path / "o.h5")
    assert result.counts["rows_duplicate_key"] == 2
    assert result.counts["events_written"] == 2
    assert result.counts["rows_no_partner"] == 2      # that key's U and X rows


def test_cli_convert_prints_counts_and_respects_force(legacy_tree, tmp_path):
    out = tmp_path / "cli.h5"
    argv = ["convert-npz", *map(str, legacy_tree["inputs"]), "--out", str(out)]
    buf, err = io.StringIO(), io.StringIO()
    with redirect_stdout(buf), redirect_stderr(err):
        assert cli.main(argv) == 0
    text = buf.getvalue()
    assert f"wrote {len(legacy_tree['expected'])} events" in text
    assert "match_id -1 (not matched across planes): 9" in text
    assert "zero momentum (no direction): 1" in text
    assert "image shape is not (128, 32): 4" in text
    with redirect_stdout(io.StringIO()), redirect_stderr(err := io.StringIO()):
        assert cli.main(argv) == 1
    assert "exists" in err.getvalue()
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert cli.main([*argv, "--force"]) == 0


# ----------------------------------------------------------------------------- bad input


def _one_base(tmp_path: Path) -> dict[str, Path]:
    return write_base(tmp_path / "in", "run", 1, "flat", matched=[(0, 0), (1, 0), (2, 1)], seed=0)


def _rewrite(path: Path, **arrays: np.ndarray) -> None:
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    data.update(arrays)
    for k in [k for k, v in arrays.items() if v is None]:
        data.pop(k)
    np.savez(path, **data)


def _nan_pixel(p: dict[str, Path]) -> None:
    with np.load(p["V"]) as z:
        img = z["images"].copy()
    img[1, 5, 7] = np.nan
    _rewrite(p["V"], images=img)


def _truncate(p: dict[str, Path]) -> None:
    data = p["X"].read_bytes()
    p["X"].write_bytes(data[: len(data) // 2])


def _plane_column(p: dict[str, Path]) -> None:
    with np.load(p["U"]) as z:
        meta = z["metadata"].copy()
    meta[2, 12] = 2
    _rewrite(p["U"], metadata=meta)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda p: p["X"].unlink(), r"base 'run' in .*run_planeX\.npz missing"),
        (lambda p: _rewrite(p["U"], images=None, imgs=np.zeros((3, 128, 32), np.float32)),
         r"run_planeU\.npz: key\(s\) 'images' missing; expected 'images' and 'metadata'"),
        (lambda p: _rewrite(p["V"], metadata=np.zeros((3, 13), np.float32)),
         r"run_planeV\.npz: 'metadata' must have shape \(N, 14\).*received \(3, 13\)"),
        (_nan_pixel, r"run_planeV\.npz: row 1 \(event \d+, match_id \d+\): image has NaN or inf pixels"),
        (lambda p: _rewrite(p["X"], images=np.zeros((2, 128, 32), np.float32)),
         r"run_planeX\.npz: 'images' holds 2 rows but 'metadata' holds 3"),
        (_truncate, r"run_planeX\.npz: not a readable NPZ archive"),
        (_plane_column, r"run_planeU\.npz: row 2 .*column 'plane' is 2; expected 0"),
        (lambda p: _rewrite(p["U"], images=np.zeros((3, 128), np.float32)),
         r"run_planeU\.npz: 'images' must have shape \(N, T, C\)"),
    ],
    ids=["missing-plane", "wrong-keys", "metadata-width", "nan-pixels", "row-count", "truncated",
         "plane-column", "images-2d"],
)
def test_bad_input_raises_clear_error(tmp_path, spoil, message):
    paths = _one_base(tmp_path)
    spoil(paths)
    out = tmp_path / "out" / "x.h5"
    with pytest.raises(LegacyNpzError, match=message) as info:
        convert_npz([tmp_path / "in"], out)
    assert isinstance(info.value, InputError)
    assert "\n" not in str(info.value)
    assert not out.exists()
    assert not (out.parent.exists() and any(out.parent.iterdir()))   # no partial output


def test_all_files_of_other_shape_is_an_error_with_a_hint(tmp_path):
    write_base(tmp_path, "old", 1, "flat", matched=[(0, 0)], shapes=dict.fromkeys("UVX", (128, 16)))
    with pytest.raises(LegacyNpzError, match=r"no events to write.*files_skipped_shape 3.*--image-shape"):
        convert_npz([tmp_path], tmp_path / "o.h5")
    assert not (tmp_path / "o.h5").exists()


def test_bad_paths(tmp_path):
    with pytest.raises(LegacyNpzError, match="no such file or folder"):
        find_plane_files([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LegacyNpzError, match="no '<base>_plane"):
        find_plane_files([tmp_path / "empty"])
    other = tmp_path / "other.npz"
    np.savez(other, images=np.zeros((1, 128, 32)))
    with pytest.raises(LegacyNpzError, match="not a plane file"):
        find_plane_files([other])
    # the same base and plane both flat and in a sub-folder is ambiguous
    write_base(tmp_path / "both", "r", 1, "flat", matched=[(0, 0)])
    write_base(tmp_path / "both", "r", 1, "sub", matched=[(0, 0)])
    with pytest.raises(LegacyNpzError, match="already has a plane"):
        find_plane_files([tmp_path / "both"])


def test_read_plane_file_checks_plane_and_pixels(tmp_path):
    paths = _one_base(tmp_path)
    f = read_plane_file(paths["X"])
    assert f.plane == "X" and f.images.shape == (3, 128, 32) and f.metadata.shape == (3, 14)
    assert sorted(map(tuple, f.keys.tolist())) == [(0, 0), (1, 0), (2, 1)]
    with np.load(paths["U"]) as z:
        img = z["images"].copy()
    img[0, 3, 3] = -5
    _rewrite(paths["U"], images=img)
    with pytest.raises(LegacyNpzError, match=r"row 0 .*negative pixels"):
        read_plane_file(paths["U"])


def test_cli_bad_input_is_one_line_exit_1(tmp_path):
    paths = _one_base(tmp_path)
    paths["V"].unlink()
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        code = cli.main(["convert-npz", str(tmp_path / "in"), "--out", str(tmp_path / "o.h5")])
    assert code == 1
    lines = err.getvalue().strip().splitlines()
    assert lines[-1].startswith("edkeras convert-npz: error: base 'run'")
    assert "run_planeV.npz" in lines[-1]


def test_truth_taken_from_x_when_planes_disagree(tmp_path):
    paths = write_base(tmp_path, "t", 1, "flat", matched=[(0, 0), (1, 0)], seed=0)
    with np.load(paths["V"]) as z:
        meta = z["metadata"].copy()
    row = int(np.flatnonzero(meta[:, 0] == 1)[0])
    meta[row, 7:10] = [1.0, 0.0, 0.0]                    # V claims another momentum for (1, 0)
    _rewrite(paths["V"], metadata=meta)
    result = convert_npz([tmp_path], tmp_path / "o.h5")
    assert result.counts["events_truth_differs"] == 1
    assert result.counts["events_written"] == 2          # kept
    b = open_events(tmp_path / "o.h5").read()
    t = key_truth(1, 1, 0)
    i = int(np.flatnonzero(b.U[:, 0, 0] == 2)[0])
    np.testing.assert_allclose(b.direction[i], t["p"] / np.linalg.norm(t["p"]), rtol=1e-5)


def test_zero_momentum_on_one_plane_drops_the_event(tmp_path):
    paths = write_base(tmp_path, "z", 1, "flat", matched=[(0, 0), (1, 0), (2, 0)], seed=0)
    with np.load(paths["U"]) as z:
        meta = z["metadata"].copy()
    meta[meta[:, 0] == 2, 7:10] = 0.0
    _rewrite(paths["U"], metadata=meta)
    result = convert_npz([tmp_path], tmp_path / "o.h5")
    assert result.counts["events_zero_momentum"] == 1
    b = open_events(tmp_path / "o.h5").read()
    assert sorted(b.U[:, 0, 0].tolist()) == [1.0, 2.0]     # events 0 and 1 (fingerprint event + 1)
