"""Small helpers shared by the studies."""
from __future__ import annotations

import json
import os
import platform
import time

import numpy as np
import torch

from neurochip.atomic import atomic_write_text

FIGURES = os.path.relpath(os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "docs", "figures")))
# the shared data folder beside the checkout (holds mnist/ and fashion-mnist/)
DATA = os.path.relpath(os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")))


def study_parser(name: str, doc: str, preset: str, png: bool = True):
    """The parser every study starts from: --preset, --seed, --data-dir, --threads and
    its outputs --json (and --png) under docs/figures/NAME.*."""
    import argparse
    ap = argparse.ArgumentParser(prog=f"python -m reference.studies.{name}",
                                 description=doc.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--preset", default=preset, help="network preset (architecture, hyper)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=DATA, help="folder holding mnist/ and fashion-mnist/")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=f"{FIGURES}/{name}.json")
    if png:
        ap.add_argument("--png", default=f"{FIGURES}/{name}.png")
    return ap


def finish(args, res, plot, tables) -> int:
    """Write the JSON and the PNG a study produced and print its tables."""
    write_json(args.json, res)
    if args.png:
        plot(res, args.png)
    print(tables(res))
    return 0


def layer_vec(g) -> torch.Tensor:
    """One layer's ``(gW, gb)`` as a flat vector."""
    gw, gb = g
    return torch.cat([torch.as_tensor(gw).reshape(-1), torch.as_tensor(gb).reshape(-1)]).double()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return float("nan")
    return float(a @ b) / (na * nb)


def rel_err(est: torch.Tensor, ref: torch.Tensor) -> float:
    nr = float(ref.norm())
    return float((est - ref).norm()) / nr if nr > 0 else float("nan")


def compare(est, ref) -> list[dict]:
    """Per layer ``{'cos', 'rel'}`` of two gradient lists ``[(gW, gb)]``."""
    out = []
    for ge, gr in zip(est, ref):
        a, b = layer_vec(ge), layer_vec(gr)
        out.append({"cos": cosine(a, b), "rel": rel_err(a, b)})
    return out


def machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def default(o):
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (np.floating,)):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(type(o))
    atomic_write_text(path, json.dumps(obj, indent=1, default=default) + "\n")


def fmt(v: float, nd: int = 3) -> str:
    return "nan" if v != v else f"{v:.{nd}f}"


def mean_std(vals) -> tuple[float, float]:
    a = np.asarray(vals, dtype=float)
    return float(np.nanmean(a)), float(np.nanstd(a))
