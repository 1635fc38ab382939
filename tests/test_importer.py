"""pfgmbench.importer: the authors' checkpoints imported without running code from them.

Checkpoints are made in the authors' layout by code installed under the authors' module names
(tests/authors_standin.py), then the modules are removed before importing. Tests that build one
run for two origins of that code:

  * "standin": stand-ins written for these tests (tests/authors_layout.py) that reproduce the
    layout of the authors' pickles; always runs, CI included.
  * "authors": the authors' own persistence.py / networks.py / loss.py, read from git mirrors of
    NVlabs/edm and Newbeeer/pfgmpp; skips where a mirror is absent.

test_standin_layout_matches_the_authors checks the stand-ins against the authors' code (mirrors
needed). The malicious-pickle and export round-trip tests need neither.
"""
import copy
import io
import math
import os
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import authors_standin as authors  # noqa: E402
import conftest  # noqa: E402

from pfgmbench import checkpoint  # noqa: E402
from pfgmbench.config import dump, resolve  # noqa: E402
from pfgmbench.errors import UserError  # noqa: E402
from pfgmbench.generate import sample_images  # noqa: E402
from pfgmbench.importer import export_edm_layout, import_checkpoint, recover_network  # noqa: E402
from pfgmbench.model import build_network  # noqa: E402

MIRROR_NAMES = {"edm": "NVlabs/edm", "pfgmpp": "Newbeeer/pfgmpp"}
needs_mirrors = pytest.mark.skipif(not (authors.available("edm") and authors.available("pfgmpp")),
                                   reason="no git mirrors of NVlabs/edm and Newbeeer/pfgmpp")


def origins(which):
    """Parametrize a test over where the authors' code comes from: the stand-ins (always) and the
    authors' own files (skipped without a git mirror of `which`)."""
    return pytest.mark.parametrize("origin", ["standin", pytest.param("authors", marks=pytest.mark.skipif(
        not authors.available(which), reason=f"no git mirror of {MIRROR_NAMES[which]}"))])


SMALL = dict(model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4], dropout=0.13,
             augment_dim=9)
NCSNPP = dict(embedding_type="fourier", channel_mult_noise=2, encoder_type="residual", resample_filter=[1, 3, 3, 1])
DDPMPP = dict(embedding_type="positional", channel_mult_noise=1, encoder_type="standard", resample_filter=[1, 1])
SMALL_SETS = ["net.model_channels=16", "net.channel_mult=[1,2]", "net.num_blocks=1", "net.attn_resolutions=[4]"]


@pytest.fixture
def install():
    """install(which, origin): the authors' modules for the test body; always removed afterwards."""
    yield authors.install
    authors.uninstall()


def randomise(net, seed=0):
    return conftest.randomise(net, seed, scale=0.2)


def authors_net(env, precond="EDMPrecond", label_dim=0, **kwargs):
    net = getattr(env.networks, precond)(img_resolution=8, img_channels=3, label_dim=label_dim, use_fp16=False,
                                         model_type="SongUNet", **SMALL, **kwargs)
    return randomise(copy.deepcopy(net).eval().requires_grad_(False)), net


def same_forward(theirs, run, label_dim=0):
    """The authors' network and the imported run's network agree on random inputs (1e-5)."""
    _, ours, _ = checkpoint.load_network(checkpoint.latest_snapshot(run))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 8, 8, generator=g)
    sigma = torch.tensor([0.01, 0.3, 2.0, 60.0])
    aug = torch.randn(4, 9, generator=g)
    labels = torch.eye(label_dim)[torch.arange(4) % label_dim] if label_dim else None
    with torch.no_grad():
        a = theirs(x, sigma, class_labels=labels, augment_labels=aug)
        b = ours(x, sigma, class_labels=labels, augment_labels=aug)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), (a - b).abs().max()


