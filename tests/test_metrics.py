"""FID / IS / proxy metrics: closed forms, parity with clean-fid, the offline error path."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_clean_error
from PIL import Image
from standin_detector import build as build_standin

from pfgmbench.metrics.frechet import fd_from_features, frechet_distance
from pfgmbench.metrics.inception_score import inception_score


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 32))
    assert abs(fd_from_features(x, x)) < 1e-8


def test_one_dimensional_closed_form():
    """FD between N(m1, s1^2) and N(m2, s2^2) in 1-D = (m1 - m2)^2 + (s1 - s2)^2."""
    assert frechet_distance([0.3], [[4.0]], [-1.2], [[0.25]]) == pytest.approx(1.5 ** 2 + 1.5 ** 2, rel=1e-12)


@pytest.mark.parametrize("d", [8, 256])
def test_parity_with_cleanfid(d):
    from cleanfid.fid import frechet_distance as cleanfid_fd

    rng = np.random.default_rng(d)
    a = rng.normal(size=(3 * d, d))
    b = rng.normal(size=(3 * d, d)) @ rng.normal(size=(d, d)) * 0.3
    args = (a.mean(0), np.cov(a, rowvar=False), b.mean(0) + 0.5, np.cov(b, rowvar=False))
    ours, theirs = frechet_distance(*args), cleanfid_fd(*args)
    assert abs(ours - theirs) / abs(theirs) < 1e-6


def test_inception_score_limits():
    assert inception_score(np.full((100, 10), 0.1), splits=10)[0] == pytest.approx(1.0)
    K = 7
    onehot = np.eye(K)[np.arange(700) % K]   # every split holds each class equally often
    mean, std = inception_score(onehot, splits=10)
    assert mean == pytest.approx(K) and std == pytest.approx(0, abs=1e-9)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return build_standin(tmp_path_factory.mktemp("detector"))


@pytest.fixture(scope="module")
def image_folders(tmp_path_factory):
    rng = np.random.default_rng(0)
    out = []
    for k in range(2):
        d = tmp_path_factory.mktemp(f"imgs{k}")
        imgs = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
        if k:
            imgs = (imgs // 2 + 60).astype(np.uint8)
        for i, a in enumerate(imgs):
            Image.fromarray(a).save(d / f"{i:06d}.png")
        out.append((d, torch.from_numpy(imgs.transpose(0, 3, 1, 2).copy())))
    return out


@pytest.mark.parametrize("mode", ["legacy_tensorflow", "clean"])
def test_standin_drives_cleanfid_folder_and_memory_paths(standin, image_folders, mode, tmp_path):
    from cleanfid.fid import compute_fid
    from cleanfid.inception_torchscript import InceptionV3W

    from pfgmbench.metrics import detector, fid
    from pfgmbench.metrics.frechet import feature_stats

    det = detector.InceptionDetector(standin, mode)
    (d1, x1), (d2, x2) = image_folders
    f_folder, p_folder = fid.folder_features(det, d1, batch_size=7)
    f_mem, p_mem = fid.memory_features(det, [x1[:10], x1[10:]])
    assert np.allclose(f_folder, f_mem, rtol=1e-5, atol=1e-6)
    ref = feature_stats(fid.folder_features(det, d2)[0])
    s_folder, s_mem = fid.score(f_folder, p_folder, ref), fid.score(f_mem, p_mem, ref)
    assert abs(s_folder["fid"] - s_mem["fid"]) / s_folder["fid"] < 1e-6
    assert abs(s_folder["is"] - s_mem["is"]) / s_folder["is"] < 1e-6
    # IS from the shared pass equals the detector's own no-output-bias softmax
    with torch.no_grad():
        probs = torch.jit.load(str(standin))(det.prepare(x1), no_output_bias=True).double().numpy()
    assert np.allclose(p_mem, probs, atol=1e-6)
    # clean-fid's own wrapper of the detector gives the same features, and its FID the same number
    w = InceptionV3W(str(standin.parent), download=False, resize_inside=mode == "legacy_tensorflow")
    x_in = det.prepare(x1)
    with torch.no_grad():
        assert np.allclose(w(x_in).double().numpy(), f_mem, rtol=1e-5, atol=1e-6)
    theirs = compute_fid(str(d1), str(d2), mode=mode, num_workers=0, batch_size=8, device=torch.device("cpu"),
                         custom_feat_extractor=lambda x: det.forward_prepared(x)[0], verbose=False,
                         use_dataparallel=False)
    assert abs(theirs - s_folder["fid"]) / theirs < 1e-6
    assert not (tmp_path / "inception-2015-12-05.pt").exists()


def test_eval_cli_with_standin_and_ref_stats(cli, standin, image_folders, tmp_path):
    from pfgmbench.metrics import detector, fid
    from pfgmbench.metrics.frechet import feature_stats

    (d1, _), (d2, _) = image_folders
    det = detector.InceptionDetector(standin)
    mu, sigma = feature_stats(fid.folder_features(det, d2)[0])
    fid.save_ref_stats(tmp_path / "ref.npz", mu, sigma)
    p = cli("eval", "--samples", d1, "--metric", "fid", "--ref-stats", tmp_path / "ref.npz", "--json",
            env={"PFGMBENCH_INCEPTION": str(standin)})
    assert p.returncode == 0, p.stderr
    import json

    res = json.loads(p.stdout)
    assert res["metric"] == "fid" and res["n"] == 24 and res["mode"] == "legacy_tensorflow"
    assert res["ref_stats"].endswith("ref.npz") and len(res["detector_sha256"]) == 64
    assert res["value"] > 0 and res["is"] >= 1


def test_offline_detector_error_is_clear_and_fast(cli, tmp_path):
    env = {"PFGMBENCH_CACHE": str(tmp_path / "cache"), "http_proxy": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "PFGMBENCH_INCEPTION": ""}
    (tmp_path / "s").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "s" / "000000.png")
    for extra in ([], ["--download"]):
        p = cli("eval", "--samples", tmp_path / "s", "--metric", "fid", "--ref-stats", "x.npz", *extra,
                env=env, timeout=60)
        assert_clean_error(p, "inception-2015-12-05.pt")
    assert not any((tmp_path / "cache").rglob("*.pt")) and not any((tmp_path / "cache").rglob("*.tmp"))


def test_fd_digits_orders_cases():
    from pfgmbench.data import load_dataset
    from pfgmbench.metrics import digits

    net, acc, _ = digits.classifier()
    assert acc >= 0.97
    te = load_dataset({"name": "digits"}, split="test").data
    box = F.avg_pool2d(F.pad(te, (1, 1, 1, 1), mode="replicate"), 3, 1)
    blurred = digits.fd_digits(0.7 * te + 0.3 * box)
    noise = digits.fd_digits(torch.rand(len(te), 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert blurred["floor"] < blurred["value"] < noise["value"]
    uniform_is = digits.is_digits(torch.rand(300, 1, 8, 8) * 2 - 1)["value"]
    assert uniform_is < digits.is_digits(te)["value"]


def test_toy_metrics():
    from pfgmbench.metrics.toy import energy_distance, mmd_rbf, sliced_w2

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1500, 4, generator=g), torch.randn(1500, 4, generator=g)
    m = torch.tensor([1.0, 0.0, 0.0, 0.0])
    for fn in (mmd_rbf, energy_distance):
        assert abs(fn(a, b)) < 0.3 * fn(a, b + m)
    # sliced W2 of N(0, I) vs N(m, I): sqrt(E_theta (m . theta)^2) = |m| / sqrt(d)
    assert sliced_w2(a, b + m, projections=2000) == pytest.approx(0.5, abs=0.06)
    assert sliced_w2(a, b, projections=500) < 0.1


def fd_digits_as_a_worker(images):
    """fd-digits called as a torchrun worker would: one thread, inside no_grad; the caller's RNG and
    thread count must come back untouched."""
    from pfgmbench.metrics import digits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(123)
        before = torch.get_rng_state()
        with torch.no_grad():
            out = digits.fd_digits(images)
        assert torch.equal(torch.get_rng_state(), before)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    return out


def test_first_score_on_a_new_machine_uses_the_shipped_classifier(cli, tmp_path, monkeypatch):
    """A machine that has never seen pfgmbench: empty cache and home. fd-digits uses the classifier
    weights that ship with the package (the same metric on every machine), writes nothing to the
    cache, and gives the same value whatever the caller's thread count, without touching its RNG."""
    from pfgmbench.data import load_dataset
    from pfgmbench.metrics import digits

    te = load_dataset({"name": "digits"}, split="test").data[:64]
    u8 = ((te * 127.5 + 128).clamp(0, 255)).to(torch.uint8)
    np.savez(tmp_path / "samples.npz", samples=u8.numpy())
    env = {"PFGMBENCH_CACHE": str(tmp_path / "cache-cli"), "HOME": str(tmp_path / "home")}
    p = cli("eval", "--samples", tmp_path / "samples.npz", "--metric", "fd-digits", "--json", env=env)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["n"] == 64 and res["value"] > 0
    assert res["detector"] == "digits-cnn:" + digits.SHIPPED_SHA256[digits.recipe_key()][:12]
    assert not (tmp_path / "cache-cli" / "digits-classifier").exists()

    monkeypatch.setattr(digits, "_CACHE", {})
    here = fd_digits_as_a_worker(u8)
    assert here["classifier_sha256"][:12] == res["detector"].split(":")[1]
    assert here["value"] == pytest.approx(res["value"], rel=1e-9)


