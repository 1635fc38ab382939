"""Outputs a user can trust: no stale samples, no overwritten references, logs for unattended runs,
readable files, and one clear line for every rough edge."""
import json
import os
import stat

import pytest
from conftest import assert_clean_error, run_cli

TINY = ["--preset", "digits-tiny", "--D", "64", "--quiet", "--set", "train.snapshot_kimg=0.128",
        "--set", "train.checkpoint_kimg=0.128"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trust") / "r"
    p = run_cli("train", *TINY, "--kimg", "0.384", "--out", out, env={"PFGMBENCH_PROGRESS_S": "0"})
    assert p.returncode == 0, p.stderr
    return out


def test_run_folder_has_log_loss_plot_and_unique_snapshot_names(run):
    names = sorted(p.name for p in run.glob("network-snapshot-*.pt"))
    # 0.128-kimg snapshots of 64-image steps: 0.128, 0.256, 0.384 -> three distinct names
    assert names == ["network-snapshot-000000.128.pt", "network-snapshot-000000.256.pt",
                     "network-snapshot-000000.384.pt"]
    log = (run / "log.txt").read_text().splitlines()
    assert log and all(ln.startswith("train: ") and "kimg" in ln and "loss" in ln and "img/s" in ln for ln in log)
    assert (run / "loss.png").stat().st_size > 1000
    assert json.loads((run / "provenance.jsonl").read_text().splitlines()[0])["commit"]


def test_files_are_written_with_the_users_umask(tmp_path):
    env = {"PFGMBENCH_PROGRESS_S": "0"}
    old = os.umask(0o022)
    try:
        p = run_cli("train", *TINY, "--kimg", "0.128", "--out", tmp_path / "r", env=env)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    for name in ("training-state.pt", "network-snapshot-000000.128.pt", "config.yaml", "loss.png"):
        mode = stat.S_IMODE((tmp_path / "r" / name).stat().st_mode)
        assert mode == 0o644, (name, oct(mode))


def test_progress_lines_go_to_stderr_when_not_a_terminal(run, tmp_path):
    p = run_cli("sample", "--run", run, "--seeds", "0-3", "--steps", "3", "--out", tmp_path / "s",
                env={"PFGMBENCH_PROGRESS_S": "0"})
    assert p.returncode == 0, p.stderr
    assert any(ln.startswith("sample: 4/4 images (100%)") for ln in p.stderr.splitlines()), p.stderr
    assert len(p.stdout.strip().splitlines()) == 1 and "newly generated" in p.stdout   # stdout: the result only


def test_sample_manifest_refuses_other_settings_and_overwrite_replaces(run, tmp_path):
    out = tmp_path / "s"
    first = json.loads(run_cli("sample", "--run", run, "--seeds", "0-3", "--steps", "3", "--out", out, "--json").stdout)
    assert first["generated"] == 4 and first["nfe"] == 5
    again = json.loads(run_cli("sample", "--run", run, "--seeds", "0-5", "--steps", "3", "--out", out, "--json").stdout)
    assert again["generated"] == 2 and again["images"] == 6         # only the missing seeds
    for extra, setting in ((["--steps", "4"], "steps"), (["--steps", "3", "--alpha", "0.1"], "alpha"),
                           (["--steps", "3", "--quant-bits", "6"], "quant_bits"),
                           (["--steps", "3", "--sampler", "euler"], "sampler"),
                           (["--steps", "3", "--ckpt", sorted(run.glob("network-snapshot-*.pt"))[0]],
                            "checkpoint_sha256")):
        args = ["sample", "--seeds", "0-3", "--out", out, *extra]
        if "--ckpt" not in extra:
            args += ["--run", run]
        assert_clean_error(run_cli(*args), setting, "--overwrite")
    p = run_cli("sample", "--run", run, "--seeds", "0-3", "--steps", "4", "--out", out, "--overwrite", "--json")
    res = json.loads(p.stdout)
    assert res["generated"] == 4 and res["nfe"] == 7
    assert sorted(f.name for f in out.glob("*.png")) == [f"{i:06d}.png" for i in range(4)]   # the old 4, 5 are gone
    assert json.loads((out / "manifest.json").read_text())["settings"]["steps"] == 4
    (out / "manifest.json").unlink()       # PNGs of unknown settings: resuming would mix them in
    assert_clean_error(run_cli("sample", "--run", run, "--seeds", "0-5", "--steps", "4", "--out", out),
                       "no manifest.json", "--overwrite")
    assert len(list(out.glob("*.png"))) == 4


def test_runs_and_show(run):
    p = run_cli("runs", run.parent, "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert len(rows) == 1 and rows[0]["kimg_done"] == pytest.approx(0.384) and rows[0]["snapshots"] == 3
    assert rows[0]["D"] == 64 and rows[0]["status"] == "finished" and rows[0]["last_loss"] > 0
    p = run_cli("show", run, "--json")
    d = json.loads(p.stdout)
    assert d["config"]["physics"]["D"] == 64 and d["snapshot_kimg"] == [0.128, 0.256, 0.384]
    assert "kimg_done: 0.384" in run_cli("show", run).stdout
    assert_clean_error(run_cli("show", run.parent / "nope"), "not a run folder")


def test_reproduce_defaults_to_an_untracked_folder(tmp_path):
    from pfgmbench.tables.reproduce import default_out_dir

    assert str(default_out_dir("table1", "proxy")) == "runs/reproduce/table1-proxy"


def test_the_pfgm_table_answers_to_its_issue_name_and_writes_to_one_folder(tmp_path, monkeypatch):
    from pfgmbench.tables import reproduce as rep
    from pfgmbench.tables.specs import spec

    assert spec("pfgm-table") is spec("pfgm")
    seen = []
    monkeypatch.setattr(rep, "_best", lambda spec, scale, sc, seeds, out, *a: seen.append((spec.name, out)) or ("", 0))
    monkeypatch.chdir(tmp_path)
    rep.reproduce("pfgm-table", "proxy")
    assert seen == [("pfgm", rep.default_out_dir("pfgm", "proxy"))]


def test_reproduce_accepts_every_table_and_alias_and_refuses_others():
    from pfgmbench.tables.specs import ALIASES, COMPOSITES, SPECS, reproducible

    assert set(reproducible()) == set(SPECS) | set(ALIASES) | set(COMPOSITES)
    r = run_cli("reproduce", "table9")
    assert r.returncode == 2 and "table3-all" in r.stderr and "pfgm-table" in r.stderr


@pytest.mark.parametrize("args,words", [
    (["train", *TINY, "--out", "{file}"], ["is a file"]),
    (["sample", "--run", "{run}", "--out", "{file}"], ["is a file"]),
    (["sample", "--run", "{run}", "--out", "{tmp}/s", "--device", "cuda"], ["no CUDA GPU", "--device cpu"]),
    (["sample", "--run", "{run}", "--out", "{tmp}/s", "--batch", "0"], ["--batch must be >= 1"]),
    (["sample", "--run", "{run}", "--out", "{tmp}/s", "--class", "3"], ["class-conditional"]),
    (["sample", "--run", "{run}", "--out", "{tmp}/s", "--sampler", "rk99"], ["sampler 'rk99'", "heun"]),
    (["eval", "--samples", "{tmp}", "--metric", "fd-digits", "--num", "10"], ["--num", "applies only when generating"]),
    (["eval", "--samples", "{tmp}", "--metric", "fd-digits", "--all-snapshots"], ["--all-snapshots"]),
    (["train", *TINY, "--set", "train.lrr=1", "--out", "{tmp}/x"], ["did you mean train.lr"]),
    (["train", *TINY, "--set", "lr=1", "--out", "{tmp}/x"], ["did you mean", "train.lr"]),
    (["train", *TINY, "--family", "edm", "--out", "{tmp}/x"], ["family edm", "D = inf"]),
    (["sample", "--run", "{run}", "--out", "{tmp}/s", "--quant-rule", "bogus"], ["quant-rule"]),
    (["sample", "--run", "{run}", "--out", "{tmp}/afile/s", "--steps", "2"], ["not a directory", "afile"]),
    (["eval", "--samples", "{tmp}/bad.npz", "--metric", "fd-digits"], ["bad.npz", "samples"]),
    (["eval", "--samples", "{tmp}/mixed", "--metric", "fd-digits"], ["mixed", "size"]),
])
def test_rough_edges_get_one_line(run, tmp_path, args, words):
    (tmp_path / "afile").write_text("x")
    import numpy as np
    from PIL import Image

    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 8, 8), np.uint8))     # no 'samples' array
    (tmp_path / "mixed").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "mixed" / "000000.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "mixed" / "000001.png")
    subst = {"{file}": str(tmp_path / "afile"), "{run}": str(run), "{tmp}": str(tmp_path)}
    p = run_cli(*[subst.get(a, a.replace("{tmp}", str(tmp_path))) for a in args])
    assert_clean_error(p, *words)
    assert not (tmp_path / "x").exists() and not (tmp_path / "s").exists()


