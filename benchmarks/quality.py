"""Clustering quality of the default GANMM preset, by ``python -m ganmm table``.

    python benchmarks/quality.py [--seeds 3] [--only mnist5k,digits,shapes] [--out DIR]

- mnist5k, raw pixels, K=10: the default preset (3000 iterations or 10 minutes
  per run), the ``paper`` preset, GMM and k-means, with the paper's rows;
- digits (8x8): the default and the ``classic`` preset (the default before the
  quality work), GMM and k-means, every run capped at ``--digits-budget`` s;
- the six 2-D teaching sets, K = their number of classes: default and classic,
  every GAN run capped at ``--shapes-budget`` s.

Every run goes through the run store (GANMM_HOME), one after the other with all
cores, so the runs also show on the dashboard's Compare page. Prints the
markdown tables and the wall time of each; ``--out`` keeps each table's JSON.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ("blobs", "moons", "circles", "aniso", "varied", "spirals")


def table(dataset: str, models: str, seeds: int, budget: float | None, out: Path | None) -> None:
    cmd = [sys.executable, "-m", "ganmm", "table", "--dataset", dataset, "--space", "raw",
           "--models", models, "--seeds", str(seeds)]
    if budget is not None:
        cmd += ["--time-budget", str(budget)]
    if out is not None:
        cmd += ["--json", str(out / f"quality-{dataset}.json")]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    print(done.stdout)
    print(f"({dataset}: {time.perf_counter() - start:.0f} s for the table, exit {done.returncode})\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default="mnist5k,digits,shapes")
    parser.add_argument("--digits-budget", type=float, default=120.0)
    parser.add_argument("--shapes-budget", type=float, default=45.0)
    parser.add_argument("--out", type=Path, default=None, help="folder for the tables' JSON")
    args = parser.parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    if "mnist5k" in only:  # each model with its own defaults: GANMM 3000 iterations or 600 s
        table("mnist5k", "ganmm,ganmm:paper,gmm,kmeans", args.seeds, None, args.out)
    if "digits" in only:
        table("digits", "ganmm,ganmm:classic,gmm,kmeans", args.seeds, args.digits_budget, args.out)
    if "shapes" in only:
        for name in SHAPES:
            table(name, "ganmm,ganmm:classic,gmm,kmeans", args.seeds, args.shapes_budget, args.out)


if __name__ == "__main__":
    main()
