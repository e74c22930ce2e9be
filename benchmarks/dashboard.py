"""What the dashboard costs and how live it is, measured (printed, never asserted).

    python benchmarks/dashboard.py [--soak-minutes 30] [--only cold,refresh,delay,umap,soak,watched] [--json PATH]

- cold: ``streamlit run Home.py`` started to the home page's title painted in chromium;
- refresh: server time of one live-view refresh (the fragment's body) on the Train
  page while a GANMM run trains on mnist5k in the same process, once its UMAP and
  reference lines are there (Streamlit's AppTest drives the page; goal <= 300 ms);
- delay: an iteration's row committed in the run store to its number showing in the
  browser, for a GANMM run on moons started from the command line (goal <= 2 s);
- umap: UMAP fit of mnist5k on the projection worker (first fit in a fresh process,
  numba compilation included);
- soak: the server's resident memory while a browser keeps the live view of a
  training mnist5k GANMM run open for ``--soak-minutes``, and the run's pace
  (iterations a minute) over each half;
- watched: work done in the server while a browser watches it, on two servers in
  turn: one with Streamlit's full garbage collection after every script run (its
  default, ``runner.postScriptGC``), one as configured (``.streamlit/config.toml``
  turns it off). On each: the Classroom's iteration 0 (opened to shown) and the
  "last step" of three Steps on moons, then a GANMM run on moons started on the
  Train page and its iterations per minute with the live view open (counted over
  a minute, from 20 s after its first iteration). A 2-D set keeps the server's
  other work (a UMAP picture, reference fits on 784 features) out of the count.

Needs chromium (``make test`` installs it) and the Python packages of
requirements-test.txt. Everything runs on loopback with temporary GANMM_HOMEs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))  # browser_helpers

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ITERATION = re.compile(r"iteration (\d+) of at most")


# ---- a server and a browser -------------------------------------------------------------

def start_server(home: Path, env: dict | None = None) -> tuple[subprocess.Popen, str, float]:
    """streamlit run Home.py on a free loopback port (``env``: more environment
    variables); returns (process, url, start time)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, GANMM_HOME=str(home), **(env or {}))
    began = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(600):
        try:
            if opener.open(f"{url}/_stcore/health", timeout=1).read().strip() == b"ok":
                return proc, url, began
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the streamlit server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop it as Ctrl-C would; kill it if it has not ended after 30 s (a server
    with a run training can take a while)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait(10)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def chromium():
    from playwright.sync_api import sync_playwright

    path = os.environ.get("GANMM_CHROMIUM") or "/usr/bin/chromium"
    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


# ---- the measurements -------------------------------------------------------------------

def cold_start(browser) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, began = start_server(Path(tmp))
        ready = time.time()
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("heading", name="GANMM Studio").wait_for(timeout=120_000)
        painted = time.time()
        page.close()
        stop_server(proc)
    return {"server_ready_s": ready - began, "first_paint_s": painted - began}


