"""Import the authors' released checkpoints (EDM .pkl, PFGM++ .pt) without running code from them.

The authors' files are pickles of their network objects. EDM's `torch_utils.persistence` reduces
each network object to `_reconstruct_persistent_obj(meta)`, where meta holds the class name, the
object's __dict__ (init_args / init_kwargs, _modules, _parameters, _buffers ...) and `module_src`,
the full source of training/networks.py, which a normal unpickle EXECUTES. Here:

  * SafeUnpickler resolves a short allow-list of globals (ALLOWED) to local stand-ins that build
    plain data: a persistent object becomes a `Record` (module_src is hashed, never compiled or
    run), torch containers become `Record`s, storages and tensors become lazy `TensorRef`s.
    Any other global (os.system, builtins.eval, subprocess.Popen, an unknown class ...) raises
    UserError naming it, before anything is called.
  * Tensors come from the zip layout of torch.save (.pt: data.pkl + data/<key> entries, read here
    with zipfile) or from the legacy layout of a plain pickle (.pkl: each storage is a small legacy
    torch.save blob, decoded with torch.load(weights_only=True), torch's own safe loader).
  * recover_network() maps the records onto pfgmbench's config (net section, model family and its
    knobs) and state_dict (the same layer names as EDM's SongUNet); import_checkpoint() writes a
    normal run folder that `pfgmbench sample` / `eval` read.

export_edm_layout() goes the other way: a pfgmbench snapshot written in EDM's .pkl layout (with a
placeholder instead of module_src), so an export -> import round trip is bit-identical.
"""
import _compat_pickle
import collections
import copy
import hashlib
import io
import json
import math
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from pfgmbench import checkpoint
from pfgmbench.atomic import atomic_path, file_sha256, write_text
from pfgmbench.errors import UserError
from pfgmbench.nets import SONGUNET_KEYS
from pfgmbench.physics import build_family, family_for_authors_precond

RECONSTRUCT = ("torch_utils.persistence", "_reconstruct_persistent_obj")
PLACEHOLDER_SRC = ("# Written by pfgmbench (export_edm_layout): the module source is not included.\n"
                   "# Load with `pfgmbench import`, or substitute EDM's training/networks.py through\n"
                   "# torch_utils.persistence.import_hook.\n")

# Persistent classes of the authors' training/networks.py that pfgmbench reads (and what they map to).
PRECONDS = ("EDMPrecond", "VPPrecond", "VEPrecond")    # the authors' preconditioners; the families say which is theirs
LAYER_CLASSES = {"SongUNet", "Linear", "Conv2d", "GroupNorm", "UNetBlock", "PositionalEmbedding",
                 "FourierEmbedding", "AttentionOp"}
CONTAINERS = {"ModuleDict", "ModuleList", "Sequential"}
NO_COUNTERPART = {"DhariwalUNet": "the ADM U-Net (DhariwalUNet)", "iDDPMPrecond": "iDDPM's preconditioning"}

# EDM's SongUNet signature: positional order and defaults (training/networks.py).
SONGUNET_ARGS = ("img_resolution", "in_channels", "out_channels", "label_dim", "augment_dim", "model_channels",
                 "channel_mult", "channel_mult_emb", "num_blocks", "attn_resolutions", "dropout", "label_dropout",
                 "embedding_type", "channel_mult_noise", "encoder_type", "decoder_type", "resample_filter")
SONGUNET_DEFAULTS = {"label_dim": 0, "augment_dim": 0, "model_channels": 128, "channel_mult": [1, 2, 2, 2],
                     "channel_mult_emb": 4, "num_blocks": 4, "attn_resolutions": [16], "dropout": 0.1,
                     "label_dropout": 0.0, "embedding_type": "positional", "channel_mult_noise": 1,
                     "encoder_type": "standard", "decoder_type": "standard", "resample_filter": [1, 1]}
PRECOND_ARGS = ("img_resolution", "img_channels", "label_dim")
PRECOND_DEFAULTS = {"EDMPrecond": {"sigma_data": 0.5},
                    "VPPrecond": {"beta_d": 19.9, "beta_min": 0.1, "M": 1000, "epsilon_t": 1e-5},
                    "VEPrecond": {"sigma_min": 0.02, "sigma_max": 100.0}}


# ----------------------------------------------------------------------------------------------
# Data records the unpickler builds


