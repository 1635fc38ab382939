"""Post-training weight quantisation, fake-quantised (quantise then dequantise) (REFERENCE 2).

Per tensor, asymmetric uniform min-max with b bits:
  scale = (max - min) / (2^b - 1);  zp = int(clamp(-min / scale, 0, 2^b - 1))
  q = round(clamp(zp + w / scale, 0, 2^b - 1));  w' = scale * (q - zp)
Rule 'paper': parameters whose name contains "weight", except names containing "norm",
"affine", "map", or the top-resolution tag (the authors' "32" on CIFAR-10 keeps every 32x32
layer in full precision; here the tag is the network's own top resolution, ".32_" on CIFAR).
Rule 'all': every parameter whose name contains "weight". Biases and activations stay float32.
"""
import torch

from pfgmbench.errors import UserError

RULES = ("paper", "all")


def fake_quantize(w, bits):
    levels = 2 ** bits - 1
    lo, hi = w.min(), w.max()
    scale = (hi - lo) / levels
    if scale == 0:
        return w.clone()
    zp = torch.clamp(-lo / scale, 0, levels).to(torch.int64).to(w.dtype)   # int(): truncation
    q = torch.round(torch.clamp(zp + w / scale, 0, levels))
    return scale * (q - zp)


def selected(name, rule="paper", top_res=None):
    if "weight" not in name:
        return False
    if rule == "all":
        return True
    if any(tag in name for tag in ("norm", "affine", "map")):
        return False
    if top_res is not None and f".{top_res}_" in name:
        return False
    return True


def quantize_model(net, bits, rule="paper", top_res=None):
    """Fake-quantise `net` in place; returns (#tensors, #parameters quantised, #parameters total)."""
    if rule not in RULES:
        raise UserError(f"--quant-rule must be one of {', '.join(RULES)}, got '{rule}'")
    if not 2 <= int(bits) <= 16:
        raise UserError(f"--quant-bits must be between 2 and 16, got {bits}")
    tensors = count = total = 0
    with torch.no_grad():
        for name, p in net.named_parameters():
            total += p.numel()
            if selected(name, rule, top_res):
                p.copy_(fake_quantize(p, int(bits)))
                tensors += 1
                count += p.numel()
    return tensors, count, total


def top_resolution(snap):
    shape = snap.get("data_shape") or []
    return shape[-1] if len(shape) == 3 else None
