"""GANMM vs GMM vs k-means on the non-Gaussian 2-D sets (moons, circles,
spirals; K=2), ARI as mean ± std over seeds.

    python benchmarks/shapes_table.py [--seeds 3] [--iters 50] [--out results.json]

Runs in one process through the library (each model is seeded; the dataset's
noise is drawn with the same seed). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganmm import data  # noqa: E402
from ganmm.models import make_model  # noqa: E402

DATASETS = ("moons", "circles", "spirals")
MODELS = ("ganmm", "gmm", "kmeans")


def run_one(dataset: str, model: str, seed: int, iters: int) -> dict:
    ds = data.load_builtin(dataset, seed=seed)
    m = make_model(model, n_clusters=2, seed=seed, max_iter=iters)
    t = time.perf_counter()
    m.fit(ds.X, ds.y)
    last = m.history_[-1]
    return {"dataset": dataset, "model": model, "seed": seed, "ari": last.metrics["ari"],
            "nmi": last.metrics["nmi"], "iterations": last.iteration, "seconds": time.perf_counter() - t}


def markdown(rows: list[dict], seeds: int) -> str:
    head = "| dataset | " + " | ".join(f"{m} ARI" for m in MODELS) + " | GANMM seconds |"
    lines = [head, "|---" * (len(MODELS) + 2) + "|"]
    for d in DATASETS:
        cells = []
        for m in MODELS:
            ari = np.array([r["ari"] for r in rows if r["dataset"] == d and r["model"] == m])
            cells.append(f"{ari.mean():.3f} ± {ari.std():.3f}")
        secs = np.mean([r["seconds"] for r in rows if r["dataset"] == d and r["model"] == "ganmm"])
        lines.append(f"| {d} | " + " | ".join(cells) + f" | {secs:.0f} |")
    return "\n".join(lines) + f"\n\n(mean ± std over {seeds} seeds, K=2)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = []
    for d in DATASETS:
        for m in MODELS:
            for s in range(args.seeds):
                rows.append(run_one(d, m, s, args.iters))
                r = rows[-1]
                print(f"{d} {m} seed {s}: ARI {r['ari']:.3f} in {r['seconds']:.1f}s", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    print(markdown(rows, args.seeds))


if __name__ == "__main__":
    main()
