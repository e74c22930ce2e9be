"""The paper's tables, by one command: every model x seed through the run store,
then Purity, ARI, NMI, ACC and wall time as mean ± std (``python -m ganmm table``).

The runs are ordinary runs: they show in ``python -m ganmm runs`` and on the
dashboard's Compare page (its mean ± std over seeds groups them again).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError

METRICS = ("purity", "ari", "nmi", "acc")

PAPER_MNIST = {
    "raw": {"ganmm": (0.6430, 0.4924, 0.6159), "gmm": (0.3261, 0.0991, 0.1414),
            "dec": (0.3065, 0.1437, 0.1935), "ganmm-em": (0.2786, 0.0665, 0.2414)},
    "embedded": {"ganmm": (0.8908, 0.8361, 0.8654), "gmm": (0.8617, 0.7933, 0.8451),
                 "dec": (0.8673, 0.8091, 0.8457), "ganmm-em": (0.5243, 0.3210, 0.4701)},
}
"""Yu & Zhou 2018, full MNIST: (purity, ARI, NMI) per space and model"""


class TableInterrupted(KeyboardInterrupt):
    """Ctrl-C during a table: ``results`` holds the runs that ended; ``stopped`` is
    the run that was training, stopped (its iterations kept; in ``results`` too),
    or None when the Ctrl-C came between runs (an autoencoder, say)."""

    def __init__(self, results: list["TableRun"], stopped: "TableRun | None" = None):
        super().__init__()
        self.results, self.stopped = results, stopped


@dataclass(frozen=True)
class TableRun:
    """One model and seed of a table."""

    model: str
    """the model as the table names it: "ganmm", or with its preset, "ganmm:paper" """
    dataset: str
    """the dataset's name (raw)"""
    seed: int
    run_id: str
    status: str
    metrics: dict
    seconds: float
    iterations: int | None
    error: str | None = None


def run_table(dataset: str, space: str, models: Sequence[str], seeds: int, *,
              clusters: int | None = None, iters: int | None = None,
              time_budget: float | None = None, device: str = "auto",
              label_column: str | None = None, labels: str | None = None,
              say: Callable[[str], None] = lambda text: None) -> list[TableRun]:
    """Train every model with seeds 0 .. seeds-1, one run at a time, through the
    run store; ``say`` gets one line per run as it starts and ends. A file's labels
    come from ``label_column`` (CSV/TSV) or the file ``labels``, as for ``run``.
    Ctrl-C stops the run in progress and raises :class:`TableInterrupted`."""
    from . import data
    from .embedding import effective_space, embedded_dataset
    from .models import MODEL_NAMES
    from .runs import RunManager
    from .store import RunStore

    unknown = [m for m in models if split_entry(m)[0] not in MODEL_NAMES]
    if unknown or not models:
        raise ConfigError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(MODEL_NAMES)} (a GAN mixture may name its preset: "
                          "ganmm:paper)")
    if space not in ("raw", "embedded"):
        raise ConfigError(f"space must be raw or embedded, got {space!r}")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if clusters is not None and clusters < 1:
        raise ConfigError(f"--clusters must be at least 1, got {clusters}")
    if len(set(models)) < len(models):
        twice = sorted({m for m in models if list(models).count(m) > 1})
        raise ConfigError(f"--models names {', '.join(twice)} more than once; name each model once")
    raw = data.load(dataset, label_column=label_column, labels_path=labels)
    k = clusters or raw.n_classes
    if not k:
        raise ConfigError(f"{dataset} has no labels to take K from; give --clusters")
    raw.validate_for(k)
    builtin = dataset.strip().lower() in data.BUILTINS
    source = raw.name if builtin else str(Path(dataset).expanduser().resolve())
    file_options = {"label_column": label_column,
                    "labels": str(Path(labels).expanduser().resolve()) if labels else None}
    manager = RunManager(RunStore(), max_concurrent=1)
    spaces = {}
    results = []
    # DEC's encoder is the embedded space's autoencoder: it is trained (or read from
    # the cache) before the seed's runs, so that a time budget is the clustering's own
    needs_codes = space == "embedded" or any(split_entry(m)[0] == "dec" for m in models)
    current = None  # (entry, seed, run_id) of the run started and not yet ended
    try:
        for seed in range(seeds):
            if needs_codes:
                say(f"autoencoder for seed {seed} (cached after its first training) ...")
                spaces[seed] = embedded_dataset(raw, seed=seed, device=device)
            for entry in models:
                model, preset = split_entry(entry)
                used = effective_space(model, space)
                ds = spaces[seed] if used == "embedded" else raw
                settings = {"n_clusters": k}
                if time_budget is not None:  # 0: no budget; None: the model's own
                    settings["time_budget"] = time_budget or None
                if iters is not None:
                    settings["max_iter"] = iters
                options = {**file_options, "space": used,
                           **({"space_seed": seed} if used == "embedded" else {})}
                run_id = manager.start(ds, model, settings, seed=seed, device=device, preset=preset,
                                       name=f"table: {entry} on {raw.name} ({space}), seed {seed}",
                                       dataset_source=source, data_options=options)
                current = (entry, seed, run_id)
                say(f"{entry} seed {seed}: run {run_id} ...")
                record = manager.wait(run_id)
                results.append(_table_run(entry, raw.name, seed, record))
                current = None
                said = " ".join(f"{m} {record.metrics[m]:.4f}" for m in METRICS if m in record.metrics)
                say(f"{entry} seed {seed}: {record.status} after {results[-1].seconds:.0f} s, "
                    f"{record.iterations} iterations  {said}")
    except KeyboardInterrupt:  # anywhere: an autoencoder, a run, between runs
        stopped = None
        if current is not None:
            entry, seed, run_id = current
            manager.stop(run_id)
            stopped = _table_run(entry, raw.name, seed, manager.store.get_run(run_id))
            results.append(stopped)
        raise TableInterrupted(results, stopped) from None
    return results


