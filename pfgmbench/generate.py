"""Sampling: snapshot -> the family's prior -> a solver over the family's velocity -> the family's
map to data -> images (REFERENCE 1, 2).

One CPU generator per seed, so a seed's sample never depends on the batch size or the number of
ranks (seed k goes to rank k % world). `pfgmbench sample` writes one PNG per seed (or an .npz)
with a manifest of everything that made them; a rerun into the same folder skips finished seeds
only when the manifest matches, and refuses otherwise.
"""
import json
import time
from pathlib import Path

import numpy as np
import torch

from pfgmbench import checkpoint, compute, distributed
from pfgmbench.atomic import atomic_path, file_sha256, write_json
from pfgmbench.errors import UserError
from pfgmbench.images_io import (
    png_name,
    save_grid,
    save_png,
    save_points_plot,
    to_uint8,
)
from pfgmbench.physics import build_family
from pfgmbench.progress import Progress
from pfgmbench.provenance import git_commit
from pfgmbench.solvers import SOLVERS, Counting, mean_nfe

MANIFEST = "manifest.json"


class SeedGenerators:
    """One CPU torch.Generator per seed: a seed's sample never depends on batch size or device."""

    def __init__(self, seeds):
        self.gens = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def randn(self, shape, device="cpu"):
        return torch.stack([torch.randn(shape, generator=g, dtype=torch.float64) for g in self.gens]).to(device)

    def randint(self, high, device="cpu"):
        return torch.stack([torch.randint(high, (), generator=g) for g in self.gens]).to(device)

    def prior(self, family, device="cpu", sampler=None):
        return torch.cat([family.prior((1, *family.shape), g, sampler) for g in self.gens]).to(device)


def rank_share(seeds, batch, coupled=False):
    """This rank's seeds: every world-th seed; for batch-coupled (adaptive) samplers, every world-th
    batch of `batch` seeds instead, so that a seed's batch never depends on the number of ranks."""
    rank, world = distributed.rank(), distributed.world_size()
    if not coupled:
        return seeds[rank::world]
    chunks = [seeds[i:i + batch] for i in range(0, len(seeds), batch)]
    return [s for c in chunks[rank::world] for s in c]


def network_model(net, cfg=None):
    """The network as the families call it, model(x, t, labels): float32 inside, in the run's compute
    mode (float32 with TF32 off unless the run opted in)."""
    cfg = cfg or {}

    @torch.no_grad()
    def model(x, t, class_labels=None):
        with compute.autocast(cfg, x.device):
            out = net(compute.memory_format(cfg, x.to(torch.float32)), t.to(torch.float32), class_labels)
        return out.to(torch.float32)

    return model


def check_sampler(family, sampler):
    sampler = sampler or family.default_sampler
    if sampler not in family.samplers:
        raise UserError(f"sampler '{sampler}' does not integrate family {family.name}; choose one of "
                        f"{', '.join(family.samplers)}")
    return sampler


def generate(family, model, seeds, steps, sampler=None, num_classes=0, device="cpu", alpha=0.0, class_label=None):
    """Samples for `seeds` (one batch): (float64 samples in data space, labels or None, NFE per sample).

    model(x, t, labels) is the network; alpha > 0 adds PFGM++'s step noise before each step, its
    eps drawn from the per-seed generators (as is the noise of ancestral samplers)."""
    sampler = check_sampler(family, sampler)
    gens = SeedGenerators(seeds)
    x0 = gens.prior(family, device, sampler)
    labels = None
    if num_classes:
        cls = gens.randint(num_classes, device) if class_label is None else torch.full(
            (len(seeds),), int(class_label), device=device)
        labels = torch.nn.functional.one_hot(cls, num_classes).to(torch.float32)
    counter = Counting(lambda x, t: model(x, t, labels))
    hook = None
    if alpha:
        def hook(x, t):
            return family.step_noise(x, t, alpha, gens.randn(x.shape[1:], device))
    solve = SOLVERS[family.samplers[sampler]]
    grid = family.grid(steps, device, sampler)
    x = solve(family.velocity(counter, sampler), grid, x0, hook=hook,
              noise=lambda shape: gens.randn(shape, device), **family.solver_options(sampler))
    x = family.finish(counter, x, grid, sampler)
    return family.to_data(x), labels, counter.nfe


