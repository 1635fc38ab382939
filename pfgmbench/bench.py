"""`pfgmbench bench`: overheads of the sampler and training step against bare network work.

sampler_overhead = sampling wall time / (NFE x one bare forward on the same batch)
train_overhead   = training-step wall time / bare forward + backward + Adam step on the same batch
Each is the median of `repeats` timings after a warm-up.
"""
import statistics
import time

import torch

from pfgmbench.generate import network_denoiser
from pfgmbench.sample import generate
from pfgmbench.train import Trainer


def _median_time(fn, repeats):
    fn()   # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_bench(cfg, repeats=5):
    cfg["train"]["device"] = "cpu" if not torch.cuda.is_available() else cfg["train"]["device"]
    tr = Trainer(cfg)
    net, dev, shape = tr.ema, tr.dev, tr.ds.shape
    s = cfg["sample"]
    batch, steps, D = int(s["batch"]), int(s["steps"]), cfg["physics"]["D"]
    x = torch.randn(batch, *shape, device=dev)
    sigma = torch.full((batch,), 1.0, device=dev)
    labels = (torch.nn.functional.one_hot(torch.zeros(batch, dtype=torch.long), tr.ds.num_classes).float().to(dev)
              if cfg["data"].get("cond") else None)

    with torch.no_grad():
        t_fwd = _median_time(lambda: net(x, sigma, labels), repeats)
    denoise = network_denoiser(net)
    nfe = 2 * steps - 1
    seeds = list(range(batch))
    t_sample = _median_time(lambda: generate(denoise, seeds, shape, D, steps, s["sigma_min"], s["sigma_max"],
                                             s["rho"], tr.ds.num_classes if labels is not None else 0, dev),
                            max(1, repeats // 2))

    # Bare step: forward + backward + Adam on a fixed input, nothing else.
    model, opt = tr.net, tr.opt
    xt = torch.randn(tr.B, *shape, device=dev)
    st = torch.full((tr.B,), 1.0, device=dev)
    lt = labels[:1].expand(tr.B, -1) if labels is not None else None

    def bare():
        opt.zero_grad(set_to_none=True)
        model(xt, st, lt).square().sum().backward()
        opt.step()

    t_bare = _median_time(bare, repeats)
    t_step = _median_time(tr.step, repeats)
    return {
        "preset": cfg["preset"], "D": D, "device": str(dev), "threads": torch.get_num_threads(),
        "sample_batch": batch, "nfe": nfe, "forward_s": round(t_fwd, 5), "sample_s": round(t_sample, 4),
        "sampler_overhead": round(t_sample / (nfe * t_fwd), 4),
        "train_batch": tr.B, "bare_step_s": round(t_bare, 5), "train_step_s": round(t_step, 5),
        "train_overhead": round(t_step / t_bare, 4),
        "train_images_per_s": round(tr.B / t_step, 1),
    }
