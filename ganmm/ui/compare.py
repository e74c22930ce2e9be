"""Tables of the Compare page, built from run records (plain pandas, no widgets)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..store import RunRecord

METRICS = ("purity", "ari", "nmi", "acc")
_IGNORED = {"seed", "device", "n_snapshot_samples", "preset"}
"""resolved settings that do not make two runs' configurations different"""


def settings_of(record: RunRecord) -> dict:
    """The run's resolved model settings, flattened to printable values."""
    resolved = record.config.get("resolved") or record.config.get("settings") or {}
    return {k: json.dumps(v) if isinstance(v, (list, tuple, dict)) else v for k, v in resolved.items()}


def preset_of(record: RunRecord) -> str | None:
    """The preset the run trained with: the resolved one (a command-line run without
    --preset records None as asked, the form "default"; both train the default)."""
    resolved = record.config.get("resolved") or {}
    return resolved.get("preset") or record.config.get("preset")


def _training_seconds(r: RunRecord) -> float:
    """Seconds of training to the run's last stored iteration, pauses excluded (the
    Train page's figure; start to finish counted a pause as training)."""
    if r.elapsed is not None:
        return r.elapsed
    return (r.finished or r.started or r.created) - (r.started or r.created)


def summary(records: list[RunRecord]) -> tuple[pd.DataFrame, set[str]]:
    """One row per run: identity, final metrics, time, settings; and the names of
    the setting columns whose values differ between the runs."""
    rows = []
    for r in records:
        seconds = _training_seconds(r)
        rows.append({"run": r.name, "model": r.model, "dataset": r.dataset, "status": r.status,
                     "iterations": r.iterations, "seconds": round(seconds, 1),
                     **{m: r.metrics.get(m) for m in METRICS}, "seed": r.seed,
                     "preset": preset_of(r), **settings_of(r)})
    table = pd.DataFrame(rows)
    fixed = {"run", "iterations", "seconds", "status", *METRICS}
    # a setting one run has and another lacks differs too (NaN is no value to nunique)
    differs = {c for c in table.columns if c not in fixed and table[c].map(_setting).nunique() > 1}
    return table, differs


def summary_view(records: list[RunRecord]):
    """The summary as the Compare page shows it: seconds to 1 decimal, a setting a
    model does not have as "-" (pandas' default drew "None"), and the settings that
    differ between the runs highlighted. The metrics stay numbers, so that they
    sort as numbers; the page's table draws them to 3 decimals and a missing one
    as "-" (``common.METRIC_COLUMNS`` and its ``placeholder``: the browser draws a
    number column by its format, not by a Styler's text)."""
    table, differs = summary(records)
    # settings as given (0.0001 and 5e-05 stay apart, 128.0 reads 128), as text: the
    # browser's table draws a missing value as "None" whatever a Styler says
    for c in table.columns.difference([*METRICS, "seconds"]):
        table[c] = table[c].map(_setting)
    return (numeric_metrics(table).style
            .format("{:.1f}", subset=["seconds"], na_rep="-")
            .apply(lambda col: ["background-color: #fff3b0" if col.name in differs else ""] * len(col)))


def numeric_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its metric columns as floats, NaN where a run has none (no
    labels): numbers sort as numbers, also when no run has any (a column of None
    alone was a column of objects)."""
    for c in METRICS:
        table[c] = pd.to_numeric(table[c], errors="coerce").astype(float)
    return table


def _setting(value) -> str:
    """A summary cell: "-" for none, a number in its shortest exact-looking form."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.10g}"
    return str(value)


def config_key(record: RunRecord) -> str:
    """What groups runs that differ only by seed: model, data, settings."""
    settings = {k: v for k, v in settings_of(record).items() if k not in _IGNORED}
    spec = record.config.get("data") or {}
    # each seed of the embedded space has its own autoencoder, so its own codes:
    # those runs are grouped by where the data came from instead
    data = record.fingerprint if spec.get("space") != "embedded" else \
        {k: v for k, v in spec.items() if k != "space_seed"}
    return json.dumps([record.model, data, preset_of(record), settings],
                      sort_keys=True, default=str)


def seed_table(records: list[RunRecord]) -> pd.DataFrame:
    """Mean ± std of the final metrics over the seeds of each configuration
    (finished runs with labels only), with the mean wall time."""
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.status == "done" and r.metrics.get("ari") is not None:
            groups.setdefault(config_key(r), []).append(r)
    rows = []
    for runs in groups.values():
        first = runs[0]
        row = {"model": first.model, "dataset": first.dataset, "preset": preset_of(first) or "-",
               "K": settings_of(first).get("n_clusters"), "seeds": len({r.seed for r in runs}),
               "runs": len(runs)}
        for m in METRICS:
            v = np.array([r.metrics[m] for r in runs], dtype=float)
            row[m] = f"{v.mean():.4f} ± {v.std():.4f}"
        row["seconds"] = round(float(np.mean([_training_seconds(r) for r in runs])), 1)
        rows.append(row)
    columns = ["model", "dataset", "preset", "K", "seeds", "runs", *METRICS, "seconds"]
    return pd.DataFrame(rows, columns=columns)