def live_refresh(n: int = 20) -> dict:
    """Fragment body times while GANMM trains on mnist5k in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GANMM_HOME"] = tmp
        from streamlit.testing.v1 import AppTest

        from ganmm import data
        from ganmm.runs import get_manager
        from ganmm.ui import live

        times: list[float] = []
        body = live._live_body

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return body(*args, **kwargs)
            finally:
                times.append(time.perf_counter() - t)

        live._live_body = timed
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))  # as the server does (ganmm.ui.common)
        mgr = get_manager()
        run_id = mgr.start(data.load("mnist5k"), "ganmm", {"n_clusters": 10, "max_iter": 1000,
                                                           "time_budget": 900.0},
                           dataset_source="mnist5k")
        while mgr.store.get_run(run_id).iterations is None:
            time.sleep(0.5)
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=300).switch_page("pages/2_Train.py")
        at.session_state["run_id"] = run_id
        at.run()  # first draw: caches fill (dataset, projection request, reference fits)
        from ganmm.projection import get_projector
        from ganmm.reference import compute_reference

        ds = data.load("mnist5k")  # steady state: UMAP fitted, reference lines there
        get_projector().embedding(ds, timeout=1800)
        compute_reference(ds, 10, 0)
        at.run()
        times.clear()
        for _ in range(n):
            at.run()
            time.sleep(0.5)
        mgr.stop(run_id)
        live._live_body = body
        iterations = mgr.store.get_run(run_id).iterations
    ms = [1000 * t for t in times]
    return {"refreshes": len(ms), "p50_ms": statistics.median(ms), "p95_ms": pct(ms, 0.95),
            "max_ms": max(ms), "iterations_meanwhile": iterations}


def store_to_browser(browser, samples: int = 15) -> dict:
    """Delay from an iteration's commit to its number on the Train page."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        proc, url, _ = start_server(home)
        env = dict(os.environ, GANMM_HOME=str(home))
        run = subprocess.Popen([sys.executable, "-m", "ganmm", "run", "--dataset", "moons", "--model",
                                "ganmm", "--clusters", "2", "--iters", "10000", "--time-budget", "600",
                                "--quiet", "--json", str(home / "r.json")], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        page = browser.new_page()
        page.goto(url + "/Train")
        seen: dict[int, float] = {}
        deadline = time.time() + 600
        while len(seen) < samples and time.time() < deadline:
            shown = _shown_iteration(page)
            if shown is not None and shown not in seen:
                seen[shown] = time.time()
            time.sleep(0.05)
        run.terminate()
        run.wait(30)
        with sqlite3.connect(home / "runs.db") as db:
            written = dict(db.execute("SELECT iteration, written FROM iterations"))
        page.close()
        stop_server(proc)
    delays = [seen[i] - written[i] for i in seen if i in written and i > min(seen)]
    return {"samples": len(delays), "p50_s": statistics.median(delays), "p95_s": pct(delays, 0.95),
            "max_s": max(delays)}


def umap_fit() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GANMM_HOME"] = tmp
        from ganmm import data
        from ganmm.projection import Projector

        projector = Projector()
        ds = data.load("mnist5k")
        t = time.perf_counter()
        projector.embedding(ds, timeout=1800)
        wall = time.perf_counter() - t
        state = projector.request(ds)
        projector.shutdown()
    return {"fit_s": state.seconds, "wall_s": wall}


def soak(browser, minutes: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, _ = start_server(Path(tmp))
        page = browser.new_page()
        page.goto(url + "/Train")
        main = page.locator('[data-testid="stMain"]')
        main.get_by_label("Iterations (cap)").fill("100000")
        main.get_by_label("Time budget (s, 0 = none)").fill(str(int(minutes * 60) + 60))
        main.get_by_role("button", name="Start training").click()
        page.get_by_text(ITERATION).first.wait_for(timeout=600_000)
        start = rss_mb(proc.pid)
        samples = [(0.0, start, _shown_iteration(page))]  # (minutes, MB, iteration the page shows)
        t0 = time.time()
        while time.time() - t0 < minutes * 60:
            time.sleep(min(60.0, minutes * 60 / 10))
            samples.append(((time.time() - t0) / 60, rss_mb(proc.pid), _shown_iteration(page)))
        errors = page.locator('[data-testid="stException"]').count()
        page.close()
        stop_server(proc)
    return {"minutes": minutes, "rss_start_mb": start, "rss_end_mb": samples[-1][1],
            "rss_max_mb": max(v for _, v, _ in samples), "iteration_at_end": samples[-1][2],
            "page_exceptions": errors, "samples": samples, "pace": _halves_pace(samples)}


def _shown_iteration(page) -> int | None:
    """The iteration number the page shows, or None when it shows none."""
    m = ITERATION.search(page.inner_text("body"))
    return int(m.group(1)) if m else None


def _halves_pace(samples: list[tuple[float, float, int | None]]) -> dict[str, float | None]:
    """Iterations a minute over the first and the second half of the soak: the first
    shares the CPU with the dataset's one-time UMAP and reference fits."""
    mid = samples[len(samples) // 2]
    out = {}
    for name, (a, b) in (("first_half_per_minute", (samples[0], mid)), ("second_half_per_minute", (mid, samples[-1]))):
        out[name] = (b[2] - a[2]) / (b[0] - a[0]) if None not in (a[2], b[2]) and b[0] > a[0] else None
    return out


LAST_STEP = re.compile(r"last step ([0-9.]+) s")


def watched(browser, minute: float = 60.0) -> dict:
    """The Classroom's steps and a training run's pace in a watched server, with and
    without Streamlit's post-run garbage collection (see the module docstring)."""
    from browser_helpers import choose
    from playwright.sync_api import expect

    out: dict = {}
    for label, env in (("gc_after_every_run", {"STREAMLIT_RUNNER_POST_SCRIPT_GC": "true"}),
                       ("as_configured", {})):
        with tempfile.TemporaryDirectory() as tmp:
            proc, url, _ = start_server(Path(tmp), env)
            page = browser.new_page()
            main = page.locator('[data-testid="stMain"]')
            metric = main.get_by_test_id("stMetricValue").first
            began = time.time()
            page.goto(url + "/Classroom")
            expect(metric).to_have_text("0", timeout=900_000)
            first = time.time() - began
            steps = []
            for n in (1, 2, 3):
                main.get_by_role("button", name="Step", exact=True).click()
                expect(metric).to_have_text(str(n), timeout=600_000)
                steps.append(float(LAST_STEP.search(page.inner_text("body")).group(1)))
            # a GANMM run on moons, chosen on the Data page of the same session
            page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Data").click()
            choose(main, "Built-in dataset", "moons")
            main.get_by_role("button", name="Use this dataset for new runs").click()
            expect(main.get_by_text("New runs on the Train page use this dataset")).to_be_visible()
            page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Train").click()
            expect(main.get_by_text("Dataset moons")).to_be_visible()
            main.get_by_label("Iterations (cap)").fill("100000")
            main.get_by_label("Time budget (s, 0 = none)").fill("900")
            main.get_by_text("Stop when settled", exact=True).click()
            main.get_by_role("button", name="Start training").click()
            page.get_by_text(ITERATION).first.wait_for(timeout=600_000)
            page.wait_for_timeout(20_000)  # the reference lines are fitted meanwhile
            start = _shown_iteration(page)
            page.wait_for_timeout(minute * 1000)
            end = _shown_iteration(page)
            page.close()
            stop_server(proc)
        out[label] = {"classroom_iteration0_s": first, "classroom_steps_s": steps,
                      "training_iterations_per_minute": (end - start) * 60.0 / minute}
        print(json.dumps({label: out[label]}), file=sys.stderr, flush=True)
    on, off = out["gc_after_every_run"], out["as_configured"]
    out["ratios"] = {
        "classroom_iteration0": on["classroom_iteration0_s"] / off["classroom_iteration0_s"],
        "classroom_step": statistics.median(on["classroom_steps_s"]) / statistics.median(off["classroom_steps_s"]),
        # None when the run with the collection trained nothing in its minute: no ratio to give
        "training_pace": (off["training_iterations_per_minute"] / on["training_iterations_per_minute"]
                          if on["training_iterations_per_minute"] > 0 else None)}
    return out


def _times(ratio: float | None) -> str:
    """A ratio as "2.1x", or why there is none."""
    return "no ratio: none trained with the collection" if ratio is None else f"{ratio:.1f}x"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--soak-minutes", type=float, default=30.0)
    ap.add_argument("--only", default="cold,refresh,delay,umap,soak,watched")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    wanted = args.only.split(",")
    out: dict = {"cpu_cores": os.cpu_count()}
    pw, browser = chromium() if {"cold", "delay", "soak", "watched"} & set(wanted) else (None, None)
    steps = {"cold": lambda: cold_start(browser), "refresh": live_refresh,
             "delay": lambda: store_to_browser(browser), "umap": umap_fit,
             "soak": lambda: soak(browser, args.soak_minutes), "watched": lambda: watched(browser)}
    for name in wanted:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        out[name] = steps[name]()
        print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
    if browser is not None:
        browser.close()
        pw.stop()
    rows = [("cold start to first paint", f"{out['cold']['first_paint_s']:.1f} s", "") if "cold" in out else None,
            ("live refresh, server time (mnist5k GANMM training)",
             f"p50 {out['refresh']['p50_ms']:.0f} ms, p95 {out['refresh']['p95_ms']:.0f} ms", "<= 300 ms")
            if "refresh" in out else None,
            ("stored iteration to browser", f"p50 {out['delay']['p50_s']:.2f} s, p95 {out['delay']['p95_s']:.2f} s",
             "<= 2 s") if "delay" in out else None,
            ("UMAP fit, mnist5k", f"{out['umap']['fit_s']:.1f} s", "") if "umap" in out else None,
            (f"server memory, {args.soak_minutes:g} min live view",
             f"{out['soak']['rss_start_mb']:.0f} -> {out['soak']['rss_end_mb']:.0f} MB "
             f"(max {out['soak']['rss_max_mb']:.0f})", "") if "soak" in out else None,
            (f"iterations a minute of that run, first / second {args.soak_minutes / 2:g} min",
             " / ".join("-" if v is None else f"{v:.0f}" for v in out["soak"]["pace"].values()), "")
            if "soak" in out else None]
    if "watched" in out:
        w = out["watched"]
        on, off = w["gc_after_every_run"], w["as_configured"]
        rows += [("Classroom iteration 0, opened to shown: GC after every run / as configured",
                  f"{on['classroom_iteration0_s']:.1f} s / {off['classroom_iteration0_s']:.1f} s "
                  f"({w['ratios']['classroom_iteration0']:.1f}x)", ""),
                 ("Classroom step (median of 3): GC after every run / as configured",
                  f"{statistics.median(on['classroom_steps_s']):.2f} s / "
                  f"{statistics.median(off['classroom_steps_s']):.2f} s ({w['ratios']['classroom_step']:.1f}x)", ""),
                 ("moons GANMM in the server, live view open: iterations per minute, "
                  "GC after every run / as configured",
                  f"{on['training_iterations_per_minute']:.0f} / {off['training_iterations_per_minute']:.0f} "
                  f"({_times(w['ratios']['training_pace'])})", "")]
    print("| measure | value | goal |\n|---|---|---|")
    for row in filter(None, rows):
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
