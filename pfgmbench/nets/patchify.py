"""A backbone that sees an image as p x p patches: pixel_unshuffle (C, H, W) -> (C p^2, H/p, W/p), the
inner network, pixel_shuffle back. The reshape is a lossless permutation of the N coordinates, so the
model still denoises (and its kernel still lives in) all N dimensions, at the cost of a network on the
smaller grid (DiT and U-ViT tokenise images the same way). The regime proxy uses it: digits at 32x32
keep N = 1024 for the D/N mapping while training at the cost of the 8x8 network."""
import torch
import torch.nn.functional as F


class Patchify(torch.nn.Module):
    def __init__(self, inner, patch):
        super().__init__()
        self.inner, self.patch = inner, patch   # quantisation finds the inner net's output_layers itself

    def forward(self, x, c_noise, class_labels=None, augment_labels=None):
        out = self.inner(F.pixel_unshuffle(x, self.patch), c_noise, class_labels=class_labels,
                         augment_labels=augment_labels)
        return F.pixel_shuffle(out, self.patch)
