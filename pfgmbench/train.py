"""Training loop (EDM recipe, REFERENCE 1 and 3): Adam, lr ramp and EMA in images, resume.

The model family supplies everything physical (physics/): the time law, the perturbation, the
target and the weight; loss.py turns them into the loss. Randomness: network init from the run
seed; data order is a per-epoch permutation derived from (seed, epoch), so the position is just
the image count; noise comes from one generator whose state is checkpointed. Noise is drawn for
the whole global batch on every rank and sliced, so a run's trajectory does not depend on the
number of ranks (dropout aside).
"""
import contextlib
import copy
import json
import math
import time
from pathlib import Path

import torch
import yaml

from pfgmbench import checkpoint, compute, distributed, run_folder
from pfgmbench.atomic import append_line, read_jsonl, write_text
from pfgmbench.augment import augment
from pfgmbench.config import dump
from pfgmbench.data import load_dataset
from pfgmbench.errors import UserError
from pfgmbench.loss import loss as family_loss
from pfgmbench.model import build_network
from pfgmbench.physics import build_family, family_class
from pfgmbench.progress import Progress
from pfgmbench.provenance import git_commit
from pfgmbench.provenance import now as timestamp

# Keys that may change when a run is resumed (duration, where it runs, how it samples).
RESUMABLE_CHANGES = ("train.kimg", "train.device", "train.batch_gpu", "train.checkpoint_kimg",
                     "train.snapshot_kimg", "sample")


class TrainingDiverged(UserError):
    pass