def test_one_seed_syntax_version_and_help_examples(tmp_path):
    p = run_cli("sweep-d", "--preset", "digits-tiny", "--values", "inf", "--seeds", "0-1", "--kimg", "0.128",
                "--set", "train.snapshot_kimg=0.128", "--num", "8", "--steps", "2", "--runs-dir", tmp_path / "runs",
                "--out", tmp_path / "s.csv", "--quiet")
    assert p.returncode == 0, p.stderr
    import pandas as pd

    assert sorted(pd.read_csv(tmp_path / "s.csv")["seed"].unique()) == [0, 1]
    assert_clean_error(run_cli("sweep-d", "--seeds", "2-0", "--out", tmp_path / "x.csv"), "seed")
    v = run_cli("--version")
    assert v.returncode == 0 and "pfgmbench" in v.stdout
    for cmd in ("train", "sample", "eval", "sweep-d", "sweep", "reproduce", "robustness", "runs", "show", "table"):
        h = run_cli(cmd, "--help")
        assert h.returncode == 0 and "Example" in h.stdout, cmd


def test_conditional_sampling_with_a_fixed_class(tmp_path):
    out = tmp_path / "c"
    p = run_cli("train", *TINY, "--kimg", "0.128", "--cond", "--out", out)
    assert p.returncode == 0, p.stderr
    p = run_cli("sample", "--run", out, "--seeds", "0-3", "--steps", "3", "--class", "7", "--out", tmp_path / "s7",
                "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "s7" / "manifest.json").read_text())["settings"]["class"] == 7
    assert_clean_error(run_cli("sample", "--run", out, "--seeds", "0", "--class", "10", "--out", tmp_path / "z"),
                       "--class must be in 0..9")
