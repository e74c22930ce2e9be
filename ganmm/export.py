"""A run as one zip file: its record, metrics, assignments and generated samples."""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .data import round_to_spread
from .store import SCHEMA_VERSION, IterationRecord, IterationUnreadable, RunRecord, RunStore, StoreError

def export_run(store: RunStore, run_id: str, path: Path | str) -> Path:
    """Write run ``run_id`` as the zip ``path`` (all or nothing), holding

    - ``config.json``: the run record, its data and the schema version;
    - ``metrics.csv``: one row per stored iteration (metrics, losses, scalar extras);
    - ``assignments.csv``: the cluster of every row (and its label, if any) at the
      last readable iteration (``config.json``'s ``assignments_csv_iteration``);
    - ``assignments.npy``: (iterations, N) clusters of every stored iteration,
      rows in the order of ``metrics.csv``;
    - generated samples: ``samples/iter_<n>.png`` tiles (one row per cluster) for
      image data, else ``samples.csv`` in the data's own units.

    Member names are fixed here, never taken from the run, so nothing can land
    outside the zip's root. Iterations whose array file is damaged or missing are
    left out of the arrays (``config.json`` lists them under ``iterations_damaged``,
    and ``assignments.npy``'s rows are ``iterations_with_arrays``); their scalars
    stay in ``metrics.csv``. A damaged dataset file leaves out what needs it:
    the labels in ``assignments.csv``, and the data's units and feature names in
    ``samples.csv`` (its samples are then in the model's units, named x0, x1, ...);
    ``config.json`` says so under ``dataset_damaged``.
    """
    path = Path(path)
    if path.suffix.lower() != ".zip":
        raise StoreError(f"an export is a zip file; give a path ending in .zip, not {path.name!r}")
    if path.is_dir():
        raise StoreError(f"{path} is a folder; give the path of the zip file to write")
    if not path.parent.is_dir():
        raise StoreError(f"the folder {path.parent} does not exist; create it or choose another path")
    run = store.get_run(run_id)
    rows = store.iterations(run_id)
    try:
        meta, dataset_damaged = store.dataset_arrays(run_id), None
    except IterationUnreadable as exc:
        meta, dataset_damaged = {}, str(exc)
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            _export_members(store, run, rows, meta, zf, dataset_damaged)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _export_members(store: RunStore, run: RunRecord, rows: list[IterationRecord],
                    meta: dict[str, np.ndarray], zf: zipfile.ZipFile, dataset_damaged: str | None) -> None:
    import csv
    import io

    text = io.StringIO()
    metric_keys = _union(r.metrics for r in rows)
    loss_keys = _union(r.losses for r in rows)
    extra_keys = _union(r.extras for r in rows)
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["iteration", "elapsed", "changed", "converged", *metric_keys,
                     *(f"loss_{k}" for k in loss_keys), *(f"extra_{k}" for k in extra_keys)])
    for r in rows:
        writer.writerow([r.iteration, r.elapsed, r.changed, int(r.converged),
                         *(_cell(r.metrics.get(k)) for k in metric_keys),
                         *(_cell(r.losses.get(k)) for k in loss_keys),
                         *(_cell(r.extras.get(k)) for k in extra_keys)])
    zf.writestr("metrics.csv", text.getvalue())

    image_shape = run.dataset_info.get("image_shape")
    assignments, sample_rows = [], []
    damaged, readable = {}, []
    for r in rows:  # one iteration in memory at a time
        it = r.iteration
        try:
            snap = store.load_iteration(run.run_id, it)
        except IterationUnreadable as exc:
            damaged[it] = str(exc)
            continue
        readable.append(it)
        assignments.append(snap.assignments.astype(np.int32))
        samples = snap.samples
        if samples is None:
            continue
        if image_shape and samples.shape[-1] == image_shape[0] * image_shape[1]:
            zf.writestr(f"samples/iter_{it:06d}.png", _png_tiles(samples, image_shape))
        else:
            sample_rows.append((it, samples))

    if damaged or dataset_damaged:
        run = store.get_run(run.run_id)  # now marked damaged
    config = {**run.to_json(), "schema_version": SCHEMA_VERSION,
              "iterations_exported": [r.iteration for r in rows],
              "iterations_with_arrays": readable, "iterations_damaged": damaged,
              "assignments_csv_iteration": readable[-1] if readable else None,
              "dataset_damaged": dataset_damaged}
    zf.writestr("config.json", json.dumps(config, indent=2))

    if assignments:
        final = assignments[-1]
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        labels = meta.get("y")
        names = meta.get("label_names")
        writer.writerow(["row", "cluster"] + (["label"] if labels is not None else []))
        for i, c in enumerate(final):
            writer.writerow([i, int(c)] + ([str(names[labels[i]])] if labels is not None else []))
        zf.writestr("assignments.csv", text.getvalue())
        buf = io.BytesIO()
        np.save(buf, np.stack(assignments), allow_pickle=False)
        zf.writestr("assignments.npy", buf.getvalue())

    if sample_rows:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        width = sample_rows[0][1].shape[-1]
        features = [str(f) for f in meta["feature_names"]] if "feature_names" in meta \
            else [f"x{j}" for j in range(width)]
        writer.writerow(["iteration", "cluster", "sample", *features])
        in_units = "scale" in meta and width == len(features)
        shown = ".15g" if in_units else ".6g"  # in units: already rounded to the feature's spread
        for it, samples in sample_rows:
            units = round_to_spread(samples * meta["scale"].astype(np.float64) + meta["offset"], meta["scale"]) \
                if in_units else samples
            for k in range(units.shape[0]):
                for s in range(units.shape[1]):
                    writer.writerow([it, k, s, *(format(v, shown) for v in units[k, s])])
        zf.writestr("samples.csv", text.getvalue())


def _union(dicts: Any) -> list[str]:
    keys: dict[str, None] = {}
    for d in dicts:
        keys.update(dict.fromkeys(d))
    return list(keys)


def _cell(v: Any) -> Any:
    return "" if v is None else v


def _png_tiles(samples: np.ndarray, image_shape: list[int]) -> bytes:
    """(K, S, h*w) images in [0, 1] as one grey PNG: a row of S tiles per cluster."""
    import io

    from PIL import Image

    h, w = image_shape
    k, s = samples.shape[:2]
    zoom = max(1, math.ceil(28 / max(h, w)))  # small images (8x8 digits) drawn larger
    gap = 2
    tiles = np.clip(samples.reshape(k, s, h, w), 0.0, 1.0)
    tiles = np.repeat(np.repeat(tiles, zoom, axis=2), zoom, axis=3)
    th, tw = h * zoom, w * zoom
    sheet = np.full((k * (th + gap) + gap, s * (tw + gap) + gap), 0.5, dtype=np.float32)
    for i in range(k):
        for j in range(s):
            y0, x0 = gap + i * (th + gap), gap + j * (tw + gap)
            sheet[y0:y0 + th, x0:x0 + tw] = tiles[i, j]
    buf = io.BytesIO()
    Image.fromarray((sheet * 255).round().astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()