def test_a_recipe_without_shipped_weights_trains_its_classifier_cold_and_near_the_shipped_one(tmp_path, monkeypatch):
    """Without shipped weights (a changed recipe) the classifier is trained on first use, from inside
    the scorer's no_grad scope, with one thread in the caller (torchrun workers), leaving the caller's
    RNG alone, and cached. The recipe run here lands near the shipped metric: the data floor within
    10% (two machines gave 5.89 and 6.09) and the test accuracy within 2 points."""
    from pfgmbench.metrics import digits

    shipped_floor, shipped_acc = digits.fd_digits(torch.zeros(300, 1, 8, 8))["floor"], digits.classifier()[1]
    monkeypatch.setattr(digits, "shipped_weights", lambda key: tmp_path / "none.pt")
    monkeypatch.setattr(digits, "_CACHE", {})
    monkeypatch.setenv("PFGMBENCH_CACHE", str(tmp_path / "cache"))
    trained = fd_digits_as_a_worker(torch.zeros(300, 1, 8, 8))
    assert list((tmp_path / "cache" / "digits-classifier").glob("cnn-*.pt"))
    assert trained["floor"] == pytest.approx(shipped_floor, rel=0.10)
    assert abs(trained["accuracy"] - shipped_acc) <= 0.02


def test_an_altered_shipped_classifier_is_refused(monkeypatch):
    from pfgmbench.errors import UserError
    from pfgmbench.metrics import digits

    monkeypatch.setattr(digits, "_CACHE", {})
    monkeypatch.setitem(digits.SHIPPED_SHA256, digits.recipe_key(), "0" * 64)
    with pytest.raises(UserError, match="sha256"):
        digits.classifier()