class Record:
    """One object of the authors' code, as data: its class name and its state (the __dict__)."""

    def __init__(self, class_name, state=None, source_sha256=None):
        self.class_name, self.state, self.source_sha256 = class_name, state or {}, source_sha256

    def __setstate__(self, state):      # BUILD of a pickled container (e.g. torch's ModuleDict)
        if not isinstance(state, dict):
            raise UserError(f"malformed checkpoint: {self.class_name} has state of type {type(state).__name__}")
        self.state = dict(state)

    def get(self, key, default=None):
        return self.state.get(key, default)

    def table(self, key):
        """A dict entry of the state (_modules, _parameters, _buffers, _init_kwargs), {} if absent."""
        value = self.get(key)
        return dict(value) if isinstance(value, dict) else {}

    @property
    def modules(self):
        return self.table("_modules")

    def init_kwargs(self, positional=()):
        """The constructor's keyword arguments (persistent objects record them), positional ones named."""
        kwargs = self.table("_init_kwargs")
        args = self.get("_init_args")
        kwargs.update(zip(positional, args if isinstance(args, (tuple, list)) else ()))
        return kwargs

    def __repr__(self):
        return f"Record({self.class_name})"


def _container_class(name):
    """A stand-in for a torch container class (made by NEWOBJ or REDUCE, filled by BUILD)."""
    def new(cls, *args, **kwargs):
        obj = Record.__new__(cls)
        Record.__init__(obj, name)
        return obj

    return type(name, (Record,), {"__new__": new, "__init__": lambda self, *args, **kwargs: None})


class _Sealed:
    """Objects the unpickler hands out that a pickle's BUILD opcode must not modify."""
    __slots__ = ()

    def __setstate__(self, state):
        raise UserError(f"malformed checkpoint: it tries to set the state of a {type(self).__name__.lstrip('_')}")


class Storage(_Sealed):
    """A storage of the checkpoint, decoded only when a tensor that uses it is materialised."""
    __slots__ = ("_flat", "_read")

    def __init__(self, read):
        self._read, self._flat = read, None

    def flat(self):
        """The storage as a 1-D tensor of its dtype."""
        if self._flat is None:
            try:
                self._flat = self._read()
            except UserError:
                raise
            except Exception as e:
                raise UserError(f"malformed checkpoint: a storage cannot be read ({type(e).__name__})") from None
        return self._flat


class TensorRef(_Sealed):
    """A tensor of the checkpoint: (storage, offset, size, stride), materialised by load()."""
    __slots__ = ("offset", "size", "storage", "stride")

    def __init__(self, storage, offset, size, stride):
        if not (isinstance(storage, Storage) and isinstance(offset, int) and offset >= 0
                and isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list))
                and len(size) == len(stride) and all(isinstance(v, int) and v >= 0 for v in (*size, *stride))):
            raise UserError("malformed checkpoint: a tensor with an invalid storage, offset, size or stride")
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def load(self):
        """A new tensor holding the values (bounds checked against the storage)."""
        flat = self.storage.flat()
        if 0 in self.size:
            return torch.empty(self.size, dtype=flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= flat.numel():
            raise UserError("malformed checkpoint: a tensor reaches past the end of its storage")
        return flat.as_strided(self.size, self.stride, self.offset).clone()


class _Call(_Sealed):
    """An allow-listed function as the unpickler hands it out (a fresh, sealed wrapper per file)."""
    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)


# ----------------------------------------------------------------------------------------------
# The allow-listed globals, each a local function or class that only builds data


def _persistent_record(meta):
    """torch_utils.persistence._reconstruct_persistent_obj, as data: module_src is hashed, never run."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise UserError("malformed checkpoint: a persistent object without type 'class' and a class name")
    state = meta.get("state") or {}
    if not isinstance(state, dict):
        raise UserError(f"malformed checkpoint: persistent {meta['class_name']} has no state dict")
    src = meta.get("module_src")
    digest = hashlib.sha256(src.encode("utf-8", "replace")).hexdigest() if isinstance(src, str) else None
    return Record(meta["class_name"], dict(state), digest)


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    if not isinstance(data, TensorRef):
        raise UserError("malformed checkpoint: a parameter that is not a tensor")
    return data


def _storage_from_bytes(data):
    """torch.storage._load_from_bytes: a legacy torch.save blob of one storage, decoded lazily with
    torch.load(weights_only=True)."""
    if not isinstance(data, (bytes, bytearray)):
        raise UserError("malformed checkpoint: a storage that is not bytes")

    def read():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")      # TypedStorage is deprecated (but is what the blob holds)
                s = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
                if isinstance(s, torch.TypedStorage):
                    return torch.empty(0, dtype=s.dtype).set_(s._untyped_storage, 0, (s.size(),), (1,))
        except Exception as e:
            raise UserError(f"malformed checkpoint: a storage that torch's weights-only loader refuses "
                            f"({type(e).__name__})") from None
        if isinstance(s, torch.UntypedStorage):
            return torch.empty(0, dtype=torch.uint8).set_(s, 0, (s.nbytes(),), (1,))
        raise UserError(f"malformed checkpoint: a storage blob holds a {type(s).__name__}")

    return Storage(read)


class _StorageType(_Sealed):
    """torch.FloatStorage & co. in a zip checkpoint's persistent ids: only their dtype matters."""
    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype


_STORAGE_DTYPES = {"DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
                   "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                   "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                   "BoolStorage": torch.bool, "UntypedStorage": torch.uint8}
_NUMPY_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


def _np_dtype(name, align=False, copy=True):
    if name not in _NUMPY_DTYPES:
        raise UserError(f"refused numpy dtype {name!r} in the checkpoint (only plain numbers are read)")
    return np.dtype(name)


def _np_scalar(dtype, data=None):
    if not (isinstance(dtype, np.dtype) and dtype.kind in "biuf" and isinstance(data, bytes)
            and len(data) == dtype.itemsize):
        raise UserError("malformed checkpoint: a numpy scalar that is not a plain number")
    return np.frombuffer(data, dtype)[0].item()


def _latin1_bytes(text, encoding="latin1"):
    """_codecs.encode as protocol 2 uses it for bytes (e.g. a numpy scalar's raw value)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UserError("malformed checkpoint: _codecs.encode used for anything but bytes")
    return text.encode("latin1")


class _EasyDict(dict):
    """dnnlib.util.EasyDict read as a plain dict."""

    def __setstate__(self, state):
        if state:
            raise UserError("malformed checkpoint: an EasyDict with attributes")


ALLOWED = {
    RECONSTRUCT: _persistent_record,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy", "dtype"): _np_dtype,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    **{("torch", name): dtype for name, dtype in _STORAGE_DTYPES.items()},
    **{("torch.nn.modules.container", name): _container_class(name) for name in CONTAINERS},
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only ALLOWED globals; `zip_storage(key, dtype, numel)` serves the
    persistent ids of a torch.save zip file (None: the file may not have any)."""

    def __init__(self, file, name, zip_storage=None):
        super().__init__(file)
        self.name, self.zip_storage = name, zip_storage

    def find_class(self, module, name):
        # Protocol 2 (torch.save) writes Python 2 names (__builtin__.set, commands.Popen): read them as
        # pickle itself does, so the allow-list and the error speak Python 3.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        target = ALLOWED.get((module, name))
        if target is None:
            raise UserError(f"refused to load {self.name}: it references the global {module}.{name}, which is "
                            "not on the importer's allow-list (the authors' checkpoints never do; the file may "
                            "be malicious)")
        if isinstance(target, torch.dtype):
            return _StorageType(target)
        return target if isinstance(target, type) else _Call(target)

    def persistent_load(self, pid):
        ok = (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
              and isinstance(pid[2], str) and re.fullmatch(r"\w+", pid[2]) and isinstance(pid[4], int)
              and pid[4] >= 0)
        if self.zip_storage is None or not ok:
            raise UserError(f"refused to load {self.name}: it holds a persistent id {str(pid)[:60]!r} that is not "
                            "a torch storage of a zip checkpoint")
        return self.zip_storage(pid[2], pid[1].dtype, pid[4])


# ----------------------------------------------------------------------------------------------
# Reading a file


LEGACY_TORCH_MAGIC = 0x1950a86a20f9469cfc6c


def load_records(path):
    """The checkpoint's top-level object with every network object as a Record and every tensor as
    a TensorRef; nothing from the file is executed. Returns (object, layout) with layout 'zip' or 'pickle'."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path), "zip"
        with open(path, "rb") as f:
            obj = SafeUnpickler(f, path.name).load()
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{path} is corrupt or not an EDM / PFGM++ checkpoint ({type(e).__name__})") from None
    if obj == LEGACY_TORCH_MAGIC:
        raise UserError(f"{path} is a legacy (pre-1.6) torch.save file; re-save it in the zip format")
    return obj, "pickle"


def _load_zip(path):
    """torch.save's zip layout: <prefix>/data.pkl whose persistent ids name <prefix>/data/<key> entries."""
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise UserError(f"{path} is a zip file but not a torch checkpoint (no single */data.pkl)")
        prefix = pkls[0][:-len("data.pkl")]
        if f"{prefix}byteorder" in names and z.read(f"{prefix}byteorder").strip() != b"little":
            raise UserError(f"{path} was saved on a big-endian machine; re-save it on a little-endian one")
        data_pkl = z.read(pkls[0])
    storages = {}

    def zip_storage(key, dtype, numel):
        name = f"{prefix}data/{key}"
        if name not in names:
            raise UserError(f"{path} is corrupt: storage data/{key} is missing")
        if key not in storages:
            def read():
                with zipfile.ZipFile(path) as z:
                    raw = z.read(name)
                size = numel * torch.empty(0, dtype=dtype).element_size()
                if len(raw) < size:
                    raise UserError(f"{path} is corrupt: storage data/{key} is shorter than its {numel} elements")
                return torch.frombuffer(bytearray(raw[:size]), dtype=dtype) if size else torch.empty(0, dtype=dtype)
            storages[key] = Storage(read)
        return storages[key]

    return SafeUnpickler(io.BytesIO(data_pkl), path.name, zip_storage).load()