def assert_bit_identical(theirs_state, run_or_snapshot):
    path = Path(run_or_snapshot)
    snap = checkpoint.load(checkpoint.latest_snapshot(path) if path.is_dir() else path, checkpoint.SNAPSHOT_FORMAT)
    theirs = {k: v for k, v in theirs_state.items() if not k.endswith(".resample_filter")}
    assert set(theirs) == set(snap["ema"])
    for k, v in theirs.items():
        assert snap["ema"][k].dtype == v.dtype and torch.equal(snap["ema"][k], v), k
    return snap


def run_config(run):
    return yaml.safe_load((Path(run) / "config.yaml").read_text())


# ---------------------------------------------------------------------------------------------
# The authors' files


@origins("edm")
@pytest.mark.parametrize("precond,arch,label_dim,knobs", [
    ("EDMPrecond", NCSNPP, 0, {"sigma_data": 0.4}),
    ("VPPrecond", DDPMPP, 10, {"beta_d": 18.0, "beta_min": 0.2, "M": 500, "epsilon_t": 1e-4}),
    ("VEPrecond", NCSNPP, 0, {"sigma_min": 0.01, "sigma_max": 50}),
])
def test_edm_pkl_imports_bit_identical(install, tmp_path, origin, precond, arch, label_dim, knobs):
    env = install("edm", origin)
    ema, net = authors_net(env, precond, label_dim, **arch, **knobs)
    data = dict(ema=ema, loss_fn=env.loss.EDMLoss(), augment_pipe=None,
                dataset_kwargs=dict(class_name="training.dataset.ImageFolderDataset", path="cifar10-32x32.zip"))
    pkl = tmp_path / "network-snapshot-000042.pkl"
    with open(pkl, "wb") as f:
        pickle.dump(data, f)                      # exactly how EDM's training loop writes snapshots
    authors.uninstall()
    assert "torch_utils" not in sys.modules and "training.networks" not in sys.modules

    run = import_checkpoint(pkl, tmp_path / "run", preset="cifar10-ncsnpp")
    assert "torch_utils" not in sys.modules and not any(m.startswith("_imported_module_") for m in sys.modules)
    snap = assert_bit_identical(ema.state_dict(), run)
    assert snap["kimg"] == 42 and snap["data_shape"] == [3, 8, 8] and snap["num_classes"] == label_dim
    cfg = run_config(run)
    assert {k: cfg["net"][k] for k in (*SMALL, *arch)} == {**SMALL, **arch}
    assert cfg["data"]["cond"] is (label_dim > 0)
    family = {"EDMPrecond": "pfgmpp", "VPPrecond": "vp", "VEPrecond": "ve"}[precond]
    assert cfg["physics"]["family"] == family
    if family == "pfgmpp":
        assert cfg["physics"]["D"] == math.inf and cfg["physics"]["sigma_data"] == 0.4
    elif family == "vp":
        vp = cfg["physics"]["vp"]
        assert (vp["beta_d"], vp["beta_min"], vp["M"], vp["eps_t"]) == (18.0, 0.2, 500, 1e-4)
    else:
        assert (cfg["physics"]["ve"]["sigma_min"], cfg["physics"]["ve"]["sigma_max"]) == (0.01, 50.0)
    same_forward(ema, run, label_dim)


@origins("pfgmpp")
def test_pfgmpp_pt_imports_with_its_D(install, tmp_path, origin):
    env = install("pfgmpp", origin)
    ema, net = authors_net(env, pfgmpp=True, D=128, **DDPMPP)
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(2, 3, 8, 8), torch.ones(2)).square().mean().backward()
    opt.step()
    pt = tmp_path / "training-state-000002.pt"
    torch.save(dict(optimizer_state=opt.state_dict(), step=2048, ema=ema, net=net), pt)   # the fork's layout
    bare = copy.deepcopy(ema)                 # the same network, but without a recorded D
    del bare.D
    bare._init_kwargs.pop("D")
    torch.save(dict(ema=bare, step=2048), tmp_path / "no-D.pt")
    authors.uninstall()

    run = import_checkpoint(pt, tmp_path / "run", preset="cifar10-ddpmpp", D="128")
    snap = assert_bit_identical(ema.state_dict(), run)
    assert snap["kimg"] == 2.048 and run_config(run)["physics"]["D"] == 128
    same_forward(ema, run)

    with pytest.raises(UserError, match=r"D=128.*D=64") as e:
        import_checkpoint(pt, tmp_path / "run64", preset="cifar10-ddpmpp", D=64)
    assert "\n" not in str(e.value) and not (tmp_path / "run64").exists()
    with pytest.raises(UserError, match="--D"):
        import_checkpoint(tmp_path / "no-D.pt", tmp_path / "run-noD", preset="cifar10-ddpmpp")
    run = import_checkpoint(tmp_path / "no-D.pt", tmp_path / "run-D", preset="cifar10-ddpmpp", D=128)
    assert run_config(run)["physics"]["D"] == 128


