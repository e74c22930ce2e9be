"""What each setting of the default GANMM preset is worth on mnist5k (raw pixels, K=10).

    python benchmarks/ablation.py [--budget 300] [--seeds 0] [--only NAME,...]

Each row changes one thing of the default preset back (or to the obvious
alternative) and trains GANMM for the same wall-clock budget, one run after the
other with all cores, in this process. Prints a markdown table of the final
Purity / ARI / NMI, the iterations made and their mean duration. No label is
used by training: the labels only score the final assignments.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS: dict[str, dict] = {
    "default": {},
    "no image moves for the classifier": dict(classifier_augment="none"),
    "width 256 (was the default)": dict(hidden=256),
    "30 generator + 50 classifier steps per iteration (was)": dict(n_epoch=30, classifier_steps=50),
    "sigma_t decay 0.7 (was): borrowing over after ~15 iterations": dict(sigma_decay=0.7),
    "random initial split (the paper's)": dict(init="random"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per run (default 300)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--only", default=None, help="comma-separated row numbers (1 = default)")
    args = parser.parse_args()

    from ganmm import data
    from ganmm.mixture import GANMM, GANMMConfig

    ds = data.load("mnist5k")
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = list(VARIANTS.items())
    if args.only:
        rows = [rows[int(i) - 1] for i in args.only.split(",")]
    print(f"mnist5k, raw pixels, K=10, {args.budget:.0f} s per run, seeds {seeds}\n")
    print("| variant | purity | ARI | NMI | iterations | s / iteration |")
    print("|---|---|---|---|---|---|")
    for name, change in rows:
        change = dict(change)
        preset = change.pop("preset", "default")
        results = []
        for seed in seeds:
            cfg = GANMMConfig.from_preset(preset, n_clusters=10, seed=seed, max_iter=100_000,
                                          time_budget=args.budget, **change)
            start = time.perf_counter()
            last = None
            for last in GANMM(cfg).fit_iter(ds.X, ds.y):
                pass
            results.append((last.metrics, last.iteration, (time.perf_counter() - start) / max(last.iteration, 1)))
        mean = {k: sum(m[k] for m, _, _ in results) / len(results) for k in ("purity", "ari", "nmi")}
        iters = sum(i for _, i, _ in results) / len(results)
        per = sum(p for _, _, p in results) / len(results)
        print(f"| {name} | {mean['purity']:.4f} | {mean['ari']:.4f} | {mean['nmi']:.4f} | {iters:.0f} | "
              f"{per:.2f} |", flush=True)


if __name__ == "__main__":
    main()