# ----------------------------------------------------------------------------------------------
# Records -> pfgmbench config + state_dict


SONGUNET_TYPES = {"img_resolution": int, "in_channels": int, "out_channels": int, "label_dim": int,
                  "augment_dim": int, "model_channels": int, "channel_mult": list, "channel_mult_emb": int,
                  "num_blocks": int, "attn_resolutions": list, "dropout": float, "label_dropout": float,
                  "embedding_type": str, "channel_mult_noise": int, "encoder_type": str, "decoder_type": str,
                  "resample_filter": list}


def _typed(kw, path):
    """SongUNet settings as plain config values (ints, floats, strings, lists of ints), else UserError."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    out = {}
    for k, v in kw.items():
        kind = SONGUNET_TYPES[k]
        if kind is list and isinstance(v, (list, tuple)) and all(is_int(x) for x in v):
            out[k] = list(v)
        elif kind is float and (is_int(v) or isinstance(v, float)):
            out[k] = float(v)
        elif (kind is int and is_int(v)) or (kind is str and isinstance(v, str)):
            out[k] = v
        else:
            raise UserError(f"{path}: SongUNet setting {k}={str(v)[:40]!r} is not a valid {kind.__name__}")
    return out


def _number(v, what, path):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise UserError(f"{path}: {what}={str(v)[:40]!r} is not a number")
    return v


def _walk(rec, prefix, out, layers):
    """Collect the persistent parameters and buffers of a network record tree (state_dict order)."""
    if not isinstance(rec, Record):
        raise UserError(f"malformed checkpoint: layer {prefix.rstrip('.') or 'ema'} is a {type(rec).__name__}")
    if any(r is rec for r in layers.values()) or prefix.count(".") > 32:
        raise UserError(f"malformed checkpoint: layer {prefix.rstrip('.')} contains itself")
    name = rec.class_name
    if name in NO_COUNTERPART:
        raise UserError(f"{NO_COUNTERPART[name]} has no pfgmbench counterpart; pfgmbench imports SongUNet "
                        "(DDPM++ / NCSN++) networks with EDM, VP or VE preconditioning only")
    if name not in LAYER_CLASSES | CONTAINERS | set(PRECONDS):
        raise UserError(f"unknown network class '{name}' at {prefix.rstrip('.') or 'ema'}; pfgmbench imports "
                        f"only {', '.join(sorted(LAYER_CLASSES | set(PRECONDS)))}")
    layers[prefix.rstrip(".")] = rec
    skip = rec.get("_non_persistent_buffers_set")
    skip = set(skip) if isinstance(skip, (set, frozenset, list, tuple)) else set()
    for kind in ("_parameters", "_buffers"):
        for k, t in rec.table(kind).items():
            if t is None or (kind == "_buffers" and k in skip):
                continue
            if not isinstance(t, TensorRef):
                raise UserError(f"malformed checkpoint: {prefix}{k} is not a tensor")
            out[prefix + k] = t
    for k, child in rec.modules.items():
        if child is not None:
            _walk(child, f"{prefix}{k}.", out, layers)


def _network_record(obj, path):
    if isinstance(obj, dict) and "ema" in obj:
        obj = obj["ema"]
    if not isinstance(obj, Record):
        raise UserError(f"{path} holds no EDM / PFGM++ network (expected a dict with an 'ema' network)")
    return obj


def recover_network(path, D=None):
    """Read `path` and recover (net config, family, physics knobs, state_dict, data shape, num_classes,
    info) in pfgmbench's layout. `D`: the D the caller asks for (checked against the recorded one)."""
    from pfgmbench.nets.songunet import fir_filter
    from pfgmbench.physics.pfgmpp import parse_D

    path = Path(path)
    obj, layout = load_records(path)
    precond = _network_record(obj, path)
    fam = family_for_authors_precond(precond.class_name)
    if precond.class_name in NO_COUNTERPART or fam is None:
        _walk(precond, "", {}, {})     # names DhariwalUNet / an unknown class
        raise UserError(f"{path}: the network is a {precond.class_name}, not a preconditioned network "
                        f"({', '.join(PRECONDS)})")
    family = fam.name
    model = precond.modules.get("model")
    if not isinstance(model, Record) or model.class_name != "SongUNet":
        name = getattr(model, "class_name", type(model).__name__)
        if name in NO_COUNTERPART:
            raise UserError(f"{NO_COUNTERPART[name]} has no pfgmbench counterpart; pfgmbench imports "
                            "SongUNet (DDPM++ / NCSN++) networks only")
        raise UserError(f"{path}: the preconditioned model is a {name}, not a SongUNet")

    # The backbone's settings: SongUNet's own constructor arguments, else those the precond passed on.
    kw = model.init_kwargs(SONGUNET_ARGS)
    if not kw:
        pk = precond.init_kwargs(PRECOND_ARGS)
        kw = {k: v for k, v in pk.items() if k in SONGUNET_ARGS}
        kw.update(in_channels=pk.get("img_channels"), out_channels=pk.get("img_channels"))
        kw.setdefault("img_resolution", pk.get("img_resolution"))
    unknown = sorted(set(kw) - set(SONGUNET_ARGS))
    if unknown:
        raise UserError(f"{path}: SongUNet setting '{unknown[0]}' has no pfgmbench counterpart")
    if any(kw.get(k) is None for k in ("img_resolution", "in_channels", "out_channels")):
        raise UserError(f"{path}: the SongUNet does not record its resolution and channels")
    kw = _typed({**SONGUNET_DEFAULTS, **kw}, path)
    for k, ok in (("encoder_type", ("standard", "residual")), ("decoder_type", ("standard",)),
                  ("embedding_type", ("positional", "fourier"))):
        if kw[k] not in ok:
            raise UserError(f"{path}: SongUNet {k}='{kw[k]}' is not supported by pfgmbench (use {' or '.join(ok)})")
    if kw["out_channels"] != kw["in_channels"]:
        raise UserError(f"{path}: the SongUNet maps {kw['in_channels']} to {kw['out_channels']} channels; "
                        "pfgmbench's EDM / VP / VE heads need equal counts")
    net_cfg = {"arch": "songunet", **{k: kw[k] for k in SONGUNET_KEYS}}
    shape = [kw["in_channels"], kw["img_resolution"], kw["img_resolution"]]
    num_classes = kw["label_dim"]

    # The model family's knobs: the object's attributes, else its constructor arguments, else defaults.
    pk = {**PRECOND_DEFAULTS.get(precond.class_name, {}), **precond.init_kwargs(PRECOND_ARGS)}

    def get(k):
        v = precond.get(k, pk.get(k))
        return v if v is None or isinstance(v, bool) else _number(v, k, path)

    physics, rec_D = fam.from_authors(get, None if D is None else parse_D(D), path)

    refs, layers = {}, {}
    _walk(precond, "", refs, layers)
    filt = fir_filter(net_cfg["resample_filter"])[None, None]
    state = {}
    for key, ref in refs.items():
        t = ref.load()
        if key.endswith(".resample_filter"):     # EDM keeps it as a buffer; pfgmbench rebuilds it
            if t.shape != filt.shape or not torch.allclose(t.float(), filt, rtol=1e-6, atol=1e-7):
                raise UserError(f"{path}: {key} is not the FIR filter of resample_filter "
                                f"{net_cfg['resample_filter']}")
            continue
        state[key] = t
    info = {"source": str(path), "layout": layout, "precond": precond.class_name, "backbone": model.class_name,
            "module_src_sha256": model.source_sha256, "recorded_D": rec_D,
            "use_fp16": bool(precond.get("use_fp16", False)), "kimg": _kimg(obj, path)}
    return {"net": net_cfg, "family": family, "physics": physics, "state_dict": state, "shape": shape,
            "num_classes": num_classes, "layers": layers, "info": info}