@origins("edm")
def test_dhariwal_unet_is_refused(install, tmp_path, origin):
    env = install("edm", origin)
    net = env.networks.EDMPrecond(img_resolution=8, img_channels=3, model_type="DhariwalUNet", model_channels=16,
                                  channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4])
    with open(tmp_path / "adm.pkl", "wb") as f:
        pickle.dump(dict(ema=net), f)
    authors.uninstall()
    with pytest.raises(UserError, match="DhariwalUNet") as e:
        import_checkpoint(tmp_path / "adm.pkl", tmp_path / "run")
    assert "\n" not in str(e.value)


@origins("edm")
@pytest.mark.parametrize("tamper,named", [("extra parameter", "model.map_layer0.extra is unexpected"),
                                          ("norm eps", "'model.enc.8x8_block0.norm0' (GroupNorm) has eps=1e-05")])
def test_mismatch_is_refused_naming_it(install, tmp_path, origin, tamper, named):
    env = install("edm", origin)
    ema, _ = authors_net(env, **DDPMPP)
    if tamper == "extra parameter":
        ema.model.map_layer0.register_parameter("extra", torch.nn.Parameter(torch.zeros(3), requires_grad=False))
    else:
        ema.model.enc["8x8_block0"].norm0.eps = 1e-5
    (tmp_path / "net.pkl").write_bytes(pickle.dumps(dict(ema=ema)))
    authors.uninstall()
    with pytest.raises(UserError, match=re.escape(named)) as e:
        import_checkpoint(tmp_path / "net.pkl", tmp_path / "run", preset="cifar10-ddpmpp")
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# The stand-ins against the authors' code


class Recorded:
    """An object of a pickle under inspection: the global that made it, its arguments, state and items."""
    where = None

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.state, obj.items = args, None, {}
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):     # an OrderedDict's entries
        self.items[key] = value


class Recorder(pickle.Unpickler):
    """Unpickles without resolving any global (each becomes a Recorded subclass) and lists them."""

    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.globals = set()

    def find_class(self, module, name):
        self.globals.add(f"{module}.{name}")
        return type(name, (Recorded,), {"where": f"{module}.{name}"})


def layout(obj):
    """A recorded pickle without its weights' values and module sources: equal for two pickles with
    the same globals, persistent classes, attributes, init kwargs, tensor shapes and dtypes, and
    parameter / buffer / module tables in the same order."""
    if isinstance(obj, Recorded):
        if obj.where == "torch_utils.persistence._reconstruct_persistent_obj":
            meta = obj.args[0]
            assert isinstance(meta["module_src"], str)
            return {"persistent": (*sorted(meta), meta["type"], meta["version"], meta["class_name"]),
                    "state": layout(meta["state"])}
        if obj.where == "torch.storage._load_from_bytes":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")          # TypedStorage is deprecated (but is what the blob holds)
                storage = torch.load(io.BytesIO(obj.args[0]), weights_only=True)
                return {"storage": (storage.dtype, storage.size())}
        return {"global": obj.where, "args": layout(obj.args), "state": layout(obj.state), "items": layout(obj.items)}
    if isinstance(obj, dict):
        out = {k: layout(v) for k, v in obj.items()}
        out.update({f"{k} (order)": tuple(obj[k]) for k in ("_parameters", "_buffers", "_modules")
                    if isinstance(obj.get(k), dict)})
        return out
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, *map(layout, obj))
    if isinstance(obj, (set, frozenset)):
        return (type(obj).__name__, frozenset(map(layout, obj)))
    return obj


