"""Post-training weight quantisation, fake-quantised (quantise then dequantise) (REFERENCE 2).

Per tensor, asymmetric uniform min-max with b bits:
  scale = (max - min) / (2^b - 1);  zp = int(clamp(-min / scale, 0, 2^b - 1))
  q = round(clamp(zp + w / scale, 0, 2^b - 1));  w' = scale * (q - zp)
The range is widened to contain 0 (min <- min(min, 0), max <- max(max, 0)), as min-max observers
do and as the zero point's clamp to [0, 2^b - 1] presumes: for a tensor with both signs (every tensor
the paper's rule quantises) this is the formula above unchanged; for an all-positive tensor such as a
norm's scale (rule 'all') the unwidened formula clamps everything above max - min to max - min, which
measured fd-digits ~900 at 9 bits, a broken network rather than a quantisation effect.
Biases and activations stay float32. Which weights are quantised (names as in EDM's networks):
- 'paper': the authors' rule: names containing "weight", except those containing "norm",
  "affine", "map" or the top-resolution tag ("32" on CIFAR-10, i.e. every 32x32 layer, which
  includes the output norm and convolution); the network's output layers stay float32 even
  when their names carry no resolution tag (REFERENCE 9).
- 'output': the paper rule without the resolution tag: only norms, affine/mapping layers and
  the output layers stay float32 (the proxy analogue: an 8x8 net has little besides its top level).
- 'all': every parameter whose name contains "weight".
"""
import torch

from pfgmbench.errors import UserError

RULES = ("paper", "output", "all")


def fake_quantize(w, bits):
    levels = 2 ** bits - 1
    lo, hi = w.min(), w.max()
    if lo == hi:                    # a constant tensor is already on any grid
        return w.clone()
    lo, hi = lo.clamp(max=0), hi.clamp(min=0)
    scale = (hi - lo) / levels
    zp = torch.clamp(-lo / scale, 0, levels).to(torch.int64).to(w.dtype)   # int(): truncation
    q = torch.round(torch.clamp(zp + w / scale, 0, levels))
    return scale * (q - zp)


def output_layer_names(net):
    """Full names of the modules a network marks as its output layers (attribute `output_layers`)."""
    names = []
    for prefix, module in net.named_modules():
        for rel in getattr(module, "output_layers", ()):
            names.append(f"{prefix}.{rel}" if prefix else rel)
    return tuple(names)


def selected(name, rule="paper", top_res=None, output_layers=()):
    if "weight" not in name:
        return False
    if rule == "all":
        return True
    if any(tag in name for tag in ("norm", "affine", "map")):
        return False
    if any(name.startswith(layer + ".") for layer in output_layers):
        return False
    if rule == "paper" and top_res is not None and f"{top_res}x{top_res}" in name:
        return False
    return True


def quantize_model(net, bits, rule="paper", top_res=None):
    """Fake-quantise `net` in place; returns (#tensors, #parameters quantised, #parameters total)."""
    if rule not in RULES:
        raise UserError(f"--quant-rule must be one of {', '.join(RULES)}, got '{rule}'")
    if not 2 <= int(bits) <= 16:
        raise UserError(f"--quant-bits must be between 2 and 16, got {bits}")
    outputs = output_layer_names(net)
    tensors = count = total = 0
    with torch.no_grad():
        for name, p in net.named_parameters():
            total += p.numel()
            if selected(name, rule, top_res, outputs):
                p.copy_(fake_quantize(p, int(bits)))
                tensors += 1
                count += p.numel()
    return tensors, count, total


def top_resolution(snap):
    """The network's top resolution tag: the image size, over the patch size of a patch network."""
    shape = snap.get("data_shape") or []
    patch = int(((snap.get("config") or {}).get("net") or {}).get("patch", 1))
    return shape[-1] // patch if len(shape) == 3 else None
