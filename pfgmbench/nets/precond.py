"""EDM preconditioning (Karras et al. 2022, Table 1), used by PFGM++ for every D."""
import torch


class EDMPrecond(torch.nn.Module):
    def __init__(self, model, sigma_data=0.5, label_dim=0):
        super().__init__()
        self.model = model
        self.sigma_data = sigma_data
        self.label_dim = label_dim

    def forward(self, x, sigma, class_labels=None, augment_labels=None):
        """D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)."""
        sd = self.sigma_data
        s = sigma.to(torch.float32).reshape(-1, *([1] * (x.dim() - 1)))
        c_skip = sd ** 2 / (s ** 2 + sd ** 2)
        c_out = s * sd / (s ** 2 + sd ** 2).sqrt()
        c_in = 1 / (s ** 2 + sd ** 2).sqrt()
        c_noise = s.flatten().log() / 4
        x32 = x.to(torch.float32)
        F = self.model(c_in * x32, c_noise, class_labels=class_labels, augment_labels=augment_labels)
        return c_skip * x32 + c_out * F