def first_difference(a, b, path="pickle"):
    """Where two layouts first differ (a readable path), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{path}: keys {sorted(set(a) ^ set(b))} in one only"
        return next((d for k in a if (d := first_difference(a[k], b[k], f"{path}[{k!r}]"))), None)
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := first_difference(x, y, f"{path}[{i}]"))),
                    None)
    return None if a == b else f"{path}: {a!r} != {b!r}"


@needs_mirrors
@pytest.mark.parametrize("which,precond,arch,label_dim,knobs", [
    ("edm", "EDMPrecond", NCSNPP, 0, {"sigma_data": 0.4}),
    ("edm", "VPPrecond", DDPMPP, 10, {"beta_d": 18.0, "beta_min": 0.2, "M": 500, "epsilon_t": 1e-4}),
    ("edm", "VEPrecond", NCSNPP, 3, {"sigma_min": 0.01, "sigma_max": 50}),
    ("pfgmpp", "EDMPrecond", DDPMPP, 0, {"pfgmpp": True, "D": 128}),
    ("pfgmpp", "EDMPrecond", NCSNPP, 10, {}),
])
def test_standin_layout_matches_the_authors(install, which, precond, arch, label_dim, knobs):
    """A stand-in pickle references the same globals as one made by the authors' code, with the same
    state_dict keys and shapes and, at every persistent object, the same class name, attributes,
    init kwargs and tables (only the weights' values and module_src differ)."""
    got = {}
    for origin in authors.ORIGINS:
        env = install(which, origin)
        ema, _ = authors_net(env, precond, label_dim, **arch, **knobs)
        data = dict(ema=ema, loss_fn=env.loss.EDMLoss(P_std=1.3) if which == "edm" else None)
        recorder = Recorder(pickle.dumps(data))
        got[origin] = (recorder.globals, [(k, tuple(v.shape)) for k, v in ema.state_dict().items()],
                       layout(recorder.load()))
        authors.uninstall()
    (globals_s, keys_s, layout_s), (globals_a, keys_a, layout_a) = got["standin"], got["authors"]
    assert globals_s == globals_a, f"stand-in only: {globals_s - globals_a}; authors' only: {globals_a - globals_s}"
    assert keys_s == keys_a, first_difference(tuple(keys_s), tuple(keys_a), "state_dict")
    difference = first_difference(layout_s, layout_a)
    assert difference is None, difference


# ---------------------------------------------------------------------------------------------
# Malicious files: refused, and nothing ran


class Reduce:
    """A pickle payload: unpickling calls fn(*args)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __call__(self, *args):        # pickle only accepts callables as reduce functions
        raise AssertionError

    def __reduce__(self):
        return self.fn, self.args


class Unlisted:
    """A class no checkpoint of the authors references."""


def payloads(marker):
    touch = f"touch {marker}"
    write = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": (Reduce(os.system, touch), "system"),
        "builtins.eval": (Reduce(eval, write), "builtins.eval"),
        "builtins.exec": (Reduce(exec, write), "builtins.exec"),
        "subprocess.Popen": (Reduce(subprocess.Popen, ["touch", str(marker)]), "subprocess.Popen"),
        "builtins.getattr": (Reduce(Reduce(getattr, Reduce(__import__, "os"), "system"), touch), "builtins.getattr"),
        "unknown class": (Unlisted(), "Unlisted"),
    }


@pytest.mark.parametrize("layout", ["pkl", "pt"])
@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                                  "builtins.getattr", "unknown class"])
def test_malicious_pickle_is_refused(tmp_path, kind, layout):
    marker = tmp_path / "MARKER"
    payload, named = payloads(marker)[kind]
    data = dict(ema=None, dataset_kwargs=dict(path=payload))
    path = tmp_path / f"evil.{layout}"
    if layout == "pkl":
        path.write_bytes(pickle.dumps(data))
    else:
        torch.save(data, path)
    with pytest.raises(UserError, match=named) as e:
        import_checkpoint(path, tmp_path / "run")
    assert "\n" not in str(e.value) and "refused" in str(e.value)
    assert not marker.exists() and not (tmp_path / "run").exists()
    if kind in ("os.system", "builtins.eval") and layout == "pkl":
        pickle.loads(path.read_bytes())           # the payload is live: a plain unpickle runs it
        assert marker.exists()


def test_persistent_module_src_is_never_run(tmp_path):
    marker = tmp_path / "MARKER"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nclass Evil: pass\n"
    authors.install_name_only()
    try:
        evil = pickle.dumps(dict(ema=authors.Persistent("Evil", module_src=src)))
        adm = pickle.dumps(dict(ema=authors.Persistent("EDMPrecond", module_src=src, state={
            "_modules": {"model": authors.Persistent("DhariwalUNet", module_src=src)}})))
    finally:
        authors.uninstall()
    (tmp_path / "evil.pkl").write_bytes(evil)
    (tmp_path / "adm.pkl").write_bytes(adm)
    with pytest.raises(UserError, match="Evil") as e:
        import_checkpoint(tmp_path / "evil.pkl", tmp_path / "run")
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="DhariwalUNet"):
        import_checkpoint(tmp_path / "adm.pkl", tmp_path / "run")
    assert not marker.exists()


@origins("edm")
def test_real_network_with_hostile_module_src_imports_without_running_it(install, tmp_path, origin):
    """The authors' loader (and the stand-in, which loads as it does) would execute module_src (it
    creates the marker); the importer reads the weights and never does."""
    env = install("edm", origin)
    marker = tmp_path / "MARKER"
    ema, _ = authors_net(env, **NCSNPP)
    hostile = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n" + env.networks_src
    for cls in vars(env.networks).values():
        if env.persistence.is_persistent(cls):
            cls._orig_module_src = hostile
    pkl = tmp_path / "network-snapshot-000001.pkl"
    pkl.write_bytes(pickle.dumps(dict(ema=ema)))
    authors.uninstall()

    run = import_checkpoint(pkl, tmp_path / "run", preset="cifar10-ncsnpp")
    assert not marker.exists()
    assert_bit_identical(ema.state_dict(), run)

    install("edm", origin)                         # a fresh authors' install has not seen this source
    pickle.loads(pkl.read_bytes())
    assert marker.exists()


# ---------------------------------------------------------------------------------------------
# Export to EDM's layout and back


def small_run(tmp_path, family="pfgmpp", D=128, seed=0):
    """A pfgmbench snapshot of a small random NCSN++ (8x8x3) for `family`."""
    cfg = resolve("cifar10-ncsnpp", D=D if family == "pfgmpp" else None, family=family, sets=SMALL_SETS)
    net = randomise(build_network(cfg, (3, 8, 8), 0), seed)
    path = tmp_path / "orig" / "network-snapshot-000005.pt"
    path.parent.mkdir()
    (path.parent / "config.yaml").write_text(dump(cfg))
    checkpoint.save(path, {"format": checkpoint.SNAPSHOT_FORMAT, "config": dump(cfg), "kimg": 5.0,
                           "ema": net.state_dict(), "data_shape": [3, 8, 8], "num_classes": 0})
    return path


def samples(snapshot, seeds=(0, 1, 2), steps=4):
    cfg, net, snap = checkpoint.load_network(snapshot)
    return torch.cat([x for _, x, _ in sample_images(net, cfg, (3, 8, 8), 0, list(seeds), steps, 8, "cpu")])


def test_export_import_round_trip_is_bit_identical(tmp_path):
    orig = small_run(tmp_path, D=128)
    pkl = export_edm_layout(orig, tmp_path / "exported.pkl")
    run = import_checkpoint(pkl, tmp_path / "run", preset="cifar10-ncsnpp")
    assert_bit_identical(checkpoint.load(orig, checkpoint.SNAPSHOT_FORMAT)["ema"], run)
    got = checkpoint.latest_snapshot(run)
    assert run_config(run)["physics"]["D"] == 128 and run_config(run)["net"] == run_config(orig.parent)["net"]
    assert torch.equal(samples(orig), samples(got))

    with pytest.raises(UserError, match="D=128"):
        import_checkpoint(pkl, tmp_path / "other", D=2048)
    with pytest.raises(UserError, match="already a run folder"):
        import_checkpoint(pkl, run)


@pytest.mark.parametrize("family,knob", [("edm", ("D", math.inf)), ("vp", ("vp", "beta_d")),
                                         ("ve", ("ve", "sigma_max"))])
def test_export_round_trip_other_families(tmp_path, family, knob):
    orig = small_run(tmp_path, family=family, D=None)
    run = import_checkpoint(export_edm_layout(orig.parent, tmp_path / "e.pkl"), tmp_path / "run",
                            preset="cifar10-ncsnpp")
    assert_bit_identical(checkpoint.load(orig, checkpoint.SNAPSHOT_FORMAT)["ema"], run)
    before, after = run_config(orig.parent), run_config(run)
    assert after["physics"]["family"] == ("pfgmpp" if family == "edm" else family)
    section, key = knob
    if family == "edm":
        assert after["physics"]["D"] == math.inf
    else:
        assert after["physics"][section] == before["physics"][section], key
    with pytest.raises(UserError, match="D"):
        import_checkpoint(tmp_path / "e.pkl", tmp_path / "run2", D=64)


@origins("pfgmpp")
def test_export_loads_in_the_authors_code(install, tmp_path, origin):
    """The exported .pkl is a working checkpoint for the authors' own loader (their networks.py
    substituted for the placeholder source), with the same outputs as pfgmbench's network."""
    orig = small_run(tmp_path, D=128, seed=3)
    pkl = export_edm_layout(orig, tmp_path / "exported.pkl")
    env = install("pfgmpp", origin)
    authors.use_networks_source(env)
    theirs = pickle.loads(pkl.read_bytes())["ema"]
    assert type(theirs).__name__ == "EDMPrecond" and theirs.D == 128 and theirs.pfgmpp is True
    same_forward(theirs, orig.parent)


