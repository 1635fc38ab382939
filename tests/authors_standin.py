"""The authors' packages (dnnlib, torch_utils, training) as throwaway modules, for tests only.

install(which, origin) registers modules under the authors' names in sys.modules and runs, inside
them, torch_utils/persistence.py, training/networks.py and training/loss.py of `which` ('edm' for
NVlabs/edm, 'pfgmpp' for the PFGM++ fork), taken from `origin`:

  * 'authors': the authors' own files, read from a git mirror (MIRRORS; PFGMBENCH_EDM_REPO and
    PFGMBENCH_PFGMPP_REPO override the paths); available(which) says whether the mirror is there.
  * 'standin': stand-ins written for these tests (tests/authors_layout.py) that reproduce the
    authors' pickle layout with pfgmbench's forward passes; always available.

Objects made while installed pickle as in the authors' released files: persistent classes reduced
to torch_utils.persistence._reconstruct_persistent_obj(meta) with meta['module_src'] = the
networks.py that was run. uninstall() removes every module again. Running that code here is the
test's business; pfgmbench.importer never does.
"""
import os
import subprocess
import sys
import types
from pathlib import Path

import authors_layout

MIRRORS = {"edm": os.environ.get("PFGMBENCH_EDM_REPO", "/work/.mirror/NVlabs+edm/repo"),
           "pfgmpp": os.environ.get("PFGMBENCH_PFGMPP_REPO", "/work/.mirror/Newbeeer+pfgmpp/repo")}
NAMES = ("dnnlib", "dnnlib.util", "torch_utils", "torch_utils.persistence", "training", "training.networks",
         "training.loss")


def source(repo, path):
    """A file of the authors' repository: from a work tree, or from a bare mirror's HEAD; None if absent."""
    repo = Path(repo)
    if (repo / path).is_file():
        return (repo / path).read_text()
    if not repo.exists():
        return None
    got = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"], capture_output=True, text=True)
    return got.stdout if got.returncode == 0 else None


ORIGINS = ("standin", "authors")


def reader(which, origin):
    """path -> text of that file of `which` from `origin` (None where absent)."""
    if origin == "standin":
        return lambda path: authors_layout.source(which, path)
    assert origin == "authors", origin
    return lambda path: source(MIRRORS[which], path)


def available(which, origin="authors"):
    return reader(which, origin)("training/networks.py") is not None


class EasyDict(dict):
    """dnnlib.EasyDict: a dict with attribute access (all persistence.py needs of dnnlib)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def install(which="edm", origin="authors"):
    """Register the authors' modules; returns a namespace with persistence, networks, loss (EDM only),
    networks_src."""
    read = reader(which, origin)
    uninstall()
    util = _module("dnnlib.util", EasyDict=EasyDict)
    EasyDict.__module__ = "dnnlib.util"
    _module("dnnlib", EasyDict=EasyDict, util=util)
    persistence = _module("torch_utils.persistence")
    _module("torch_utils", persistence=persistence)
    exec(compile(read("torch_utils/persistence.py"), "torch_utils/persistence.py", "exec"),
         persistence.__dict__)
    training = _module("training")
    out = types.SimpleNamespace(persistence=persistence)
    for short in ("networks", "loss") if which == "edm" else ("networks",):   # the fork's loss.py is not in its .pt
        src = read(f"training/{short}.py")
        mod = _module(f"training.{short}")
        setattr(training, short, mod)
        # persistent_class() asks inspect.getsource for the module's text: give it the text we run.
        persistence._module_to_src_dict[mod] = src
        persistence._src_to_module_dict[src] = mod
        exec(compile(src, f"training/{short}.py", "exec"), mod.__dict__)
        setattr(out, short, mod)
    out.networks_src = read("training/networks.py")
    return out


def use_networks_source(env):
    """An import hook that loads persistent objects with the installed networks module, whatever
    module_src they carry (pfgmbench's exports carry a placeholder)."""
    def hook(meta):
        meta.module_src = env.networks_src
        return meta

    env.persistence.import_hook(hook)


def uninstall():
    for name in list(sys.modules):
        if name in NAMES or name.startswith("_imported_module_"):
            del sys.modules[name]


def install_name_only():
    """Only the name torch_utils.persistence._reconstruct_persistent_obj (no authors' code), so that
    Persistent objects can be pickled in tests that do not need the mirrors."""
    uninstall()

    def _reconstruct_persistent_obj(meta):
        raise RuntimeError("stand-in: the authors' loader is not installed")

    persistence = _module("torch_utils.persistence", _reconstruct_persistent_obj=_reconstruct_persistent_obj)
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    _module("torch_utils", persistence=persistence)


class Persistent:
    """An object that pickles as EDM's persistence does: _reconstruct_persistent_obj(meta)."""

    def __init__(self, class_name, state=None, module_src="", init_kwargs=None):
        self.meta = {"type": "class", "version": 6, "module_src": module_src, "class_name": class_name,
                     "state": {"_modules": {}, "_parameters": {}, "_buffers": {}, "_init_args": (),
                               "_init_kwargs": dict(init_kwargs or {}), **(state or {})}}

    def __reduce__(self):
        return sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (self.meta,)