def sample_images(net, cfg, shape, num_classes, seeds, steps, batch, device, alpha=0.0, progress=None,
                  sampler=None, class_label=None):
    """Yield (seed batch, float64 samples, nfe) for `seeds`."""
    family = build_family(cfg, shape)
    compute.set_matmul_precision(cfg)
    model = network_model(compute.prepare_network(cfg, net), cfg)
    ncls = num_classes if cfg["data"].get("cond") else 0
    for i in range(0, len(seeds), batch):
        chunk = seeds[i:i + batch]
        x, _, nfe = generate(family, model, chunk, steps, sampler, ncls, device, alpha, class_label)
        if progress:
            progress(len(chunk))
        yield chunk, x, nfe


def _check_manifest(out, settings, overwrite):
    """Refuse to add images made with other settings, or of unknown settings, to a folder (or clear it
    with --overwrite)."""
    path = out / MANIFEST
    if path.exists():
        try:
            old = json.loads(path.read_text())["settings"]
        except (ValueError, KeyError):
            old = {}
        diff = next((k for k in settings if old.get(k) != settings[k]), None)
        if diff is None:
            return
        problem = f"{out} holds samples made with {diff}={old.get(diff)!r}, not {settings[diff]!r}"
    else:
        strays = list(out.glob("[0-9]*.png")) + [p for p in [out / "samples.npz"] if p.exists()]
        if not strays:
            return
        problem = f"{out} holds {len(strays)} sample file(s) with no {MANIFEST} saying how they were made"
    if not overwrite:
        raise UserError(f"{problem}; add --overwrite to replace them, or choose a new --out")
    if distributed.is_main():
        for p in list(out.glob("[0-9]*.png")) + [out / "samples.npz", path]:
            p.unlink(missing_ok=True)
    distributed.barrier()


def grid_path(out):
    """The sample grid lives beside the samples folder: folder-based FID tools count every PNG inside."""
    out = Path(out)
    return out.parent / f"{out.name}-grid.png"


