"""How long one Classroom step takes: all three models (GMM, GANMM, GANMM-EM)
advanced by one EM iteration, with their pictures (decision regions over the
grid, sample clouds), on every built-in 2-D set.

    python benchmarks/classroom_steps.py [--steps 20] [--threads 1 2]

Prints, per set and torch thread count, iteration 0 (the initial split and
the GANs' pretraining) and the EM steps after it (median, p95, max), and each
model's share of a step. The dashboard's server gives training all cores but
one, so on a 2-core laptop the page's lesson runs on 1 thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ganmm import data  # noqa: E402
from ganmm.lesson import LESSON_MODELS, Lesson, LessonConfig, lesson_points  # noqa: E402
from ganmm.ui.classroom import TWO_D_SETS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="EM steps timed per set (default 20)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads (default 1 2)")
    parser.add_argument("--datasets", nargs="+", default=list(TWO_D_SETS))
    args = parser.parse_args()
    print("| set | threads | iteration 0 (s) | step median (s) | step p95 (s) | step max (s) | "
          "GMM / GANMM / GANMM-EM share |")
    print("|---|---|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name in args.datasets:
            ds = data.load_builtin(name)
            lesson = Lesson(lesson_points(ds.X), ds.y, LessonConfig(n_clusters=ds.n_classes or 2))
            t = time.perf_counter()
            lesson.step()
            first = time.perf_counter() - t
            times = []
            for _ in range(args.steps):
                lesson.step()
                times.append(lesson.last_step_seconds)
            share = {m: sum(f.seconds for f in lesson.frames(m)[1:]) for m in LESSON_MODELS}
            total = sum(share.values())
            print(f"| {name} | {threads} | {first:.2f} | {statistics.median(times):.2f} | "
                  f"{float(np.percentile(times, 95)):.2f} | {max(times):.2f} | "
                  + " / ".join(f"{share[m] / total:.0%}" for m in LESSON_MODELS) + " |", flush=True)


if __name__ == "__main__":
    main()