def test_the_regime_proxy_data_scores_at_the_floor_and_block_noise_is_not_a_digit_change():
    """digits32 is the 8x8 data in 4x4 blocks: scored through the scorer's 32x32 path, the test set lands on
    the 8x8 floor (a blurring inverse, as bilinear data pooled to 8x8 was, scored ~150), and noise within
    blocks (off the data's subspace) leaves the score unchanged while noise across blocks raises it."""
    from pfgmbench.data import load_dataset
    from pfgmbench.evaluate import Scorer
    from pfgmbench.images_io import to_uint8

    te32 = load_dataset({"name": "digits32"}, split="test").data
    assert te32.shape[1:] == (1, 32, 32)
    scorer = Scorer("fd-digits", bootstrap=0)
    clean = scorer.score(to_uint8(te32))
    assert abs(clean["value"] - clean["floor"]) < 0.05 * clean["floor"]
    g = torch.Generator().manual_seed(0)
    base = 0.7 * te32                     # room for the noise below without clipping, which would move block means
    noise = torch.randn(te32.shape, generator=g).clamp(-3, 3) * 0.1
    block_means = F.interpolate(F.avg_pool2d(noise, 4), scale_factor=4, mode="nearest")
    ref = scorer.score(to_uint8(base))["value"]
    assert abs(scorer.score(to_uint8(base + noise - block_means))["value"] - ref) < 0.05 * ref
    across = scorer.score(to_uint8((te32 + 24 * block_means).clamp(-1, 1)))["value"]   # 8x8 noise of std 0.6
    assert across > 3 * clean["value"]
