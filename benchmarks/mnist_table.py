"""The mnist5k raw-pixel table: GANMM (default preset with a k-means and a
random split, paper preset), GANMM-EM, GMM and k-means, K=10, one seed, a time
budget per run, side by side with the paper's raw-MNIST rows.

    python benchmarks/mnist_table.py [--budget 600] [--seed 0] [--out results.json]

Each run goes through the command line (``python -m ganmm run``), one after
the other, so each has the machine to itself. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PAPER = {  # Yu & Zhou 2018, raw MNIST: purity / ARI / NMI
    "GANMM": (0.6430, 0.4924, 0.6159), "GMM": (0.3261, 0.0991, 0.1414),
    "DEC": (0.3065, 0.1437, 0.1935), "GANMM-EM": (0.2786, 0.0665, 0.2414),
}

RUNS = [  # (row label, extra command-line arguments)
    ("GANMM default, k-means split", ["--model", "ganmm", "--init", "kmeans"]),
    ("GANMM default, random split", ["--model", "ganmm", "--init", "random"]),
    ("GANMM paper preset (random split)", ["--model", "ganmm", "--preset", "paper"]),
    ("GANMM-EM default, k-means split", ["--model", "ganmm-em"]),
    ("GMM, diagonal covariance", ["--model", "gmm", "--covariance", "diag"]),
    ("GMM, full covariance", ["--model", "gmm", "--covariance", "full"]),
    ("k-means (10 k-means++ seedings)", ["--model", "kmeans"]),
]


def run(label: str, extra: list[str], budget: float, seed: int, iters: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, "-m", "ganmm", "run", "--dataset", "mnist5k", "--clusters", "10",
               "--seed", str(seed), "--iters", str(iters), "--time-budget", str(budget),
               "--quiet", "--json", str(out), *extra]
        print(f"running: {label}", file=sys.stderr, flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
        return {"label": label, **json.loads(out.read_text())}


def markdown(rows: list[dict]) -> str:
    lines = ["| model | purity | ARI | NMI | ACC | iterations | seconds |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["metrics"]
        lines.append(f"| {r['label']} | {m['purity']:.4f} | {m['ari']:.4f} | {m['nmi']:.4f} | "
                     f"{m['acc']:.4f} | {r['iterations']} | {r['seconds']:.0f} |")
    for name, (p, a, n) in PAPER.items():
        lines.append(f"| paper: {name} (raw MNIST) | {p:.4f} | {a:.4f} | {n:.4f} | | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=600, help="seconds per run (default 600)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=int, default=10_000, help="iteration cap per run")
    ap.add_argument("--only", default=None, help="comma-separated row numbers to run (1-based)")
    ap.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = ap.parse_args()
    chosen = RUNS if not args.only else [RUNS[int(i) - 1] for i in args.only.split(",")]
    rows = [run(label, extra, args.budget, args.seed, args.iters) for label, extra in chosen]
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    print(markdown(rows))


if __name__ == "__main__":
    main()
