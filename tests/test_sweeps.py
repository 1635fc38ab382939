"""Sweeps resume without lost, duplicated or torn rows; tables render beside the paper's numbers."""
import math

import pandas as pd
import pytest
from conftest import assert_clean_error

from pfgmbench.errors import UserError
from pfgmbench.physics.pfgmpp import PFGMPP
from pfgmbench.regression import compare
from pfgmbench.tables.render import render_best_table
from pfgmbench.tables.results import COLUMNS, ResultsCSV, load_results
from pfgmbench.tables.specs import SPECS, D_rows
from pfgmbench.tables.sweep import SweepSpec, run_sweep


def _spec(tmp_path, D_values=(64.0, math.inf), **kw):
    base = dict(preset="digits-tiny", rows=D_rows(D_values), seeds=[0], metric="fd-digits", num=40, kimg=0.512,
                score_from_kimg=0.0, table="table1", runs_dir=str(tmp_path / "runs"), device="cpu",
                sets=("train.snapshot_kimg=0.256", "train.checkpoint_kimg=0.256"))
    base.update(kw)
    return SweepSpec(**base)


def test_proxy_D_mapping_keeps_D_over_N():
    assert PFGMPP.proxy_knobs({"D": 2048}, 64, 3072)["D"] == pytest.approx(2048 * 64 / 3072, abs=1e-4)
    assert math.isinf(PFGMPP.proxy_knobs({"D": math.inf}, 64, 3072)["D"])
    assert PFGMPP.proxy_knobs({"D": 64}, 3072, 3072)["D"] == 64
    with pytest.raises(UserError, match="< 1"):
        PFGMPP.proxy_knobs({"D": 16}, 64, 3072)