class DataOrder:
    """Image k of the stream is permutation_{k // n}[k % n], the permutation seeded by (seed, epoch)."""

    def __init__(self, n, seed):
        self.n, self.seed, self._epoch, self._perm = n, seed, None, None

    def _permutation(self, epoch):
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm

    def indices(self, start, count):
        return torch.stack([self._permutation(k // self.n)[k % self.n] for k in range(start, start + count)])


def _config_diff(saved, current, prefix=""):
    for k in sorted(set(saved) | set(current)):
        key = prefix + k
        if any(key == c or key.startswith(c + ".") for c in RESUMABLE_CHANGES):
            continue
        a, b = saved.get(k), current.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _config_diff(a, b, key + ".")
            if found:
                return found
        elif a != b:
            return key, a, b
    return None


def _truncate_stats(path, kimg):
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
    if path.exists():
        write_text(path, "".join(json.dumps(r) + "\n" for r in read_jsonl(path) if r["kimg"] <= kimg + 1e-9))


def _check_fresh_folder(out, cfg):
    """A folder with snapshots but no training-state (killed before its first checkpoint, or the
    state deleted) is started again only for the same config: other snapshots would be mixed in."""
    snaps = checkpoint.list_snapshots(out) if out.is_dir() else []
    if not snaps:
        return
    saved = out / "config.yaml"
    if not saved.exists():
        raise UserError(f"{out} holds {len(snaps)} snapshot(s) but no config.yaml saying how they were made; "
                        "choose a new --out or delete the folder")
    diff = _config_diff(yaml.safe_load(saved.read_text()) or {}, cfg)
    if diff:
        raise UserError(f"{out} holds snapshots of a run with {diff[0]}={diff[1]!r}, not {diff[2]!r}, and no "
                        f"{checkpoint.STATE_NAME} to resume; choose a new --out or delete the folder")


class Trainer:
    """Network, EMA, optimiser and random state of one run; `step()` is one optimiser step."""

    def __init__(self, cfg):
        distributed.init()
        self.cfg = cfg
        t_cfg = cfg["train"]
        self.dev = distributed.device(t_cfg["device"])
        self.world, self.rank = distributed.world_size(), distributed.rank()
        self.B = int(t_cfg["batch"])
        if self.B % self.world:
            raise UserError(f"train.batch={self.B} is not divisible by the number of processes ({self.world})")
        self.ds = load_dataset(cfg["data"])
        if cfg["data"].get("cond") and not self.ds.num_classes:
            raise UserError(f"--cond needs labels, but data set '{cfg['data']['name']}' has none")
        self.use_aug = t_cfg["augment_p"] > 0
        if self.use_aug and cfg["net"].get("augment_dim", 0) != 9:
            raise UserError("train.augment_p > 0 needs net.augment_dim=9 (the augmentation labels)")
        family_class(cfg["physics"]["family"]).fit_to_data(cfg, self.ds)   # e.g. PFGM's M, z_max from the data
        self.family = build_family(cfg, self.ds.shape)
        compute.set_matmul_precision(cfg)
        torch.manual_seed(t_cfg["seed"])
        self.net = build_network(cfg, self.ds.shape, self.ds.num_classes).to(self.dev).train()
        self.net = compute.prepare_network(cfg, self.net)
        self.ema = copy.deepcopy(self.net).eval().requires_grad_(False)
        fused = {"fused": True} if compute.settings(cfg)["fused_adam"] else {}
        self.opt = torch.optim.Adam(self.net.parameters(), lr=t_cfg["lr"], betas=(0.9, 0.999), eps=1e-8, **fused)
        self.gen = torch.Generator().manual_seed(t_cfg["seed"])   # on the CPU: the same noise on any device
        self.order = DataOrder(len(self.ds), t_cfg["seed"])
        self.images = 0
        self._reseed_other_ranks()
        self.model = self.net
        if self.world > 1:
            ids = [self.dev.index] if self.dev.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        if compute.settings(cfg)["compile"]:
            self.model = torch.compile(self.model)

    # --- checkpoint state ---
    def state(self):
        return {"format": checkpoint.STATE_FORMAT, "config": dump(self.cfg), "images": self.images,
                "net": self.net.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "noise_rng": self.gen.get_state(), "torch_rng": torch.get_rng_state()}

    def load_state(self, st, path):
        diff = _config_diff(st["config"], self.cfg)
        if diff:
            raise UserError(f"cannot resume {path.parent}: its config has {diff[0]}={diff[1]!r} but this "
                            f"command gives {diff[2]!r}; use the same settings or a new --out")
        try:
            self.net.load_state_dict(st["net"])
            self.ema.load_state_dict(st["ema"])
            self.opt.load_state_dict(st["opt"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise UserError(f"{path} does not match the network of its config "
                            f"({str(e).splitlines()[0]}); delete it or use a new --out") from None
        self.gen.set_state(st["noise_rng"])
        torch.set_rng_state(st["torch_rng"])
        self.images = int(st["images"])
        self._reseed_other_ranks()

    def _reseed_other_ranks(self):
        """Dropout draws from torch's global RNG: rank 0 keeps the run's (checkpointed) stream, other
        ranks get their own, derived from (seed, rank, images), so their masks are not copies."""
        if self.rank > 0:
            torch.manual_seed(self.cfg["train"]["seed"] * 1_000_003 + self.rank * 7919 + self.images)

    def snapshot(self):
        return {"format": checkpoint.SNAPSHOT_FORMAT, "config": dump(self.cfg), "kimg": self.images / 1000,
                "ema": self.ema.state_dict(), "data_shape": list(self.ds.shape),
                "num_classes": self.ds.num_classes}

    # --- one optimiser step over the global batch ---
    def step(self):
        t_cfg, B = self.cfg["train"], self.B
        idx = self.order.indices(self.images, B)
        y = self.ds.batch(idx).to(self.dev)
        labels = self.ds.one_hot(idx).to(self.dev) if self.cfg["data"].get("cond") else None
        aug_labels = None
        if self.use_aug:
            y, aug_labels = augment(y, t_cfg["augment_p"], self.gen)
        ex = self.family.training_example(y, self.gen, self._draw_data)   # t, x, target, weight: global batch
        ex.x = compute.memory_format(self.cfg, ex.x)

        per_rank = B // self.world
        micro = int(t_cfg.get("batch_gpu") or per_rank)
        first = self.rank * per_rank
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        starts = list(range(first, first + per_rank, micro))
        for m in starts:
            part = slice(m, min(m + micro, first + per_rank))
            # DDP: all-reduce gradients once, on the last micro-batch (gradient accumulation)
            sync = m == starts[-1] or self.world == 1
            with contextlib.nullcontext() if sync else self.model.no_sync(), compute.autocast(self.cfg, self.dev):
                loss = family_loss(self.model, ex[part], None if labels is None else labels[part],
                                   None if aug_labels is None else aug_labels[part]).sum()
                (loss * (self.world / B)).backward()     # DDP averages ranks: sum over all / B
            total += loss.item()
        if self.world > 1:   # the global batch's loss on every rank: logs and the NaN stop agree
            t = torch.tensor([total], dtype=torch.float64, device=self.dev)
            torch.distributed.all_reduce(t)
            total = t.item()
        if not math.isfinite(total):
            return total
        for g in self.opt.param_groups:
            g["lr"] = learning_rate(t_cfg, self.images)
        for p in self.net.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        if t_cfg["grad_clip"] > 0:   # the score-SDE recipe (PFGM's): clip the global gradient norm
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), t_cfg["grad_clip"])
        self.opt.step()
        self.update_ema()
        self.images += B
        return total / B

    def _draw_data(self, n):
        """n more training points, drawn with the run's generator (for targets over a large batch)."""
        idx = torch.randint(len(self.ds), (n,), generator=self.gen)
        return self.ds.batch(idx).to(self.dev)

    def update_ema(self):
        beta = ema_beta(self.cfg["train"], self.images, self.B)
        with torch.no_grad():
            for pe, pn in zip(self.ema.parameters(), self.net.parameters()):
                pe.copy_(pn.detach().lerp(pe, beta))
            for be, bn in zip(self.ema.buffers(), self.net.buffers()):
                be.copy_(bn)


def learning_rate(t_cfg, images):
    """EDM's linear warm-up measured in images: lr * min(images / (lr_rampup_kimg * 1000), 1)."""
    return t_cfg["lr"] * min(images / max(t_cfg["lr_rampup_kimg"] * 1000, 1e-8), 1)


def ema_beta(t_cfg, images, batch):
    """EMA decay per step of `batch` images (EDM): beta = 0.5^(batch / h), with the half-life h in
    images, h = ema_halflife_kimg * 1000, ramped up early as h = min(h, images * ema_rampup_ratio)."""
    halflife = t_cfg["ema_halflife_kimg"] * 1000
    if t_cfg["ema_rampup_ratio"]:
        halflife = min(halflife, images * t_cfg["ema_rampup_ratio"])
    return 0.5 ** (batch / max(halflife, 1e-8))


def _crossed(images, B, every):
    """True when the last step of B images passed a multiple of `every` images."""
    return every > 0 and images // every != (images - B) // every


def train(cfg, out, resume=False, progress=True, stop_after_kimg=None):
    """Train the model `cfg` describes into run folder `out`. Returns the final kimg.

    The folder gets config.yaml, stats.jsonl (one record every few seconds), log.txt (the plain
    progress lines), loss.png (refreshed with each snapshot), training-state.pt (everything to
    resume) and network-snapshot-*.pt (EMA weights, for sampling and scoring)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a run folder; choose a folder path")
    tr = Trainer(cfg)
    t_cfg, B = cfg["train"], tr.B
    state_path = out / checkpoint.STATE_NAME
    main = distributed.is_main()
    if state_path.exists():
        if not resume:
            raise UserError(f"{out} already holds a run; add --resume auto to continue it, or choose a new --out")
        tr.load_state(checkpoint.load(state_path, checkpoint.STATE_FORMAT), state_path)
        if main:
            _truncate_stats(out / "stats.jsonl", tr.images / 1000)
    else:
        _check_fresh_folder(out, cfg)
        if main:       # a start from scratch: the loss curve of an earlier attempt would be drawn into this one
            (out / "stats.jsonl").unlink(missing_ok=True)
    distributed.barrier()
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.yaml", dump(cfg))
        append_line(out / "provenance.jsonl", json.dumps({"commit": git_commit(), "started": timestamp(),
                                                          "from_kimg": tr.images / 1000, "processes": tr.world,
                                                          "device": str(tr.dev), "compute": compute.label(cfg)}))
    total = int(round(t_cfg["kimg"] * 1000))
    stop = total if stop_after_kimg is None else min(total, int(round(stop_after_kimg * 1000)))
    ckpt_every, snap_every = int(t_cfg["checkpoint_kimg"] * 1000), int(t_cfg["snapshot_kimg"] * 1000)

    bar = Progress("train", total / 1000, "kimg", start=tr.images / 1000, enabled=progress,
                   logfile=out / "log.txt", rate_unit="img/s", rate_scale=1000)
    t_start = t_log = time.time()
    loss_acc, steps_acc = 0.0, 0
    while tr.images < stop:
        loss = tr.step()
        if not math.isfinite(loss):
            bar.close()
            raise TrainingDiverged(f"loss became {loss} at kimg {tr.images / 1000:.1f}; the last good "
                                   f"checkpoint {state_path} is kept; lower train.lr or check the data")
        loss_acc, steps_acc = loss_acc + loss, steps_acc + 1
        done = tr.images >= stop
        at_ckpt = _crossed(tr.images, B, ckpt_every) or done
        at_snap = _crossed(tr.images, B, snap_every) or tr.images >= total
        now = time.time()
        if now - t_log > 5 or at_ckpt or at_snap:
            rec = {"kimg": tr.images / 1000, "loss": loss_acc / steps_acc, "lr": tr.opt.param_groups[0]["lr"],
                   "kimg_per_s": steps_acc * B / 1000 / max(now - t_log, 1e-9), "wall_s": now - t_start}
            if main:
                append_line(out / "stats.jsonl", json.dumps(rec))
            bar.update(tr.images / 1000, f"loss {rec['loss']:.4g}")
            loss_acc, steps_acc, t_log = 0.0, 0, now
        if main and at_snap:
            checkpoint.save(checkpoint.snapshot_path(out, tr.images), tr.snapshot())
            run_folder.plot_loss(out)
        if main and at_ckpt:
            checkpoint.save(state_path, tr.state())
    bar.close()
    distributed.barrier()
    return tr.images / 1000


# Reported cost of the papers' runs: 8 V100s for ~2 days (CIFAR-10) / ~4 days (FFHQ-64), 200 Mimg.
PAPER_GPU_DAYS_PER_MIMG = {"cifar10": 8 * 2 / 200, "imagefolder": 8 * 4 / 200}


def cost_estimate(cfg, nproc=1):
    """Images, optimiser steps and GPU-days expected from the papers' reported cost (V100)."""
    t = cfg["train"]
    images = int(t["kimg"] * 1000)
    per_rank = t["batch"] // max(nproc, 1)
    micro = t.get("batch_gpu") or per_rank
    est = {"images": images, "steps": images // t["batch"], "batch": t["batch"], "processes": nproc,
           "batch_per_process": per_rank, "accumulation_rounds": -(-per_rank // micro)}
    rate = PAPER_GPU_DAYS_PER_MIMG.get(cfg["data"]["name"])
    if rate:
        gpu_days = rate * images / 1e6
        est.update(v100_gpu_days=round(gpu_days, 1), wall_days_on_these_gpus_if_v100=round(gpu_days / nproc, 2))
    else:
        est["v100_gpu_days"] = "no paper figure for this data set"
    return est
