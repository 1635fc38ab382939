"""`pfgmbench bench`: overheads of the sampler and training step against bare network work.

sampler_overhead = sampling wall time / (NFE x one bare forward on the same batch)
train_overhead   = training-step wall time / bare forward + backward + Adam step on the same batch
The two sides of each ratio are timed alternately after a warm-up, so clock drift
affects both alike.
"""
import time

import torch

from pfgmbench.generate import generate, network_model
from pfgmbench.train import Trainer


def _peak_memory_mb(dev):
    if dev.type == "cuda":
        return round(torch.cuda.max_memory_allocated(dev) / 2 ** 20, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)   # the process's peak RSS


def _timed(fn, dev):
    """Wall time of fn(); on CUDA the queue is drained before and after (kernels run asynchronously)."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t = time.perf_counter()
    fn()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - t


def run_bench(cfg, repeats=5):
    """Overheads and throughput of one preset in its compute mode on its device (cfg train.device)."""
    from pfgmbench import compute

    tr = Trainer(cfg)
    if tr.dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(tr.dev)
    net, dev, shape, family = tr.ema, tr.dev, tr.ds.shape, tr.family
    s = cfg["sample"]
    batch, steps = int(s["batch"]), int(s["steps"])
    x = torch.randn(batch, *shape, device=dev)
    sigma = torch.full((batch,), 1.0, device=dev)
    labels = (torch.nn.functional.one_hot(torch.zeros(batch, dtype=torch.long), tr.ds.num_classes).float().to(dev)
              if cfg["data"].get("cond") else None)

    model = network_model(compute.prepare_network(cfg, net), cfg)   # as sample_images runs it
    seeds = list(range(batch))
    ncls = tr.ds.num_classes if labels is not None else 0

    def sample_once():
        return generate(family, model, seeds, steps, None, ncls, dev)[2]

    nfe = sample_once()   # the sampler's own count of network evaluations

    def nfe_forwards():   # the same number of bare network calls (same compute mode) the sampler makes
        for _ in range(nfe):
            model(x, sigma, labels)

    # Interleave the two so CPU clock drift hits both alike; compare sums of equal work.
    t_sample = t_bare_fwd = 0.0
    for _ in range(max(1, repeats // 2)):
        t_sample += _timed(sample_once, dev)
        t_bare_fwd += _timed(nfe_forwards, dev)
    t_fwd = t_bare_fwd / (nfe * max(1, repeats // 2))
    t_sample /= max(1, repeats // 2)

    # Bare step: forward + backward + Adam on a fixed input, nothing else.
    model, opt = tr.net, tr.opt
    xt = compute.memory_format(cfg, torch.randn(tr.B, *shape, device=dev))
    st = torch.full((tr.B,), 1.0, device=dev)
    lt = labels[:1].expand(tr.B, -1) if labels is not None else None

    def bare():
        opt.zero_grad(set_to_none=True)
        with compute.autocast(cfg, dev):
            out = model(xt, st, lt)
        out.float().square().sum().backward()
        opt.step()

    bare()
    tr.step()
    t_bare = t_step = 0.0
    for _ in range(repeats):   # interleaved, as above
        t_bare += _timed(bare, dev)
        t_step += _timed(tr.step, dev)
    t_bare, t_step = t_bare / repeats, t_step / repeats
    images_per_s = tr.B / t_step
    total_images = cfg["train"]["kimg"] * 1000
    return {
        "data": cfg["data"]["name"], "compute": compute.label(cfg), "peak_memory_mb": _peak_memory_mb(dev),
        "sample_images_per_s": round(batch / t_sample, 2),
        "projected_device_days": round(total_images / images_per_s / 86400, 2),
        "projected_for_kimg": cfg["train"]["kimg"],
        "preset": cfg["preset"], "family": family.name, **family.knobs(), "device": str(dev), "threads": torch.get_num_threads(),
        "sample_batch": batch, "nfe": nfe, "forward_s": round(t_fwd, 5), "sample_s": round(t_sample, 4),
        "sampler_overhead": round(t_sample / (nfe * t_fwd), 4),
        "train_batch": tr.B, "bare_step_s": round(t_bare, 5), "train_step_s": round(t_step, 5),
        "train_overhead": round(t_step / t_bare, 4),
        "train_images_per_s": round(images_per_s, 1),
    }


def run_eval_bench(inception=None, n=256, fd_dim=2048, resolution=32, mode="legacy_tensorflow"):
    """Evaluation throughput (images/s) of the in-memory and folder paths, and the Fréchet
    distance speed-up over clean-fid's scipy sqrtm version on random statistics."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from cleanfid.fid import frechet_distance as cleanfid_fd
    from PIL import Image

    from pfgmbench.errors import UserError
    from pfgmbench.metrics import detector, fid
    from pfgmbench.metrics.frechet import frechet_distance

    res = {}
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2 * fd_dim, fd_dim))
    b = a @ (np.eye(fd_dim) + 0.01 * rng.normal(size=(fd_dim, fd_dim)))
    args = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    t = time.perf_counter()
    ours = frechet_distance(*args)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    theirs = cleanfid_fd(*args)
    t_theirs = time.perf_counter() - t
    res.update(fd_dim=fd_dim, fd_ours_s=round(t_ours, 3), fd_cleanfid_s=round(t_theirs, 3),
               fd_speedup=round(t_theirs / t_ours, 2), fd_rel_diff=abs(ours - theirs) / abs(theirs))
    try:
        path = detector.resolve_detector(inception)
    except UserError as e:
        res["eval"] = f"skipped: {e}"
        return res
    det = detector.InceptionDetector(path, mode, "cuda" if torch.cuda.is_available() else "cpu")
    imgs = rng.integers(0, 256, (n, resolution, resolution, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as d:
        for i, im in enumerate(imgs):
            Image.fromarray(im).save(Path(d) / f"{i:06d}.png")
        x = torch.from_numpy(imgs.transpose(0, 3, 1, 2).copy())
        fid.memory_features(det, [x[:8]])   # warm-up
        t = time.perf_counter()
        fid.memory_features(det, (x[i:i + 64] for i in range(0, n, 64)))
        t_mem = time.perf_counter() - t
        t = time.perf_counter()
        fid.folder_features(det, d, batch_size=64)
        t_folder = time.perf_counter() - t
    res.update(detector=str(path), mode=mode, eval_images=n, eval_memory_images_per_s=round(n / t_mem, 1),
               eval_folder_images_per_s=round(n / t_folder, 1))
    return res