def _table_run(entry: str, dataset: str, seed: int, record) -> TableRun:
    seconds = (record.finished or 0) - (record.started or record.created)
    return TableRun(entry, dataset, seed, record.run_id, record.status, dict(record.metrics),
                    round(seconds, 2), record.iterations, record.error)


def split_entry(entry: str) -> tuple[str, str | None]:
    """ "ganmm:paper" -> ("ganmm", "paper"); "gmm" -> ("gmm", None)."""
    model, _, preset = entry.partition(":")
    return model, preset or None


def summary(results: Sequence[TableRun], models: Sequence[str]) -> list[dict]:
    """Per model: mean and std of every metric and of the seconds over its done runs."""
    rows = []
    for model in models:
        done = [r for r in results if r.model == model and r.status == "done"]
        row = {"model": model, "runs": len(done),
               "failed": sum(1 for r in results if r.model == model and r.status != "done")}
        for key in (*METRICS, "seconds"):
            values = [r.seconds if key == "seconds" else r.metrics.get(key) for r in done]
            values = [v for v in values if v is not None]
            row[key] = (float(np.mean(values)), float(np.std(values))) if values else (math.nan, math.nan)
        rows.append(row)
    return rows


def markdown(results: Sequence[TableRun], models: Sequence[str], *, dataset: str, space: str,
             paper: bool = True) -> str:
    """The paper-style table; the paper's MNIST rows beside it when asked and known."""
    lines = [f"{dataset}, {space} features, mean ± std over seeds",
             "", "| model | purity | ARI | NMI | ACC | seconds | runs |", "|---|---|---|---|---|---|---|"]
    for row in summary(results, models):
        cells = [_pm(row[key], 4) for key in METRICS] + [_pm(row["seconds"], 0)]
        runs = f"{row['runs']}" + (f" ({row['failed']} not done)" if row["failed"] else "")
        lines.append(f"| {row['model']} | " + " | ".join(cells) + f" | {runs} |")
    if paper and dataset.lower().startswith("mnist"):
        for model in models:
            if model in PAPER_MNIST[space]:
                p, a, n = PAPER_MNIST[space][model]
                lines.append(f"| paper: {model} (MNIST) | {p:.4f} | {a:.4f} | {n:.4f} | | | |")
    return "\n".join(lines)


def as_json(results: Sequence[TableRun], models: Sequence[str], *, dataset: str, space: str) -> dict:
    return {"dataset": dataset, "space": space, "runs": [asdict(r) for r in results],
            "summary": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in row.items()}
                        for row in summary(results, models)]}


def _pm(value: tuple[float, float], digits: int) -> str:
    mean, std = value
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
