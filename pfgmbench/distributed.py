"""torch.distributed plumbing: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; world size 1 needs no group."""
import os

import torch
import torch.distributed as dist


def init():
    """Join the process group when launched by torchrun: NCCL for CUDA tensors and gloo for CPU ones
    (statistics kept on the CPU, or --device cpu on a GPU machine, are reduced through gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "gloo"
        if torch.cuda.is_available():
            backend = "cpu:gloo,cuda:nccl"
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)


def shutdown(clean=True):
    """Leave the process group, once. On a clean finish every rank gets here, so a final barrier
    first makes sure no rank tears down while another still talks to it; after an error the
    other ranks may never arrive, so the group is destroyed without waiting. A group left alive
    at interpreter exit lets gloo's / NCCL's threads be destroyed while running: SIGABRT."""
    if not dist.is_initialized():
        return
    try:
        if clean:
            dist.barrier()
    finally:
        dist.destroy_process_group()


def rank():
    return dist.get_rank() if dist.is_initialized() else 0


def world_size():
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main():
    return rank() == 0


def barrier():
    if dist.is_initialized():
        dist.barrier()


def device(requested="auto"):
    """'auto' (this rank's GPU, else the CPU), 'cpu', 'cuda' or 'cuda:K'; a clear error otherwise."""
    from pfgmbench.errors import UserError

    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    try:
        dev = torch.device(requested)
    except (RuntimeError, TypeError):
        raise UserError(f"--device {requested}: not a device; use auto, cpu, cuda or cuda:K") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {requested}: no CUDA GPU is visible on this machine; use --device cpu "
                            "(or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {requested}: only {torch.cuda.device_count()} GPU(s) visible")
    elif dev.type != "cpu":
        raise UserError(f"--device {requested}: unsupported device type; use auto, cpu or cuda")
    return dev


def gather_by_seed(local, seeds):
    """Concatenate every rank's rows (numpy), ordered by seed, on every rank."""
    import numpy as np

    if not dist.is_initialized():
        order = np.argsort(seeds)
        return np.asarray(local)[order]
    parts = [None] * world_size()
    dist.all_gather_object(parts, (list(seeds), np.asarray(local)))
    all_seeds = np.concatenate([np.asarray(s, dtype=np.int64) for s, _ in parts])
    rows = np.concatenate([x for _, x in parts if len(x)])
    return rows[np.argsort(all_seeds, kind="stable")]


def reduce_feature_stats(feats):
    """(mu, sigma, n) of features spread over ranks, from all-reduced sums (float64):
    mu = S1 / n, sigma = (S2 - n mu mu^T) / (n - 1), the same as on the concatenation."""
    import numpy as np

    f = torch.as_tensor(np.asarray(feats), dtype=torch.float64)
    n = torch.tensor([float(f.shape[0])], dtype=torch.float64)
    s1, s2 = f.sum(0), f.T @ f
    if dist.is_initialized():
        dev = device()
        n, s1, s2 = n.to(dev), s1.to(dev), s2.to(dev)
        for t in (n, s1, s2):
            dist.all_reduce(t)
        n, s1, s2 = n.cpu(), s1.cpu(), s2.cpu()
    n = n.item()
    mu = s1 / n
    sigma = (s2 - n * torch.outer(mu, mu)) / (n - 1)
    return mu.numpy(), sigma.numpy(), int(n)


def launch_torchrun(nproc, argv):
    """`--nproc N`: re-run this command under torchrun on this node with N processes."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "pfgmbench", *argv]
    return subprocess.call(cmd)


# torchrun's argparse (Python <= 3.11) rejects options that abbreviate its own even after the
# module name: --num (--numa-binding) and --run (--run-path). Pass the unambiguous aliases.
TORCHRUN_SAFE = {"--num": "--num-samples", "--run": "--run-dir"}


def strip_nproc(argv):
    """argv without --nproc N, with options renamed to their torchrun-safe aliases."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            name, eq, val = a.partition("=")
            out.append(TORCHRUN_SAFE.get(name, name) + eq + val if name in TORCHRUN_SAFE else a)
    return out
