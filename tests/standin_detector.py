"""A random-weight TorchScript stand-in with the TF Inception detector's call signature.

forward(img, return_features=False, use_fp16=False, no_output_bias=False), .layers, .output:
img is float [0, 255] NCHW, resized to 299 inside; .layers takes the normalised 299 x 299
input; .output is the 2048 -> 1008 classifier. Built in a test's temporary folder only.
"""
import torch
import torch.nn.functional as F
from torch import nn


class StandIn(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.Tanh(), nn.AdaptiveAvgPool2d(4),
                                    nn.Flatten(), nn.Linear(128, 2048), nn.ReLU())
        self.output = nn.Linear(2048, 1008)

    def forward(self, img, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False):
        x = img.to(torch.float32)
        if x.shape[2] != 299 or x.shape[3] != 299:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        features = self.layers((x - 128) / 128).reshape(-1, 2048)
        if return_features:
            return features
        if no_output_bias:
            logits = F.linear(features, self.output.weight)
        else:
            logits = self.output(features)
        return F.softmax(logits, dim=1)


def build(folder):
    torch.manual_seed(0)
    path = folder / "inception-2015-12-05.pt"
    torch.jit.script(StandIn().eval()).save(str(path))
    return path
