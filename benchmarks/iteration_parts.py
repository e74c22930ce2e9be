"""Where an EM iteration's time goes, batched ensemble against the per-network loop.

    python benchmarks/iteration_parts.py [--rounds 12] [--clusters 10] [--device cpu]

Both models of ``python -m ganmm bench`` (mnist5k, the default preset) take
turns in one process: each round times one M-step's GAN steps (``n_epoch`` of
them) and one E-step's classifier training on each model. It prints the
medians and the loop / batched ratio of each part: the GAN steps are where
batching pays; the classifier is one network in both (only the loop's
sampling runs per network).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganmm import data  # noqa: E402
from ganmm.mixture import denormals_flushed, resolve_device  # noqa: E402
from ganmm.speed import GANMM, BenchConfig, LoopGANMM, _model, _timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args()
    bench = BenchConfig(device=args.device)
    dev = resolve_device(args.device)
    X = data.load("mnist5k").X
    with denormals_flushed(dev):
        models = {"batched": _model(GANMM, X, args.clusters, bench), "loop": _model(LoopGANMM, X, args.clusters, bench)}
        for model in models.values():
            for it in (1, 2):
                model._iterate(it)  # warm: the first E-step trains the classifier longer
        times = {name: {"gan": [], "classifier": []} for name in models}
        for _ in range(args.rounds):
            for name, model in models.items():
                times[name]["gan"].append(_timed(lambda m=model: m._train_gans(m.config.n_epoch), dev))
                times[name]["classifier"].append(_timed(lambda m=model: m._train_classifier(), dev))
    med = {name: {part: statistics.median(t) for part, t in parts.items()} for name, parts in times.items()}
    n_epoch = models["batched"].config.n_epoch
    print(f"mnist5k, K={args.clusters}, {args.rounds} rounds, medians (ms)")
    print("| part | batched | loop | loop / batched |")
    print("|---|---|---|---|")
    for part, label in (("gan", f"{n_epoch} GAN steps (the M-step)"), ("classifier", "classifier training (the E-step)")):
        b, loop = med["batched"][part], med["loop"][part]
        print(f"| {label} | {b * 1e3:.1f} | {loop * 1e3:.1f} | {loop / b:.2f}x |")


if __name__ == "__main__":
    main()
