"""What the run store costs a GANMM run on mnist5k: the time spent persisting each
iteration as a share of that iteration's time (goal: under 5%), and the store's
size per 100 iterations (goal: under 50 MB).

    python benchmarks/store_overhead.py [--iters 3] [--preset default] [--device auto] [--dataset mnist5k]

GANMM (K=10) trains on mnist5k in a temporary GANMM_HOME; every Snapshot goes
through ``RunStore.append_iteration`` exactly as a managed run's does (array
file written, fsynced and renamed, then the row committed). A few iterations
suffice for the time: the cost per iteration does not grow with the iteration
number. For the size, the real snapshots are then replayed as 100 iterations of
a second run in a fresh store, and the whole store folder (database, WAL and
array files) is measured on disk. Prints a markdown table, then the numbers as
JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def row_bytes(store, run_id: str) -> list[int]:
    """Bytes each iteration's database row holds: its text columns as stored plus
    8 bytes per number (SQLite's page overhead comes on top)."""
    import sqlite3

    with sqlite3.connect(store.db_path) as db:
        return [r[0] for r in db.execute(
            "SELECT LENGTH(run_id) + LENGTH(metrics_json) + LENGTH(losses_json)"
            " + LENGTH(extras_json) + LENGTH(file) + 6 * 8 FROM iterations"
            " WHERE run_id = ? ORDER BY iteration", (run_id,))]


def replayed_store_bytes(ds, snaps: list, n: int) -> int:
    """Bytes on disk of a fresh store holding one run of ``n`` iterations, made by
    replaying ``snaps`` (real GANMM snapshots) with new iteration numbers."""
    import dataclasses

    from ganmm.store import RunStore

    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp))
        run = store.create_run(dataset=ds, model="ganmm", config={}, seed=0, device="cpu")
        store.set_status(run.run_id, "running")
        for i in range(n):
            store.append_iteration(run.run_id, dataclasses.replace(snaps[i % len(snaps)], iteration=i))
        store.set_status(run.run_id, "done")
        return sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=3, help="EM iterations after the initial split")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dataset", default="mnist5k", help="a built-in dataset (mnist5k: the goal's)")
    args = ap.parse_args()

    import torch

    from ganmm import data
    from ganmm.models import make_model
    from ganmm.runs import _resolve_device
    from ganmm.store import RunStore

    ds = data.load(args.dataset)
    device = _resolve_device(args.device)
    model = make_model("ganmm", preset=args.preset, n_clusters=10, max_iter=args.iters, seed=0,
                       tol=-1.0, device=device)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = RunStore(home)
        run = store.create_run(dataset=ds, model="ganmm", config={"preset": args.preset}, seed=0,
                               device=device)
        store.set_status(run.run_id, "running")
        rows, snaps = [], []
        prev_elapsed, prev_persist = 0.0, 0.0
        for snap in model.fit_iter(ds.X, ds.y):
            t0 = time.perf_counter()
            nbytes = store.append_iteration(run.run_id, snap)
            snaps.append(snap)
            persist = time.perf_counter() - t0
            # snap.elapsed counts from fit_iter's start, so it includes the
            # previous iteration's persisting: take it out
            compute = snap.elapsed - prev_elapsed - prev_persist
            rows.append({"iteration": snap.iteration, "compute_s": compute, "persist_s": persist,
                         "share": persist / (compute + persist), "file_bytes": nbytes})
            prev_elapsed, prev_persist = snap.elapsed, persist
        store.set_status(run.run_id, "done")
        for r, db in zip(rows, row_bytes(store, run.run_id)):
            r["db_bytes"] = db

    em = [r for r in rows if r["iteration"] > 0] or rows
    mean_share = sum(r["persist_s"] for r in em) / sum(r["compute_s"] + r["persist_s"] for r in em)
    per_iter = sum(r["file_bytes"] + r["db_bytes"] for r in em) / len(em)
    on_disk_100 = replayed_store_bytes(ds, snaps[1:] or snaps, 100)
    print(f"GANMM ({args.preset} preset), {ds.name}, K=10, device {device}, "
          f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}\n")
    print("| iteration | iteration (s) | persisting (s) | share | array file (KB) | database (KB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['iteration']} | {r['compute_s']:.2f} | {r['persist_s']:.4f} | {100 * r['share']:.2f}% "
              f"| {r['file_bytes'] / 1024:.0f} | {r['db_bytes'] / 1024:.2f} |")
    print(f"\nEM iterations 1..{rows[-1]['iteration']}: persisting takes {100 * mean_share:.2f}% of the "
          f"time (goal < 5%); store size {per_iter / 1e6:.3f} MB per iteration, so about "
          f"{100 * per_iter / 1e6:.1f} MB per 100 iterations; measured on disk, a store holding "
          f"one run of 100 iterations takes {on_disk_100 / 1e6:.1f} MB (goal < 50 MB)")
    print(json.dumps({"dataset": ds.name, "device": device, "preset": args.preset, "iterations": rows,
                      "persist_share": mean_share, "mb_per_100_iterations": on_disk_100 / 1e6}))


if __name__ == "__main__":
    main()
