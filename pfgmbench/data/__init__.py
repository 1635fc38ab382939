"""Data set registry: name -> loader. Every loader returns a `Dataset` with images in [-1, 1]."""
from pfgmbench.data.base import Dataset
from pfgmbench.errors import UserError


def load_dataset(cfg_data, split="train"):
    """Load the data set a config's `data` section names (split: 'train' or 'test')."""
    from pfgmbench.data import digits, images, synthetic, toys

    name = cfg_data["name"]
    if name == "digits":
        return digits.load(split)
    if name == "digits32":
        return digits.load_upsampled(split, 4)
    if synthetic.is_synthetic(name):
        return synthetic.load(name, split)
    if name in toys.TOYS:
        return toys.load(name, split)
    if name == "cifar10":
        return images.load_cifar10(cfg_data.get("root"), split, download=cfg_data.get("download", True))
    if name == "imagefolder":
        return images.load_image_folder(cfg_data.get("root"))
    raise UserError(f"unknown data set '{name}'; choose digits, digits32, cifar10, imagefolder, synthetic[-CxHxW] or a toy "
                    f"({', '.join(sorted(toys.TOYS))})")


def example_shape(cfg_data):
    """The shape of one example, known without loading for the built-in data sets; an image folder
    is opened to find out (its resolution is whatever the files have)."""
    from pfgmbench.data import synthetic, toys

    name = cfg_data["name"]
    if name == "digits":
        return (1, 8, 8)
    if name == "digits32":
        return (1, 32, 32)
    if synthetic.is_synthetic(name):
        return synthetic.shape_of(name)
    if name == "cifar10":
        return (3, 32, 32)
    if name in toys.TOYS:
        return (toys.dimension(name),)
    return load_dataset(cfg_data).shape


def data_N(cfg_data):
    """N = C*H*W, the data dimension (REFERENCE notation)."""
    n = 1
    for s in example_shape(cfg_data):
        n *= s
    return n


__all__ = ["Dataset", "data_N", "example_shape", "load_dataset"]