def test_recover_network_refuses_a_non_network(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"step": 3}))
    with pytest.raises(UserError, match="no EDM / PFGM\\+\\+ network"):
        recover_network(path)


def test_import_command_and_robustness_from_checkpoints(tmp_path):
    """The whole path a user takes: an authors'-layout file -> `pfgmbench import` -> `sample` gives the
    original's images bitwise -> `reproduce table3 --from-checkpoints` stresses it without training."""
    from conftest import assert_clean_error, run_cli

    p = run_cli("train", "--preset", "digits-tiny", "--D", "64", "--kimg", "0.128", "--quiet", "--set",
                "train.snapshot_kimg=0.128", "--out", tmp_path / "orig")
    assert p.returncode == 0, p.stderr
    released = tmp_path / "released"
    released.mkdir()
    export_edm_layout(tmp_path / "orig", released / "network-snapshot-000000.pkl")
    p = run_cli("import", released / "network-snapshot-000000.pkl", "--preset", "digits-tiny",
                "--out", released / "imported" / "network-snapshot-000000")
    assert p.returncode == 0, p.stderr
    for run, out in ((tmp_path / "orig", "a"), (released / "imported" / "network-snapshot-000000", "b")):
        assert run_cli("sample", "--run", run, "--seeds", "0-3", "--steps", "4", "--out", tmp_path / out).returncode == 0
    for i in range(4):
        assert (tmp_path / "a" / f"{i:06d}.png").read_bytes() == (tmp_path / "b" / f"{i:06d}.png").read_bytes()
    assert_clean_error(run_cli("import", released / "network-snapshot-000000.pkl", "--preset", "digits-tiny",
                               "--D", "128", "--out", tmp_path / "x"), "D=64")
    p = run_cli("reproduce", "table3", "--from-checkpoints", released, "--num", "16", "--out-dir", tmp_path / "t3",
                "--quiet")
    assert p.returncode == 0, p.stderr
    md = (tmp_path / "t3" / "table3.md").read_text()
    assert "| PFGM++ | 64 | 64 |" in md and "weight bits 2 (ours)" in md
