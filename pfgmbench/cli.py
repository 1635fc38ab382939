"""Command line: parse, validate, call one function. Bad input -> one line, exit code 2."""
import json
import sys

import click

from pfgmbench.errors import UserError


def to_json(obj, **kw):
    """JSON without the non-standard Infinity: D = inf is written as the string "inf"."""
    def clean(v):
        if isinstance(v, float) and v == float("inf"):
            return "inf"
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(obj), **kw)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """pfgmbench: train, sample and score PFGM++ / EDM models (paper presets on GPUs, proxies on a CPU)."""


@cli.command()
@click.option("--preset", default="digits", show_default=True, help="Preset name (see `pfgmbench presets`).")
@click.option("--D", "D", default=None, help="Augmented dimension D >= 1, or 'inf' (EDM). Default: the preset's.")
@click.option("--out", required=True, type=click.Path(), help="Run folder.")
@click.option("--kimg", type=float, default=None, help="Training duration in thousands of images.")
@click.option("--seed", type=int, default=None, help="Run seed (network init, data order, noise).")
@click.option("--cond", is_flag=True, default=None, help="Class-conditional training (labelled data).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a preset key, e.g. train.lr=1e-3.")
@click.option("--resume", type=click.Choice(["auto", "no"]), default="no", show_default=True,
              help="auto: continue the run in --out if it has a checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(preset, D, out, kimg, seed, cond, sets, resume, quiet):
    """Train a PFGM++ model (D = inf is EDM)."""
    from pfgmbench.config import parse_D, resolve
    from pfgmbench.train import train as run_train

    cfg = resolve(preset, D=parse_D(D) if D is not None else None, sets=sets, kimg=kimg, seed=seed, cond=cond)
    kimg_done = run_train(cfg, out, resume=resume == "auto", progress=not quiet)
    click.echo(f"trained {kimg_done:g} kimg -> {out}")


@cli.command()
@click.option("--run", "run", type=click.Path(), default=None, help="Run folder (uses its latest snapshot).")
@click.option("--ckpt", type=click.Path(), default=None, help="A network-snapshot-*.pt file instead of --run.")
@click.option("--seeds", default="0-63", show_default=True, help="Seeds, e.g. 0-255 or 0,5,7-9.")
@click.option("--steps", type=int, default=None, help="Sampler steps T (NFE = 2T - 1). Default: the preset's.")
@click.option("--out", required=True, type=click.Path(), help="Output folder.")
@click.option("--format", "fmt", type=click.Choice(["png", "npz"]), default="png", show_default=True)
@click.option("--batch", type=int, default=None, help="Seeds per batch (does not change the samples).")
@click.option("--alpha", type=float, default=0.0, show_default=True, help="Step noise x += alpha t_i eps.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sample(run, ckpt, seeds, steps, out, fmt, batch, alpha, device, as_json):
    """Sample with EDM's Heun sampler, one generator per seed."""
    from pfgmbench.checkpoint import latest_snapshot
    from pfgmbench.generate import sample_run
    from pfgmbench.seeds import parse_seeds

    if (run is None) == (ckpt is None):
        raise UserError("give exactly one of --run RUN or --ckpt FILE")
    if steps is not None and steps < 2:
        raise UserError(f"--steps must be >= 2, got {steps}")
    if alpha < 0:
        raise UserError(f"--alpha must be >= 0, got {alpha}")
    seed_list = parse_seeds(seeds)
    ckpt = ckpt or latest_snapshot(run)
    res = sample_run(ckpt, seed_list, out, steps=steps, fmt=fmt, batch=batch, device=device, alpha=alpha,
                     progress=not as_json)
    if as_json:
        click.echo(to_json(res))
    else:
        click.echo(f"{res['images']} samples (NFE {res['nfe']}) -> {out}  [grid: {out}/grid.png]")


@cli.command()
def presets():
    """List presets with data set, N, network and budget."""
    from rich.console import Console
    from rich.table import Table

    from pfgmbench.config import list_presets, load_preset

    table = Table("preset", "scale", "data", "N", "network", "D", "budget", "description")
    for name in list_presets():
        c = load_preset(name)
        n = {"digits": 64, "cifar10": 3072, "imagefolder": 12288, "gmm1000": 1000}.get(c["data"]["name"], 2)
        net = c["net"]
        desc = (f"SongUNet {net['model_channels']}ch x{net['channel_mult']} {net['embedding_type']}"
                if net["arch"] == "songunet" else f"MLP {net['hidden']}x{net['depth']}")
        table.add_row(name, c["scale"], c["data"]["name"], str(n), desc, str(c["physics"]["D"]),
                      f"{c['train']['kimg']:g} kimg, batch {c['train']['batch']}", c["description"])
    Console(width=200).print(table)


@cli.command()
@click.option("--preset", default="digits", show_default=True)
@click.option("--D", "D", default="inf", show_default=True)
@click.option("--repeats", type=int, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench(preset, D, repeats, as_json):
    """Measure sampler and training overhead against bare network calls."""
    from pfgmbench.bench import run_bench
    from pfgmbench.config import parse_D, resolve

    res = run_bench(resolve(preset, D=parse_D(D)), repeats=repeats)
    click.echo(to_json(res, indent=None if as_json else 2))


def main():
    try:
        cli.main(standalone_mode=False)
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted; rerun the same command (with --resume auto for train) to continue", err=True)
        sys.exit(130)
    sys.exit(0)
