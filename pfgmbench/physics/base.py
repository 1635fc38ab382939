"""The model-family interface: everything that differs between diffusion, Poisson-flow and other
PDE-derived models lives behind these methods. The loss, the solvers, the training loop and the
tables call only these; they never ask which family they hold.

A family provides (TorchCFM's one-class-per-path, EDM's loss classes without their repetition):
  label, knobs, paper_knobs     how a row is named in tables and CSVs, and its proxy mapping
  training_example              the time/noise law, the perturbation, the target, the loss weight
                                (drawn for the whole global batch at once: a target may need it all)
  head                          the preconditioning around a backbone network
  prior, grid, velocity         where sampling starts (float64), the solver's grid, and dx/dt
  step_noise                    the robustness hook x <- x + alpha t eps before each step
  to_data                       the map from the solver's state back to data space
"""
from dataclasses import dataclass, fields

import torch

from pfgmbench.errors import UserError


@dataclass
class TrainingExample:
    """One global batch of training pairs: the network sees (x, t), is regressed on `target`,
    each example weighted by `weight` (loss.py). Every field has the batch as its first axis."""
    x: torch.Tensor
    t: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor

    def __getitem__(self, part):
        return TrainingExample(*(getattr(self, f.name)[part] for f in fields(self)))


class Family:
    name = None                       # registry key: config physics.family and the CSV 'family' column
    samplers = {"heun": "heun", "euler": "euler"}   # sampler name -> the generic solver it runs (solvers.py)
    default_sampler = "heun"
    batch_coupled = ()                # samplers whose steps are shared by a batch (adaptive ones)
    knob_names = ()                   # config physics keys that identify a row (CSV knobs)
    defaults = {}                     # this family's own physics keys, merged into presets that use it

    def __init__(self, cfg, data_shape):
        """`cfg`: the resolved config (its physics and sample sections); `data_shape`: one example's shape."""
        self.physics, self.sampling = dict(cfg["physics"]), dict(cfg["sample"])
        self.shape = tuple(data_shape)
        self.N = 1
        for s in self.shape:
            self.N *= int(s)

    # --- configuration ---
    @classmethod
    def configure(cls, cfg, D=None):
        """Adjust a preset's config when `--family` selects this family (e.g. EDM sets D = inf).
        Only families with the knob D take --D."""
        if D is not None and "D" not in cls.knob_names:
            raise UserError(f"family {cls.name} has no D; drop --D")
        return cfg

    @classmethod
    def check_config(cls, cfg):
        """Raise UserError when the config's physics section does not suit this family."""

    # --- the authors' checkpoints (importer.py): their preconditioner class and its recorded knobs ---
    authors_precond = None            # the class name of this family's network in EDM's layout, if any

    @classmethod
    def from_authors(cls, get, D, source):
        """The physics knobs recorded on the authors' preconditioner (`get(name)` reads an attribute,
        else its constructor argument, else EDM's default) -> (physics section updates, recorded D or None)."""
        raise UserError(f"{source}: family {cls.name} has no counterpart in the authors' checkpoints")

    def to_authors(self):
        """(class name, attributes, constructor arguments) of this model's preconditioner in EDM's layout."""
        raise UserError(f"family {self.name} has no preconditioner in EDM's layout (EDM, PFGM++, VP and VE do)")

    # --- identity in tables ---
    def label(self, sampler=None):
        """The method's name in tables, e.g. 'PFGM++' ('DDIM' for a VP model sampled with DDIM)."""
        raise NotImplementedError

    def knobs(self):
        """{knob: value} of this model (CSV columns), e.g. {'D': 128.0}."""
        return {k: self.physics[k] for k in self.knob_names}

    @classmethod
    def method_name(cls, knobs, sampler=None):
        """The method's name for a row with these knobs that has no model yet (a 'not run' row)."""
        return cls.name

    @classmethod
    def note(cls, knobs):
        """A remark tables print beside a row with these knobs (e.g. a heavy-tailed kernel); '' if none."""
        return ""

    @classmethod
    def proxy_knobs(cls, knobs, N, paper_N):
        """Map the paper's knob values (data dimension paper_N) to a proxy's data dimension N;
        identity by default. Raises UserError when a value has no counterpart at this N."""
        return dict(knobs)

    @classmethod
    def fit_to_data(cls, cfg, dataset):
        """Fill knobs the paper derives from the data (PFGM's M, z_max) before training; default: none."""
        return cfg

    # --- training ---
    def training_example(self, y, generator, draw_data=None):
        """A TrainingExample for the minibatch y; `draw_data(n)` gives n more training points for
        targets that need a large batch (PFGM)."""
        raise NotImplementedError

    def head(self, backbone, label_dim=0):
        """The preconditioning module around `backbone` whose forward is (x, t, labels, augment_labels)."""
        raise NotImplementedError

    def net_channels(self, channels):
        """(input, output) channels of the backbone for data with `channels` channels."""
        return channels, channels

    # --- sampling ---
    def prior(self, shape, generator, sampler=None):
        """Starting states of sampling for a batch `shape` = (B, *data_shape), float64."""
        raise NotImplementedError

    def grid(self, steps, device="cpu", sampler=None):
        """The solver's time grid (float64), from the prior's time to the end."""
        raise NotImplementedError

    def velocity(self, model, sampler=None):
        """dx/dt as a function of (x, t) given `model(x, t_batch) -> network output` (float64 state)."""
        raise NotImplementedError

    def solver_options(self, sampler):
        """Extra keyword arguments for the solver (e.g. RK45 tolerances)."""
        return {}

    def finish(self, model, x, grid, sampler=None):
        """A last step after the solver, e.g. the denoising step at the end of an adaptive solve that
        stops short of noise level zero (score-SDE's noise removal); none by default."""
        return x

    step_noise_defined = False        # whether `step_noise` (PFGM++'s alpha test) means something here

    @classmethod
    def require_step_noise(cls):
        """Refuse the alpha test for a family where t is not a noise level (checked before any output)."""
        if not cls.step_noise_defined:
            raise UserError(f"alpha (PFGM++'s step-noise test) is not defined for family {cls.name}; "
                            "drop --alpha, or use a PFGM++/EDM model")

    def step_noise(self, x, t, alpha, eps):
        """PFGM++'s robustness test, x <- x + alpha t_i eps before each step; t is a noise level only
        for the families that define it."""
        self.require_step_noise()

    def to_data(self, x):
        return x