def _kimg(obj, path):
    """Training progress: the PFGM++ .pt's `step` (images), else EDM's file name network-snapshot-KKKKKK.pkl."""
    step = obj.get("step") if isinstance(obj, dict) else None
    if isinstance(step, int) and step >= 0:
        return step / 1000
    m = re.search(r"(\d{6,})\.(pkl|pt)$", Path(path).name)
    return float(m.group(1)) if m else 0.0


def _check_layers(layers, net):
    """Each layer of the checkpoint against the pfgmbench module of the same name: its kind, and the
    settings the state_dict does not show (norm groups and eps, attention heads, resampling, embedding)."""
    from torch import nn

    from pfgmbench.nets import songunet as su

    kinds = {"SongUNet": su.SongUNet, "UNetBlock": su.UNetBlock, "Conv2d": su.Conv, "Linear": nn.Linear,
             "GroupNorm": nn.GroupNorm, "PositionalEmbedding": su.PositionalEmbedding,
             "FourierEmbedding": su.FourierEmbedding, "ModuleDict": nn.ModuleDict}
    for name, rec in layers.items():
        if not name:
            continue                      # the preconditioner: the model family builds its head
        try:
            mod = net.get_submodule(name)
        except AttributeError:
            mod = None
        if not isinstance(mod, kinds.get(rec.class_name, ())):
            raise UserError(f"checkpoint layer '{name}' ({rec.class_name}) has no counterpart in pfgmbench's "
                            f"SongUNet (which has {type(mod).__name__ if mod is not None else 'nothing'} there)")
        g = rec.get
        checks = []
        if rec.class_name == "GroupNorm":
            checks = [("num_groups", g("num_groups"), mod.num_groups), ("eps", g("eps"), mod.eps)]
        elif rec.class_name == "Conv2d":
            resamples = bool(g("up")) or bool(g("down"))
            checks = [("up", bool(g("up")), mod.up), ("down", bool(g("down")), mod.down),
                      ("fused_resample", bool(g("fused_resample")) and resamples, mod.fused and (mod.up or mod.down))]
        elif rec.class_name == "UNetBlock":
            checks = [("num_heads", g("num_heads"), 1 if mod.attention else 0),
                      ("adaptive_scale", bool(g("adaptive_scale")), False),
                      ("skip_scale", _rounded(g("skip_scale", 1)), _rounded(math.sqrt(0.5)))]
        elif rec.class_name == "PositionalEmbedding":
            checks = [("endpoint", bool(g("endpoint")), True), ("max_positions", g("max_positions"), mod.max_positions),
                      ("num_channels", g("num_channels"), mod.channels)]
        for attr, theirs, ours in checks:
            if theirs != ours:
                raise UserError(f"checkpoint layer '{name}' ({rec.class_name}) has {attr}={theirs!r}; "
                                f"pfgmbench's SongUNet uses {ours!r}")