def test_sweep_killed_midway_finishes_only_missing_cells(tmp_path, monkeypatch):
    import pfgmbench.evaluate as ev

    ref_csv, csv = tmp_path / "ref.csv", tmp_path / "out.csv"
    assert run_sweep(_spec(tmp_path), ref_csv, progress=False, log=lambda *_: None) == 4
    real, calls = ev.score_snapshot, []

    def dies_on_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(ev, "score_snapshot", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(_spec(tmp_path), csv, progress=False, log=lambda *_: None)
    monkeypatch.setattr(ev, "score_snapshot", real)
    with open(csv, "a") as f:           # a kill in the middle of a write leaves a torn line
        f.write("deadbeef,1,digits-tiny,pro")
    assert run_sweep(_spec(tmp_path), csv, progress=False, log=lambda *_: None) == 2
    a, b = pd.read_csv(ref_csv), pd.read_csv(csv)
    assert len(b) == 4 and b["cell"].is_unique and set(a["cell"]) == set(b["cell"])
    merged = a.merge(b, on="cell")
    assert (merged["value_x"] == merged["value_y"]).all()   # the same models and samples give the same numbers
    assert run_sweep(_spec(tmp_path), csv, progress=False, log=lambda *_: None) == 0


def test_sample_axis_scores_one_model_each_way(tmp_path):
    """--axis sample.steps=3,5 trains once and scores the model with each sampler setting."""
    from pfgmbench.tables.sweep import parse_axis

    spec = _spec(tmp_path, D_values=(64.0,), kimg=0.256, score_from_kimg=0.256, num=20,
                 variants=parse_axis("sample.steps=3,5"))
    assert run_sweep(spec, tmp_path / "out.csv", progress=False, log=lambda *_: None) == 2
    df = pd.read_csv(tmp_path / "out.csv")
    assert len(list((tmp_path / "runs" / "digits-tiny").iterdir())) == 1      # one trained model
    assert sorted(zip(df["variant"], df["nfe"])) == [("sample.steps=3", 5), ("sample.steps=5", 9)]   # Heun: 2n-1


def test_results_csv_drops_torn_line(tmp_path):
    p = tmp_path / "r.csv"
    t = ResultsCSV(p, COLUMNS)
    t.append({"cell": "a", "value": 1.0})
    with open(p, "a") as f:
        f.write("b,1,2")
    t2 = ResultsCSV(p, COLUMNS)
    assert t2.keys() == {"a"} and p.read_text().count("\n") == 2


def test_table_renders_ours_beside_the_paper(tmp_path):
    csv = tmp_path / "t.csv"
    run_sweep(_spec(tmp_path, seeds=[0, 1], D_values=[2048.0, math.inf]), csv, progress=False, log=lambda *_: None)
    md = render_best_table(load_results(csv, "table1"), SPECS["table1"])
    assert "| PFGM++ | 2048 | 42.67 |" in md and "| EDM | ∞ | ∞ |" in md
    assert "1.91 | 1.93 | 35" in md           # the paper's D=2048 row, labelled as the paper's
    assert "the paper's numbers, not ours" in md and "DDPM (cited)" in md
    assert "| PFGM++ (not run) | 64 | not run |" in md   # paper rows we did not run are shown as such
    assert "not in the results yet" in md
    assert "±" in md and "**Ordering.**" in md


def test_sweep_cli_errors(cli, tmp_path):
    assert_clean_error(cli("sweep-d", "--values", "64,0", "--out", tmp_path / "x.csv"), "D must be >= 1")
    assert_clean_error(cli("sweep-d", "--values", "16", "--preset", "digits-tiny", "--out", tmp_path / "x.csv"),
                       "< 1")
    assert_clean_error(cli("table", "--results", tmp_path / "none.csv"), "results file not found")
    assert not (tmp_path / "x.csv").exists()


def test_regression_compare_uses_seed_spread():
    base = pd.DataFrame({"group": ["g"] * 2, "D": [8.0, 8.0], "metric": ["swd"] * 2, "value": [1.0, 1.2]})
    ok, _ = compare(base.assign(value=[1.1, 1.3]), base)            # worse by 0.1 < 3 x std 0.1
    assert ok
    ok, lines = compare(base.assign(value=[1.6, 1.8]), base)        # worse by 0.6 > 0.3
    assert not ok and lines[0].startswith("FAIL")
    ok, _ = compare(base.assign(value=[0.2, 0.3]), base)            # better is fine
    assert ok


def test_sweep_axis_over_a_model_knob_and_set_knobs_are_kept(cli, tmp_path):
    """--axis physics.m=... makes one model per value (not one model scored twice); a knob given with
    --set stays in force when another axis is swept."""
    common = ["--preset", "digits-tiny", "--family", "yukawa", "--kimg", "0.128", "--num", "20", "--seeds", "0",
              "--quiet", "--runs-dir", tmp_path / "runs"]
    p = cli("sweep", *common, "--axis", "physics.m=0.5,1", "--out", tmp_path / "m.csv")
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(tmp_path / "m.csv")
    assert sorted(df["knobs"]) == ["m=0.5", "m=1.0"] and df["value"].nunique() == 2
    p = cli("sweep", *common, "--set", "physics.m=2", "--axis", "train.lr=1e-3", "--out", tmp_path / "lr.csv")
    assert p.returncode == 0, p.stderr
    assert list(pd.read_csv(tmp_path / "lr.csv")["knobs"]) == ["m=2.0"]
    assert_clean_error(cli("sweep", *common, "--axis", "physics.mm=1,2", "--out", tmp_path / "x.csv"), "physics.m")


def test_every_stress_table_has_a_source_at_each_scale():
    """A robustness table stresses another table's models; that table must run at the same scale."""
    for spec in SPECS.values():
        if spec.stress:
            for name, sc in spec.scales.items():
                SPECS[sc.source_table or spec.source_table].scale(name)     # raises when it has no such scale


def test_a_methods_table_is_drawn_as_bars_and_a_D_table_against_D(tmp_path):
    from pfgmbench.tables.render import best_plot_name, plot_best

    rows = []
    for family, knobs, sampler, base in (("pfgm", "", "rk45", 30.0), ("vp", "", "sde", 45.0),
                                         ("pfgmpp", "D=128", "heun", 38.0), ("pfgmpp", "D=inf", "heun", 33.0)):
        for seed in (0, 1):
            for i, kimg in enumerate((20.0, 25.0, 30.0)):
                rows.append(dict(family=family, paper_knobs=knobs, knobs=knobs, cond=False, sampler=sampler, variant="",
                                 seed=seed, kimg=kimg, value=base + seed + i, value_se=0.5, method=family, nfe=35,
                                 n=1000, floor=5.9, floor_n=297, far_out=0.0, metric="fd-digits", preset="digits-pfgm",
                                 scale="proxy"))
    df = pd.DataFrame(rows)
    assert best_plot_name(SPECS["pfgm"]) == "pfgm_methods.png"
    assert best_plot_name(SPECS["table1"]) == "table1_metric_vs_knob.png"
    for name in ("pfgm", "table1", "genphys-toy"):     # GenPhys has no paper numbers: one panel
        path = tmp_path / best_plot_name(SPECS[name])
        plot_best(df if name != "table1" else df[df["family"] == "pfgmpp"], SPECS[name], path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_sample_panels_draw_2d_toys_over_their_data(tmp_path):
    """A 2-D toy's panel shows its samples (C0 blue) over the data (grey), not an empty image grid."""
    import matplotlib.image as mpimg
    import numpy as np

    from pfgmbench.tables.reproduce import sample_grids

    csv = tmp_path / "t.csv"
    spec = _spec(tmp_path, D_values=[math.inf], preset="toy-heart", metric="swd", num=50,
                 sets=("train.snapshot_kimg=0.256", "train.checkpoint_kimg=0.256"))
    run_sweep(spec, csv, progress=False, log=lambda *_: None)
    sample_grids(load_results(csv, "table1"), tmp_path / "s.png")
    rgb = mpimg.imread(tmp_path / "s.png")[:, :, :3]
    blue = np.abs(rgb - np.array([0x1F, 0x77, 0xB4]) / 255).max(axis=2) < 0.05
    grey = np.abs(rgb - 0.8).max(axis=2) < 0.02
    assert blue.sum() > 200 and grey.sum() > 200, (blue.sum(), grey.sum())


def test_a_tables_baselines_come_only_from_models_trained_as_long(tmp_path):
    """Table 1's optional baseline rows are taken from other tables' results only when those models ran on
    the same data and metric for the same training length: a 30-kimg DDIM beside 90-kimg PFGM++ would
    measure the budget, not the method."""
    from pfgmbench.tables.reproduce import _with_optional_rows

    def rows(table, family, sampler, knobs, run, last_kimg):
        return [dict({c: "" for c in COLUMNS}, table=table, data="digits", metric="fd-digits", family=family,
                     sampler=sampler, knobs=knobs, paper_knobs=knobs, cond=0, seed=0, kimg=k, value=30.0,
                     checkpoint=f"runs/x/{run}/network-snapshot-{k:010.3f}.pt")
                for k in (last_kimg - 10, last_kimg - 5, last_kimg)]

    long_rows = pd.DataFrame(rows("table1-long", "pfgmpp", "heun", "D=inf", "edm", 90.0))
    for name, last in (("short", 30.0), ("long", 90.0)):
        folder = tmp_path / name / "pfgm-proxy"
        folder.mkdir(parents=True)
        pd.DataFrame(rows("pfgm", "vp", "ddim", "", "vp", last), columns=COLUMNS).to_csv(folder / "results.csv",
                                                                                        index=False)
        older = tmp_path / name / "table3-proxy"      # an older run's rows, from before rows named their family
        older.mkdir()
        pd.DataFrame(rows("quant", "", "", "D=inf", "q", last), columns=COLUMNS).to_csv(older / "results.csv",
                                                                                       index=False)
        (tmp_path / name / "table1-long-proxy").mkdir()
        df = _with_optional_rows(long_rows, SPECS["table1-long"], tmp_path / name, "proxy")
        assert (df["family"] == "vp").sum() == (3 if name == "long" else 0), name


def test_a_stress_table_renders_only_its_own_rows(tmp_path):
    """A robustness folder that still holds an older run's rows (another table name, other models) is not
    mixed into the table being reproduced."""
    from pfgmbench.tables.robustness import load_robustness

    rows = [dict({c: "" for c in COLUMNS}, table=t, family="pfgmpp", knobs="D=inf", paper_knobs="D=inf",
                 seed=0, kimg=k, value=10.0, quant_bits=b, metric="fd-digits")
            for t, k in (("quant", 30.0), ("table3", 90.0)) for b in (8, 4)]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "r.csv", index=False)
    assert len(load_robustness(tmp_path / "r.csv", "quant")) == 4
    df = load_robustness(tmp_path / "r.csv", "quant", "table3")
    assert len(df) == 2 and set(df["kimg"]) == {90.0}


def test_a_table_that_scores_only_the_last_snapshot_follows_a_changed_duration():
    """table1-regime scores the last snapshot alone: with --kimg 100 (or 400) that is the snapshot at
    100 (400), not a fixed 200 that a shorter run never reaches."""
    from pfgmbench.tables.specs import INF
    from pfgmbench.tables.sweep import make_spec

    last = SPECS["table1-regime"].scales["proxy"].score_last
    assert last == 1
    for kimg in (None, 100.0, 400.0):
        spec = make_spec("digits32-table", D_rows([INF]), [0], kimg=kimg, score_last=last)
        assert abs(spec.score_from_kimg - (kimg or 200.0)) < 1e-3
    three = make_spec("digits32-table", D_rows([INF]), [0], kimg=100.0)
    assert abs(three.score_from_kimg - 0.0) < 1e-3      # the default, last three: 100 - 2 x 50
