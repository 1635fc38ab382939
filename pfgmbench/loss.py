"""One loss for every model family (EDM eq. 2 generalised):

    L = weight(t) * || F(x; t) - target ||^2, summed over the example's dimensions,

where the family draws t, perturbs the data into x, and supplies the target and the weight
(physics/base.py). For PFGM++ / EDM, F is the denoiser D(x; sigma), the target is the clean
image and weight = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2.
"""


def loss(model, example, labels=None, augment_labels=None):
    """Per-example loss (B,) of `model` on a TrainingExample (or a slice of one)."""
    err = (model(example.x, example.t, labels, augment_labels) - example.target).square().flatten(1).sum(1)
    return example.weight * err