def _rounded(v):
    return round(v, 6) if isinstance(v, (int, float)) else v


def _check_state(state, net, path):
    """strict load_state_dict, with the first bad key named."""
    want = net.state_dict()
    for key in list(want) + list(state):
        if key not in state or key not in want or state[key].shape != want[key].shape:
            what = ("missing" if key not in state else "unexpected" if key not in want else
                    f"shaped {tuple(state[key].shape)}, not {tuple(want[key].shape)}")
            raise UserError(f"{path}: the imported network does not match pfgmbench's ({key} is {what})")
        state[key] = state[key].to(want[key].dtype)
    net.load_state_dict(state, strict=True)


def _pick_preset(shape, net_cfg):
    C, H, W = shape
    if (C, H, W) == (3, 32, 32):
        return "cifar10-ncsnpp" if net_cfg["embedding_type"] == "fourier" else "cifar10-ddpmpp"
    if (C, H, W) == (3, 64, 64):
        return "ffhq64-ddpmpp"
    raise UserError(f"no preset matches {C}x{H}x{W} images; pass --preset (e.g. cifar10-ddpmpp) to base the "
                    "run's config on")


def _data_section(data):
    """`data` as a config data section: a dict as is, an existing path / .zip as an image folder, else a name."""
    if data is None or isinstance(data, dict):
        return dict(data or {})
    text = str(data)
    if Path(text).exists() or text.endswith(".zip"):
        return {"name": "imagefolder", "root": text}
    return {"name": text}


