"""`pfgmbench sample`: load a snapshot, generate per seed, write PNGs / .npz and a grid.

Seeds are sharded across ranks (seed k goes to rank k % world); finished seeds are skipped
on a rerun, so a killed run resumes where it stopped.
"""
import time
from pathlib import Path

import numpy as np
import torch

from pfgmbench import checkpoint, compute, distributed
from pfgmbench.atomic import atomic_path
from pfgmbench.images_io import png_name, save_grid, save_png, save_points_plot
from pfgmbench.sample import generate, to_uint8


def network_denoiser(net, cfg=None):
    """The denoiser interface over a preconditioned network (float32 inside, float64 outside),
    computed in the run's compute mode (float32 with TF32 off unless the run opted in)."""
    cfg = cfg or {}

    @torch.no_grad()
    def denoise(x, sigma, class_labels=None):
        with compute.autocast(cfg, x.device):
            out = net(compute.memory_format(cfg, x.to(torch.float32)), sigma.to(torch.float32), class_labels)
        return out.to(torch.float32)

    return denoise


def batches(seeds, size):
    for i in range(0, len(seeds), size):
        yield seeds[i:i + size]


def sample_images(net, cfg, shape, num_classes, seeds, steps, batch, device, alpha=0.0, progress=None):
    """Yield (seed batch, float64 samples, nfe) for `seeds`."""
    s = cfg["sample"]
    compute.set_matmul_precision(cfg)
    denoise = network_denoiser(compute.prepare_network(cfg, net), cfg)
    ncls = num_classes if cfg["data"].get("cond") else 0
    for chunk in batches(seeds, batch):
        x, _, nfe = generate(denoise, chunk, shape, cfg["physics"]["D"], steps, s["sigma_min"],
                             s["sigma_max"], s["rho"], ncls, device, alpha)
        if progress:
            progress(len(chunk))
        yield chunk, x, nfe


def sample_run(ckpt, seeds, out, steps=None, fmt="png", batch=None, device="auto", alpha=0.0,
               progress=True, quant_bits=None, quant_rule="paper"):
    """Generate `seeds` from snapshot `ckpt` into folder `out`; returns a summary dict."""
    from pfgmbench.quantize import quantize_model, top_resolution

    distributed.init()
    dev = distributed.device(device)
    cfg, net, snap = checkpoint.load_network(ckpt, dev)
    quant = {}
    if quant_bits:
        tensors, count, total = quantize_model(net, quant_bits, quant_rule, top_resolution(snap))
        quant = {"quant_bits": quant_bits, "quant_rule": quant_rule, "quantised_tensors": tensors,
                 "quantised_params": count, "total_params": total}
    shape, ncls = tuple(snap["data_shape"]), snap["num_classes"]
    steps = int(steps or cfg["sample"]["steps"])
    batch = int(batch or cfg["sample"]["batch"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    is_image = len(shape) == 3
    mine = seeds[distributed.rank()::distributed.world_size()]
    if fmt == "png" and is_image:
        mine = [s for s in mine if not (out / png_name(s)).exists()]   # resume: skip finished seeds

    t0, nfe, kept = time.time(), 2 * steps - 1, []
    bar = _bar(progress and distributed.is_main(), len(mine))
    for chunk, x, nfe in sample_images(net, cfg, shape, ncls, mine, steps, batch, dev, alpha, bar.advance):
        x = x.cpu()
        if fmt == "png" and is_image:
            for s, img in zip(chunk, to_uint8(x)):
                save_png(out / png_name(s), img)
        else:
            kept.append(x)
    bar.close()
    wall = time.time() - t0
    if kept or (fmt == "npz" or not is_image):
        _gather_npz(out, seeds, mine, kept, is_image)
    distributed.barrier()
    if distributed.is_main():
        _write_grid(out, seeds, shape, cfg)
    return {"nfe": nfe, "images": len(seeds), "generated": len(mine), "steps": steps, "alpha": alpha,
            "D": cfg["physics"]["D"], "checkpoint": str(ckpt), "kimg": snap["kimg"], "out": str(out),
            "wall_s": round(wall, 3), **quant}


def _gather_npz(out, seeds, mine, kept, is_image):
    x = torch.cat(kept) if kept else torch.zeros(0)
    arr = to_uint8(x).numpy() if is_image else x.numpy().astype(np.float32)
    rank, world = distributed.rank(), distributed.world_size()
    name = "samples.npz" if world == 1 else f"samples.rank{rank}.npz"
    with atomic_path(out / name) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, seeds=np.array(mine), samples=arr)
    distributed.barrier()
    if world > 1 and rank == 0:   # merge the shards in seed order
        parts = [np.load(out / f"samples.rank{r}.npz") for r in range(world)]
        allseeds = np.concatenate([p["seeds"] for p in parts])
        allx = np.concatenate([p["samples"] for p in parts])
        order = np.argsort(allseeds)
        with atomic_path(out / "samples.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, seeds=allseeds[order], samples=allx[order])
        for r in range(world):
            (out / f"samples.rank{r}.npz").unlink()


def _write_grid(out, seeds, shape, cfg):
    from PIL import Image

    first = seeds[:64]
    if len(shape) == 3 and (out / png_name(first[0])).exists():
        imgs = []
        for s in first:
            a = np.array(Image.open(out / png_name(s)))
            imgs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        save_grid(out / "grid.png", torch.from_numpy(np.stack(imgs)))
    elif (out / "samples.npz").exists():
        x = np.load(out / "samples.npz")["samples"]
        if len(shape) == 3:
            save_grid(out / "grid.png", torch.from_numpy(x[:64]))
        else:
            from pfgmbench.data import load_dataset

            ref = load_dataset(cfg["data"]).data.numpy()
            save_points_plot(out / "grid.png", x, ref)


class _bar:
    def __init__(self, enabled, total):
        self.p = None
        if enabled and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.p = Progress(TextColumn("[bold]sample"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            self.p.start()
            self.task = self.p.add_task("sample", total=total)

    def advance(self, n):
        if self.p:
            self.p.advance(self.task, n)

    def close(self):
        if self.p:
            self.p.stop()
