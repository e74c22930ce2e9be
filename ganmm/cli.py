"""The command line: ``python -m ganmm datasets | run``.

Bad arguments or bad files print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from typing import Sequence


from .errors import GanmmError
from .models import MODEL_NAMES

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m ganmm", description="GANMM Studio: clustering with a mixture of GANs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("datasets", help="list the built-in datasets")

    r = sub.add_parser("run", help="fit one model and print its metrics")
    r.add_argument("--dataset", required=True, help="a built-in name or a file (CSV/TSV, NPZ, NPY, IDX[.gz])")
    r.add_argument("--model", required=True, choices=list(MODEL_NAMES))
    r.add_argument("--clusters", type=int, required=True, help="number of clusters K")
    r.add_argument("--iters", type=int, default=50, help="cap on EM iterations (default 50)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--preset", default=None, help="ganmm/ganmm-em settings: default or paper")
    r.add_argument("--init", choices=["random", "kmeans"], default=None,
                   help="ganmm/ganmm-em initial split (default: the preset's)")
    r.add_argument("--covariance", choices=["full", "tied", "diag", "spherical"], default=None,
                   help="gmm covariance type (default full)")
    r.add_argument("--space", choices=["raw"], default="raw",
                   help="feature space (the embedded space comes with the DEC baseline)")
    r.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    r.add_argument("--time-budget", type=float, default=None, metavar="SECONDS")
    r.add_argument("--json", default=None, metavar="PATH", help="write the result as JSON here")
    r.add_argument("--label-column", default=None, help="a CSV/TSV column holding labels")
    r.add_argument("--labels", default=None, metavar="PATH", help="an IDX file of labels")
    r.add_argument("--quiet", action="store_true", help="no per-iteration progress")
    return p


def cmd_datasets() -> int:
    from . import data

    for name, description in data.list_builtins():
        print(f"{name:10s} {description}")
    return 0


def _progress(snap, args: argparse.Namespace, started: float) -> str:
    done = snap.iteration
    per_iter = snap.elapsed / max(done, 1)
    left = max(args.iters - done, 0) * per_iter
    if args.time_budget is not None:
        left = min(left, max(args.time_budget - snap.elapsed, 0.0))
    sizes = " ".join(str(int(s)) for s in snap.sizes)
    metrics = " ".join(f"{k} {v:.3f}" for k, v in snap.metrics.items() if k in ("purity", "ari", "nmi"))
    return (f"iter {done:3d}/{args.iters}  {snap.elapsed:7.1f}s  changed {snap.changed:.3f}  "
            f"sizes [{sizes}]  {metrics}  ETA {left:.0f}s")


def cmd_run(args: argparse.Namespace) -> int:
    if args.clusters < 1:
        raise GanmmError(f"--clusters must be at least 1, got {args.clusters}")
    if args.iters < 0:
        raise GanmmError(f"--iters must be 0 or more, got {args.iters}")
    from . import data
    from .models import make_model

    ds = data.load(args.dataset, label_column=args.label_column, labels_path=args.labels)
    ds.validate_for(args.clusters)
    settings = dict(n_clusters=args.clusters, max_iter=args.iters, seed=args.seed,
                    time_budget=args.time_budget, device=args.device)
    if args.init:
        if args.model not in ("ganmm", "ganmm-em"):
            raise GanmmError("--init is for ganmm and ganmm-em")
        settings["init"] = args.init
    if args.covariance:
        if args.model != "gmm":
            raise GanmmError("--covariance is for gmm")
        settings["covariance_type"] = args.covariance
    model = make_model(args.model, preset=args.preset, **settings)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
    started = time.perf_counter()
    print(f"run {run_id}: {args.model} on {ds.name} ({ds.n_samples} x {ds.n_features}), "
          f"K={args.clusters}, seed {args.seed}", file=sys.stderr)
    snap = None
    for snap in model.fit_iter(ds.X, ds.y):
        if not args.quiet:
            print(_progress(snap, args, started), file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    device = str(getattr(model, "device_", "cpu"))
    metrics = {k: (snap.metrics.get(k) if snap.metrics else None) for k in ("purity", "ari", "nmi", "acc", "rand")}
    result = {"run_id": run_id, "model": args.model, "dataset": ds.name, "iterations": snap.iteration,
              "seconds": round(seconds, 3), "device": device, "metrics": metrics,
              "converged": bool(snap.converged), "space": args.space, "seed": args.seed,
              "clusters": args.clusters, "sizes": [int(s) for s in snap.sizes]}
    summary = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if v is not None)
    print(f"done: {snap.iteration} iterations in {seconds:.1f}s on {device}  {summary}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    else:
        print(json.dumps(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "datasets":
            return cmd_datasets()
        return cmd_run(args)
    except GanmmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # e.g. the --json path cannot be written
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