def import_checkpoint(path, out, preset=None, D=None, data=None):
    """Import an authors' checkpoint (EDM .pkl or PFGM++ .pt) into a new pfgmbench run folder `out`.

    The config is `preset` (default: the one matching the data: cifar10-ncsnpp / cifar10-ddpmpp for
    3x32x32, ffhq64-ddpmpp for 3x64x64) with the net section, model family and knobs of the
    checkpoint; `D` must agree with the D the checkpoint records (and is required when it records
    none); `data` (a data-set name, an image folder / zip, or a dict) replaces the preset's data set.
    Writes config.yaml, network-snapshot-KKKKKK.pt and imported.json; returns the folder."""
    from pfgmbench.config import dump, resolve, validate
    from pfgmbench.model import build_network

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a new folder for the imported run")
    if (out / "config.yaml").exists() or checkpoint.list_snapshots(out):
        raise UserError(f"{out} is already a run folder; choose a new --out")
    got = recover_network(path, D)
    shape, ncls, family = got["shape"], got["num_classes"], got["family"]
    preset = preset or _pick_preset(shape, got["net"])
    cfg = resolve(preset, family=family, physics={k: v for k, v in got["physics"].items() if not isinstance(v, dict)})
    cfg["net"] = {**cfg["net"], **got["net"]}
    for k, v in got["physics"].items():
        cfg["physics"][k] = {**cfg["physics"].get(k, {}), **v} if isinstance(v, dict) else v
    cfg["data"] = {**cfg["data"], **_data_section(data), "cond": ncls > 0}
    cfg["description"] = f"imported from {Path(path).name} ({got['info']['precond']} + SongUNet)"
    cfg = validate(cfg)

    net = build_network(cfg, tuple(shape), ncls)
    _check_layers(got["layers"], net)
    state = got["state_dict"]
    _check_state(state, net, path)
    kimg = float(got["info"]["kimg"])
    snap = {"format": checkpoint.SNAPSHOT_FORMAT, "config": dump(cfg), "kimg": kimg, "ema": net.state_dict(),
            "data_shape": list(shape), "num_classes": ncls}
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.yaml", dump(cfg))
    snap_path = checkpoint.snapshot_path(out, round(kimg * 1000))
    checkpoint.save(snap_path, snap)
    info = {**got["info"], "source_sha256": file_sha256(path), "snapshot": snap_path.name, "preset": preset}
    if info["recorded_D"] is not None:
        info["recorded_D"] = f"{info['recorded_D']:g}"      # 'inf' rather than JSON's non-standard Infinity
    write_text(out / "imported.json", json.dumps(info, indent=2, default=str) + "\n")
    checkpoint.load_network(snap_path)     # what `pfgmbench sample` does: must succeed
    return out


# ----------------------------------------------------------------------------------------------
# Export: a pfgmbench snapshot in EDM's .pkl layout


class _Global:
    """A reference to module.name, pickled as a global without importing the module."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args, **kwargs):
        raise TypeError(f"{self.module}.{self.name} is a pickle reference only")


class _Reduced:
    """An object pickled as func(*args), then BUILD(state) when state is not None."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


class _EDMPickler(pickle._Pickler):
    """The standard library's pure-Python pickler (whose dispatch table can be extended), writing
    _Global references as STACK_GLOBAL opcodes; everything else (tensors included) pickles as usual."""
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_global_ref(self, obj):
        self.save(obj.module)
        self.save(obj.name)
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)

    dispatch[_Global] = _save_global_ref


_RECONSTRUCT_REF = _Global(*RECONSTRUCT)


def _module_state(params=(), buffers=(), modules=()):
    """A torch.nn.Module's __dict__ as torch would pickle it (empty hook tables, eval mode)."""
    state = {k: copy.copy(v) for k, v in torch.nn.Module().__dict__.items()}
    state.update(training=False, _parameters=collections.OrderedDict(params),
                 _buffers=collections.OrderedDict(buffers), _modules=collections.OrderedDict(modules))
    return state


def _persistent(class_name, attrs, params=(), buffers=(), modules=(), init_kwargs=None):
    """EDM's persistent-object reduction: _reconstruct_persistent_obj(meta), meta holding the state."""
    state = {**_module_state(params, buffers, modules), **attrs,
             "_init_args": (), "_init_kwargs": dict(init_kwargs or {})}
    meta = {"type": "class", "version": 6, "module_src": PLACEHOLDER_SRC, "class_name": class_name, "state": state}
    return _Reduced(_RECONSTRUCT_REF, (meta,))


def _param(t):
    return None if t is None else torch.nn.Parameter(t.detach().clone(), requires_grad=False)


