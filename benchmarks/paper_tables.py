"""The paper's two mnist5k tables (raw and embedded features), mean ± std over seeds.

    python benchmarks/paper_tables.py [--seeds 3] [--time-budget 600] [--models ...]

Runs ``python -m ganmm table`` once per space (every run through the run store in
GANMM_HOME, one after the other, all cores) and prints both markdown tables with
the paper's MNIST rows beside ours, and how long each table took. The autoencoder
of each seed is trained once (by DEC's run, or the first embedded run) and cached.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--time-budget", type=float, default=600.0, help="seconds per run (default 600)")
    parser.add_argument("--models", default="ganmm,gmm,dec,ganmm-em,kmeans")
    parser.add_argument("--spaces", default="raw,embedded")
    parser.add_argument("--json-prefix", default=None, help="write <prefix>-<space>.json")
    args = parser.parse_args()
    for space in args.spaces.split(","):
        cmd = [sys.executable, "-m", "ganmm", "table", "--dataset", args.dataset, "--space", space,
               "--models", args.models, "--seeds", str(args.seeds), "--time-budget", str(args.time_budget)]
        if args.json_prefix:
            cmd += ["--json", f"{args.json_prefix}-{space}.json"]
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        print(out.stdout)
        print(f"({space}: {time.perf_counter() - start:.0f} s for the whole table, exit {out.returncode})\n",
              flush=True)


if __name__ == "__main__":
    main()
