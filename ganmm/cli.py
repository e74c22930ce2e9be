"""The command line: ``python -m ganmm datasets | run | runs | table | bench | export | delete``.

``run`` trains through the run store in ``GANMM_HOME`` (the run shows in
``runs`` and the dashboard while it trains). Bad arguments, bad files and
unknown run ids print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Sequence


from .errors import GanmmError
from .models import MODEL_NAMES

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        _say(f"{self.prog}: error: {message}")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m ganmm", description="GANMM Studio: clustering with a mixture of GANs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("datasets", help="list the built-in datasets")

    r = sub.add_parser("run", help="fit one model and print its metrics")
    r.add_argument("--dataset", required=True, help="a built-in name or a file (CSV/TSV, NPZ, NPY, IDX[.gz])")
    r.add_argument("--model", required=True, choices=list(MODEL_NAMES))
    r.add_argument("--clusters", type=int, required=True, help="number of clusters K")
    r.add_argument("--iters", type=int, default=None,
                   help="cap on EM iterations (default: the model's: ganmm and ganmm-em 3000 (the classic "
                        "preset 50), gmm 50, dec 200, kmeans 300)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--preset", default=None, help="ganmm/ganmm-em settings: default, paper or classic")
    r.add_argument("--init", choices=["random", "kmeans"], default=None,
                   help="ganmm/ganmm-em initial split (default: the preset's)")
    r.add_argument("--covariance", choices=["full", "tied", "diag", "spherical"], default=None,
                   help="gmm covariance type (default full)")
    r.add_argument("--space", choices=["raw", "embedded"], default="raw",
                   help="raw features, or an autoencoder's 10-D codes (trained once per data "
                        "and seed, cached in GANMM_HOME)")
    r.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    r.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="stop after the iteration during which this many seconds passed (default: the "
                        "model's: 600 for ganmm and ganmm-em (the classic preset none), none for the others; "
                        "0: none)")
    r.add_argument("--json", default=None, metavar="PATH", help="write the result as JSON here")
    r.add_argument("--label-column", default=None, help="a CSV/TSV column holding labels")
    r.add_argument("--labels", default=None, metavar="PATH", help="an IDX or NPY file of labels")
    r.add_argument("--quiet", action="store_true", help="no per-iteration progress")
    r.add_argument("--name", default=None, help="a name for the run in the run store")

    t = sub.add_parser("table", help="every model x seed through the run store, then the "
                                     "paper-style table (mean ± std)")
    t.add_argument("--dataset", required=True, help="a built-in name or a file")
    t.add_argument("--space", choices=["raw", "embedded"], default="raw")
    t.add_argument("--models", default="ganmm,gmm,dec,ganmm-em,kmeans",
                   help="comma-separated (default ganmm,gmm,dec,ganmm-em,kmeans)")
    t.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (default 3)")
    t.add_argument("--clusters", type=int, default=None, help="K (default: the number of labels)")
    t.add_argument("--iters", type=int, default=None, help="cap on EM iterations (default: each model's)")
    t.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="per run (default: each model's; 0: none)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    t.add_argument("--json", default=None, metavar="PATH", help="write every run and the summary here")
    t.add_argument("--label-column", default=None, help="a CSV/TSV column holding labels")
    t.add_argument("--labels", default=None, metavar="PATH", help="an IDX or NPY file of labels")
    t.add_argument("--no-paper", action="store_true", help="leave out the paper's MNIST rows")

    b = sub.add_parser("bench", help="speed of GANMM: batched ensemble vs a loop over K networks, "
                                     "GFLOP/s against the matmul peak, scaling with K and N")
    b.add_argument("--quick", action="store_true", help="seconds instead of minutes: fewer repeats, "
                                                        "shorter steps, smaller scaling tables")
    b.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    b.add_argument("--json", default=None, metavar="PATH", help="write the measurements as JSON here")

    ls = sub.add_parser("runs", help="list the runs in the run store (GANMM_HOME)")
    ls.add_argument("--json", action="store_true", help="print the list as JSON")
    ex = sub.add_parser("export", help="write a run as a zip (config, metrics, assignments, samples)")
    ex.add_argument("run_id", metavar="RUN_ID")
    ex.add_argument("path", metavar="PATH.zip")
    de = sub.add_parser("delete", help="delete a run and its files")
    de.add_argument("run_id", metavar="RUN_ID")
    return p


def cmd_datasets() -> int:
    from . import data

    for name, description in data.list_builtins():
        print(f"{name:10s} {description}")
    return 0


def _progress(snap, args: argparse.Namespace) -> str:
    done = snap.iteration
    per_iter = snap.elapsed / max(done, 1)
    left = max(args.iters - done, 0) * per_iter
    if args.time_budget is not None:
        left = min(left, max(args.time_budget - snap.elapsed, 0.0))
    sizes = " ".join(str(int(s)) for s in snap.sizes)
    metrics = " ".join(f"{k} {v:.3f}" for k, v in snap.metrics.items() if k in ("purity", "ari", "nmi"))
    return (f"iter {done:3d}/{args.iters}  {snap.elapsed:7.1f}s  changed {snap.changed:.3f}  "
            f"sizes [{sizes}]  {metrics}  ETA {left:.0f}s")


def _say(text: str) -> None:
    """A line on stderr that cannot fail a run: with stderr closed (`2>&1 | head`)
    the run trains on, silently, and is kept in the run store."""
    if sys.stderr is None:  # fd 2 closed at start (`2>&-`): print would fall back to stdout, into the JSON
        return
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _kept(iterations: int | None) -> str:
    """What a stopped run keeps, for the line that says it stopped."""
    return "before its first iteration" if iterations is None else \
        f"after iteration {iterations} (kept in the run store)"


def _check_seed(seed: int, flag: str = "--seed") -> None:
    from .base import MAX_SEED

    if not 0 <= seed <= MAX_SEED:
        raise GanmmError(f"{flag} must lie in 0..{MAX_SEED}, got {seed}")


def _check_device(device: str, model: str | None = None, space: str = "raw") -> None:
    """A machine without a GPU refuses "cuda" for every model, before any work."""
    from .mixture import check_device

    check_device(device)
    if device == "cuda" and model in ("gmm", "kmeans"):
        trains = "; the autoencoder of the embedded space trains there" if space == "embedded" else ""
        _say(f"note: {model} runs on the CPU (scikit-learn){trains}")


def _check_output(path: str | None, flag: str = "--json") -> None:
    """Refuse an output file that could not be written, before the work that fills it."""
    if path is None:
        return
    from pathlib import Path

    target = Path(path).expanduser()
    if target.is_dir():
        raise GanmmError(f"{flag} {path} is a folder; give the path of a file to write")
    folder = target.resolve().parent
    if not folder.is_dir():
        raise GanmmError(f"{flag} {path}: the folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise GanmmError(f"{flag} {path} cannot be written (permissions); choose another path")


def cmd_run(args: argparse.Namespace) -> int:
    if args.clusters < 1:
        raise GanmmError(f"--clusters must be at least 1, got {args.clusters}")
    if args.iters is not None and args.iters < 0:
        raise GanmmError(f"--iters must be 0 or more, got {args.iters}")
    # every check that needs no data comes first: loading (and an autoencoder) can take minutes
    if args.init and args.model not in ("ganmm", "ganmm-em"):
        raise GanmmError("--init is for ganmm and ganmm-em")
    if args.covariance and args.model != "gmm":
        raise GanmmError("--covariance is for gmm")
    _check_seed(args.seed)
    _check_device(args.device, args.model, args.space)
    _check_output(args.json)
    from .models import default_settings

    defaults = default_settings(args.model, args.preset)
    if args.iters is None:
        args.iters = defaults["max_iter"]
    if args.time_budget is None:
        args.time_budget = defaults["time_budget"]
    elif args.time_budget == 0:
        args.time_budget = None
    from pathlib import Path

    from . import data
    from .runs import RunManager
    from .store import RunStore

    ds = data.load(args.dataset, label_column=args.label_column, labels_path=args.labels)
    ds.validate_for(args.clusters)
    raw_name = ds.name
    from .embedding import effective_space, embedded_dataset

    space = effective_space(args.model, args.space)
    if space != args.space:
        _say("note: DEC clusters through its own autoencoder, which is the embedded space's "
             "(the same cache): it takes the raw features")
    if space == "embedded":

        def trained(epoch: int, epochs: int, loss: float) -> None:
            if not args.quiet and (epoch % 10 == 0 or epoch == epochs):
                _say(f"autoencoder epoch {epoch}/{epochs}  loss {loss:.5f}")

        ds = embedded_dataset(ds, seed=args.seed, device=args.device, progress=trained)
    settings = dict(n_clusters=args.clusters, max_iter=args.iters, time_budget=args.time_budget)
    if args.init:
        settings["init"] = args.init
    if args.covariance:
        settings["covariance_type"] = args.covariance
    builtin = args.dataset.strip().lower() in data.BUILTINS
    source = raw_name if builtin else str(Path(args.dataset).expanduser().resolve())
    options = {"label_column": args.label_column,
               "labels": str(Path(args.labels).expanduser().resolve()) if args.labels else None,
               "space": space, **({"space_seed": args.seed} if space == "embedded" else {})}
    manager = RunManager(RunStore(), max_concurrent=1)

    header_shown = threading.Event()
    last = []  # the latest stored snapshot

    def show(run_id: str, snap) -> None:  # called once each iteration is stored
        last[:] = [snap]
        header_shown.wait()
        if not args.quiet:
            _say(_progress(snap, args))

    run_id = manager.start(ds, args.model, settings, seed=args.seed, preset=args.preset,
                           device=args.device, name=args.name, dataset_source=source, data_options=options,
                           listener=show)
    try:
        _say(f"run {run_id}: {args.model} on {ds.name} ({ds.n_samples} x {ds.n_features}), "
             f"K={args.clusters}, seed {args.seed}")
    finally:
        header_shown.set()
    try:
        record = manager.wait(run_id)
    except KeyboardInterrupt:  # Ctrl-C: the run ends "stopped", its iterations kept
        manager.stop(run_id)
        record = manager.store.get_run(run_id)
        _say(f"stopped: run {run_id} {_kept(record.iterations)}")
        return 130
    if record.status == "failed":
        exc = manager.exception(run_id)
        if isinstance(exc, GanmmError):  # e.g. bad data found by the model: one line, exit 2
            raise exc
        _say((record.traceback or "") + f"error: run {run_id} failed: {record.error}")
        return 1
    if record.status != "done" or not last:
        _say(f"error: run {run_id} ended {record.status}: {record.error or 'no iteration stored'}")
        return 1
    seconds = record.finished - record.started  # training, storing included
    snap = last[0]
    metrics = {k: snap.metrics.get(k) for k in ("purity", "ari", "nmi", "acc", "rand")}
    result = {"run_id": run_id, "model": args.model, "dataset": ds.name, "iterations": snap.iteration,
              "seconds": round(seconds, 3), "device": record.device, "metrics": metrics,
              "converged": bool(snap.converged), "space": space, "seed": args.seed,
              "clusters": args.clusters, "sizes": [int(s) for s in snap.sizes]}
    summary = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if v is not None)
    _say(f"done: {snap.iteration} iterations in {seconds:.1f}s on {record.device}  {summary}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    else:
        print(json.dumps(result))
    return 0


def _open_store():
    from .store import RunStore

    store = RunStore()
    store.recover_interrupted()
    return store


def cmd_runs(args: argparse.Namespace) -> int:
    runs = _open_store().list_runs()
    if args.json:
        print(json.dumps([r.to_json() for r in runs], indent=1))
        return 0
    if not runs:
        print("no runs yet; start one with `python -m ganmm run`")
        return 0
    print(f"{'RUN ID':22s} {'STATUS':19s} {'MODEL':8s} {'DATASET':12s} {'ITERS':>5s} "
          f"{'PURITY':>6s} {'ARI':>6s} {'NMI':>6s}  {'CREATED (UTC)':19s}  NAME")
    for r in runs:
        m = [r.metrics.get(k) for k in ("purity", "ari", "nmi")]
        cells = " ".join(f"{v:6.3f}" if v is not None else f"{'-':>6s}" for v in m)
        iters = "-" if r.iterations is None else str(r.iterations)
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.created))
        status = f"{r.status} (damaged)" if r.damaged else r.status
        print(f"{r.run_id:22s} {status:19s} {r.model:8s} {r.dataset[:12]:12s} {iters:>5s} "
              f"{cells}  {created:19s}  {r.name}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = _open_store()
    path = store.export_run(args.run_id, args.path)
    _say(f"exported run {args.run_id} to {path}")
    damaged = store.get_run(args.run_id).damaged
    if damaged:
        _say(f"note: the run is damaged ({damaged}); the zip holds what was readable, and its "
             "config.json lists what is not")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from .tables import TableInterrupted, as_json, markdown, run_table

    _check_device(args.device)
    _check_output(args.json)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        results = run_table(args.dataset, args.space, models, args.seeds, clusters=args.clusters,
                            iters=args.iters, time_budget=args.time_budget, device=args.device,
                            label_column=args.label_column, labels=args.labels,
                            say=_say)
        code = 0 if all(r.status == "done" for r in results) else 1
    except TableInterrupted as stop:  # Ctrl-C: the table of the runs that ended
        results, code = stop.results, 130
        if stop.stopped is not None:
            last = stop.stopped
            _say(f"stopped: run {last.run_id} ({last.model}, seed {last.seed}) {_kept(last.iterations)}")
        else:
            _say("stopped between runs")
        if not results:
            _say("no run had ended: no table")
            return code
        _say(f"the table below holds the {len(results)} run{'s' if len(results) > 1 else ''} that ended")
    name = results[0].dataset  # --models and --seeds give at least one run
    print(markdown(results, models, dataset=name, space=args.space, paper=not args.no_paper))
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps(as_json(results, models, dataset=name, space=args.space),
                                              indent=1))
    return code


def cmd_bench(args: argparse.Namespace) -> int:
    from .speed import BenchConfig, markdown, run_bench

    _check_device(args.device)  # "cuda" without a GPU: one clear line
    _check_output(args.json)
    bench = BenchConfig.quick(args.device) if args.quick else BenchConfig(device=args.device)
    result = run_bench(bench, say=_say)
    print(markdown(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _open_store().delete_run(args.run_id)
    _say(f"deleted run {args.run_id}")
    return 0


COMMANDS = {"datasets": lambda args: cmd_datasets(), "run": cmd_run, "runs": cmd_runs,
            "table": cmd_table, "bench": cmd_bench, "export": cmd_export, "delete": cmd_delete}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:  # Ctrl-C before a run started (loading data, an autoencoder)
        _say("stopped (Ctrl-C)")
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say to it
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                os.dup2(devnull, stream.fileno())
        return 1
    except GanmmError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    except OSError as exc:  # e.g. the --json path cannot be written
        _say(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return EXIT_USAGE
