"""How the network is computed: float32 by default (what the papers trained and sampled with),
and opt-in speed modes, each a config key under `compute` recorded in the run's config and in
every results row (REFERENCE 9: EDM turns TF32 off; the papers trained in float32 on V100s).

  compute.tf32           TF32 matmuls and convolutions on Ampere-or-newer GPUs
  compute.bf16           bfloat16 autocast around the network (loss, EMA, optimiser stay float32)
  compute.channels_last  NHWC memory layout for image networks
  compute.compile        torch.compile the training network
  compute.fused_adam     the fused Adam kernel
"""
import contextlib

import torch

MODES = ("tf32", "bf16", "channels_last", "compile", "fused_adam")
DEFAULT = {m: False for m in MODES}


def settings(cfg):
    """The compute section of a config, with every mode present (older configs lack some)."""
    return {**DEFAULT, **(cfg.get("compute") or {})}


def label(cfg):
    """'fp32' for the paper default, else the enabled modes joined by '+', e.g. 'tf32+bf16'."""
    on = [m for m, v in settings(cfg).items() if v]
    return "+".join(on) if on else "fp32"


def set_matmul_precision(cfg):
    """TF32 on or off for CUDA matmuls and cuDNN convolutions (off unless compute.tf32).
    PyTorch leaves cuDNN TF32 on by default, so float32 must be asked for explicitly."""
    mode = "tf32" if settings(cfg)["tf32"] else "ieee"
    torch.backends.cuda.matmul.fp32_precision = mode
    torch.backends.cudnn.conv.fp32_precision = mode


def autocast(cfg, device):
    """bfloat16 autocast around network calls when compute.bf16, else a no-op context."""
    if not settings(cfg)["bf16"]:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def memory_format(cfg, x):
    """Inputs in channels-last layout when the mode is on (4-D image tensors only)."""
    if settings(cfg)["channels_last"] and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def prepare_network(cfg, net):
    """Apply the layout mode to a network's parameters; returns the network."""
    if settings(cfg)["channels_last"]:
        net = net.to(memory_format=torch.channels_last)
    return net