def _export_module(mod, net_cfg, unet_kwargs):
    """One pfgmbench module as the EDM object of the same role (class names and attributes of
    EDM's training/networks.py)."""
    from torch import nn

    from pfgmbench.nets import songunet as su

    kids = [(k, _export_module(m, net_cfg, unet_kwargs)) for k, m in mod.named_children()
            if not isinstance(m, nn.Dropout)]
    if isinstance(mod, su.SongUNet):
        attrs = {"label_dropout": float(mod.label_dropout),
                 **{k: None for k in ("map_label", "map_augment") if getattr(mod, k) is None}}
        return _persistent("SongUNet", attrs, modules=kids, init_kwargs=unet_kwargs)
    if isinstance(mod, su.Conv):
        rs = mod.up or mod.down
        filt = su.fir_filter(net_cfg["resample_filter"])[None, None] if rs else None
        attrs = {"in_channels": mod.in_channels, "out_channels": mod.out_channels, "up": mod.up, "down": mod.down,
                 "fused_resample": mod.fused}
        return _persistent("Conv2d", attrs, [("weight", _param(mod.weight)), ("bias", _param(mod.bias))],
                           [("resample_filter", filt)],
                           init_kwargs={**attrs, "kernel": mod.kernel_size[0],
                                        "resample_filter": list(net_cfg["resample_filter"])})
    if isinstance(mod, nn.Linear):
        attrs = {"in_features": mod.in_features, "out_features": mod.out_features}
        return _persistent("Linear", attrs, [("weight", _param(mod.weight)), ("bias", _param(mod.bias))],
                           init_kwargs={**attrs, "bias": mod.bias is not None})
    if isinstance(mod, nn.GroupNorm):
        return _persistent("GroupNorm", {"num_groups": mod.num_groups, "eps": mod.eps},
                           [("weight", _param(mod.weight)), ("bias", _param(mod.bias))],
                           init_kwargs={"num_channels": mod.num_channels, "eps": mod.eps})
    if isinstance(mod, su.UNetBlock):
        attrs = {"in_channels": mod.in_channels, "out_channels": mod.out_channels,
                 "emb_channels": mod.affine.in_features, "num_heads": 1 if mod.attention else 0,
                 "dropout": float(mod.dropout.p), "skip_scale": math.sqrt(0.5), "adaptive_scale": False}
        if mod.skip is None:
            attrs["skip"] = None
        return _persistent("UNetBlock", attrs, modules=kids,
                           init_kwargs={k: attrs[k] for k in ("in_channels", "out_channels", "emb_channels")})
    if isinstance(mod, su.PositionalEmbedding):
        attrs = {"num_channels": mod.channels, "max_positions": mod.max_positions, "endpoint": True}
        return _persistent("PositionalEmbedding", attrs, init_kwargs=attrs)
    if isinstance(mod, su.FourierEmbedding):
        return _persistent("FourierEmbedding", {}, buffers=[("freqs", mod.freqs.detach().clone())],
                           init_kwargs={"num_channels": 2 * mod.freqs.numel()})
    if isinstance(mod, nn.ModuleDict):
        return _Reduced(_Global("torch.nn.modules.container", "ModuleDict"), (), _module_state(modules=kids))
    raise UserError(f"cannot export a {type(mod).__name__} in EDM's layout")


def export_edm_layout(run_snapshot_path, out_pkl):
    """Write the pfgmbench snapshot `run_snapshot_path` (or a run folder's latest) as an EDM-style .pkl (dict(ema=<persistent
    EDMPrecond / VPPrecond / VEPrecond around a persistent SongUNet>, ...)) at `out_pkl`; returns its path.
    A finite-D PFGM++ model records pfgmpp=True and D as the PFGM++ authors' EDMPrecond does."""
    from pfgmbench.nets.songunet import SongUNet

    if Path(run_snapshot_path).is_dir():
        run_snapshot_path = checkpoint.latest_snapshot(run_snapshot_path)
    cfg, net, snap = checkpoint.load_network(run_snapshot_path)
    if cfg["net"]["arch"] != "songunet" or not isinstance(net.model, SongUNet):
        raise UserError(f"only SongUNet networks have an EDM layout; {run_snapshot_path} has a {cfg['net']['arch']}")
    C, H, _ = snap["data_shape"]
    label_dim = int(snap["num_classes"]) if cfg["data"].get("cond") else 0
    unet_kwargs = {"img_resolution": H, "in_channels": C, "out_channels": C, "label_dim": label_dim,
                   **{k: copy.deepcopy(cfg["net"][k]) for k in SONGUNET_KEYS}}
    unet = _export_module(net.model, cfg["net"], unet_kwargs)
    model_kwargs = {k: v for k, v in unet_kwargs.items() if k in SONGUNET_KEYS}
    base = {"img_resolution": H, "img_channels": C, "label_dim": label_dim, "use_fp16": False}
    name, fam_attrs, knobs = build_family(cfg, snap["data_shape"]).to_authors()
    attrs = {**base, **fam_attrs}
    init_kwargs = {**base, **knobs, "model_type": "SongUNet", **model_kwargs}
    ema = _persistent(name, attrs, modules=[("model", unet)], init_kwargs=init_kwargs)
    data = {"ema": ema, "loss_fn": None, "augment_pipe": None, "dataset_kwargs": {"resolution": H}}
    out_pkl = Path(out_pkl)
    with atomic_path(out_pkl) as tmp, open(tmp, "wb") as f:
        _EDMPickler(f, protocol=4).dump(data)
    return out_pkl