def sample_run(ckpt, seeds, out, steps=None, fmt="png", batch=None, device="auto", alpha=0.0,
               progress=True, quant_bits=None, quant_rule="paper", sampler=None, class_label=None, overwrite=False):
    """Generate `seeds` from snapshot `ckpt` into folder `out`; returns a summary dict."""
    from pfgmbench.quantize import quantize_model, top_resolution

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder for the samples")
    dev = distributed.device(device)
    cfg, net, snap = checkpoint.load_network(ckpt, dev)
    shape, ncls = tuple(snap["data_shape"]), snap["num_classes"]
    family = build_family(cfg, shape)
    sampler = check_sampler(family, sampler)
    if alpha:
        family.require_step_noise()
    if class_label is not None:
        if not (cfg["data"].get("cond") and ncls):
            raise UserError(f"--class needs a class-conditional model; {ckpt} is unconditional")
        if not 0 <= class_label < ncls:
            raise UserError(f"--class must be in 0..{ncls - 1}, got {class_label}")
    quant = {}
    if quant_bits:
        tensors, count, total = quantize_model(net, quant_bits, quant_rule, top_resolution(snap))
        quant = {"quant_bits": quant_bits, "quant_rule": quant_rule, "quantised_tensors": tensors,
                 "quantised_params": count, "total_params": total}
    steps = int(steps or cfg["sample"]["steps"])
    batch = int(batch or cfg["sample"]["batch"])
    settings = {"checkpoint_sha256": file_sha256(ckpt), "family": family.name, **family.knobs(),
                "sampler": sampler, "steps": steps,
                "batch": batch if sampler in family.batch_coupled else None,   # a seed's sample depends on it
                "alpha": alpha, "quant_bits": quant_bits,
                "quant_rule": quant_rule if quant_bits else None, "class": class_label, "format": fmt,
                "compute": compute.label(cfg)}
    _check_manifest(out, settings, overwrite)
    if distributed.is_main():
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / MANIFEST, {"settings": settings, "checkpoint": str(ckpt), "commit": git_commit()})
    distributed.barrier()
    is_image = len(shape) == 3
    mine = rank_share(seeds, batch, sampler in family.batch_coupled)
    if fmt == "png" and is_image:   # resume: skip finished seeds (whole batches for batch-coupled samplers)
        done = {s for s in mine if (out / png_name(s)).exists()}
        if sampler in family.batch_coupled:
            chunks = [mine[i:i + batch] for i in range(0, len(mine), batch)]
            mine = [s for c in chunks if not all(x in done for x in c) for s in c]
        else:
            mine = [s for s in mine if s not in done]

    t0, kept = time.time(), []
    counted = torch.zeros(2, dtype=torch.float64)   # [sum of NFE over samples, samples]
    bar = Progress("sample", len(mine), "images", enabled=progress)
    for chunk, x, nfe in sample_images(net, cfg, shape, ncls, mine, steps, batch, dev, alpha, bar.advance,
                                       sampler, class_label):
        x = x.cpu()
        counted += torch.tensor([nfe * len(chunk), len(chunk)], dtype=torch.float64)
        if fmt == "png" and is_image:
            for s, img in zip(chunk, to_uint8(x)):
                save_png(out / png_name(s), img)
        else:
            kept.append(x)
    bar.close()
    wall = time.time() - t0
    if fmt == "npz" or not is_image:     # every rank takes part: the arrays are gathered
        _gather_npz(out, seeds, mine, kept, is_image)
    counted = _summed(counted)
    new = int(counted[1])
    nfe = mean_nfe(*counted.tolist()) if new else None
    distributed.barrier()
    if distributed.is_main():
        _write_grid(out, seeds, shape, cfg)
    return {"nfe": nfe, "images": len(seeds), "generated": new, "steps": steps, "sampler": sampler,
            "alpha": alpha, "family": family.name, **family.knobs(), "checkpoint": str(ckpt), "kimg": snap["kimg"],
            "out": str(out), "grid": str(grid_path(out)), "compute": compute.label(cfg),
            "wall_s": round(wall, 3), **quant}


def _summed(t):
    """A tensor summed over ranks (the counts of newly generated images and their NFE)."""
    if distributed.world_size() > 1:
        t = t.to(distributed.device())
        torch.distributed.all_reduce(t)
    return t.cpu()


def _gather_npz(out, seeds, mine, kept, is_image):
    x = torch.cat(kept) if kept else torch.zeros(0)
    arr = to_uint8(x).numpy() if is_image else x.numpy().astype(np.float32)
    rank, world = distributed.rank(), distributed.world_size()
    name = "samples.npz" if world == 1 else f"samples.rank{rank}.npz"
    with atomic_path(out / name) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, seeds=np.array(mine, dtype=np.int64), samples=arr)
    distributed.barrier()
    if world > 1 and rank == 0:   # merge the shards in seed order
        parts = [np.load(out / f"samples.rank{r}.npz") for r in range(world)]
        allseeds = np.concatenate([p["seeds"] for p in parts])
        allx = np.concatenate([p["samples"] for p in parts if len(p["samples"])])
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
        save_grid(grid_path(out), torch.from_numpy(np.stack(imgs)))
    elif (out / "samples.npz").exists():
        x = np.load(out / "samples.npz")["samples"]
        if len(shape) == 3:
            save_grid(grid_path(out), torch.from_numpy(x[:64]))
        else:
            from pfgmbench.data import load_dataset

            ref = load_dataset(cfg["data"]).data.numpy()
            save_points_plot(grid_path(out), x, ref)
