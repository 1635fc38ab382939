"""Preconditioning heads: what each model family puts around a backbone F(x, c_noise, labels, aug).

EDM (Karras et al. 2022, Table 1) for PFGM++ at every D; VP and VE in EDM's view of the
score-SDE models; PFGM's head, which reads the field's z component from an extra output channel.
"""
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


class VPPrecond(torch.nn.Module):
    """VP (EDM Table 1): c_skip = 1, c_out = -sigma, c_in = 1/sqrt(sigma^2 + 1), c_noise = (M - 1) t(sigma),
    with t(sigma) the inverse of sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1)."""

    def __init__(self, model, beta_d=19.9, beta_min=0.1, M=1000, label_dim=0):
        super().__init__()
        self.model, self.beta_d, self.beta_min, self.M, self.label_dim = model, beta_d, beta_min, M, label_dim

    def t_of_sigma(self, sigma):
        return ((self.beta_min ** 2 + 2 * self.beta_d * (1 + sigma ** 2).log()).sqrt() - self.beta_min) / self.beta_d

    def forward(self, x, sigma, class_labels=None, augment_labels=None):
        s = sigma.to(torch.float32).reshape(-1, *([1] * (x.dim() - 1)))
        x32 = x.to(torch.float32)
        c_in = 1 / (s ** 2 + 1).sqrt()
        c_noise = (self.M - 1) * self.t_of_sigma(s.flatten())
        F = self.model(c_in * x32, c_noise, class_labels=class_labels, augment_labels=augment_labels)
        return x32 - s * F


class VEPrecond(torch.nn.Module):
    """VE (EDM Table 1): c_skip = 1, c_out = sigma, c_in = 1, c_noise = ln(sigma / 2)."""

    def __init__(self, model, label_dim=0):
        super().__init__()
        self.model, self.label_dim = model, label_dim

    def forward(self, x, sigma, class_labels=None, augment_labels=None):
        s = sigma.to(torch.float32).reshape(-1, *([1] * (x.dim() - 1)))
        x32 = x.to(torch.float32)
        F = self.model(x32, (0.5 * s.flatten()).log(), class_labels=class_labels, augment_labels=augment_labels)
        return x32 + s * F


class PFGMHead(torch.nn.Module):
    """PFGM: no input scaling; z enters through the noise embedding (as is for a positional embedding,
    as ln z for a Fourier one, as in the authors' DDPM++ / NCSN++); the backbone's extra output channel,
    averaged over space, is the field's z component. Returns the (N + 1)-dim field, flattened."""

    def __init__(self, model, label_dim=0):
        super().__init__()
        self.model, self.label_dim = model, label_dim
        from pfgmbench.nets.songunet import PositionalEmbedding

        self.raw_z = isinstance(getattr(model, "map_noise", None), PositionalEmbedding)

    def forward(self, x, z, class_labels=None, augment_labels=None):
        z = z.to(torch.float32).flatten()
        c_noise = z if self.raw_z else z.log()
        out = self.model(x.to(torch.float32), c_noise, class_labels=class_labels, augment_labels=augment_labels)
        if out.dim() == 2:            # point clouds: the last output is the z component
            return out
        return torch.cat([out[:, :-1].flatten(1), out[:, -1].mean(dim=(1, 2))[:, None]], dim=1)
