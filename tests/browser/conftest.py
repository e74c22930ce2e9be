"""Browser end-to-end tests: a real Streamlit server driven by a real chromium.

Playwright's Python package drives the system chromium (Debian package
``chromium``, which ``make test`` installs with apt-get when missing); no
``playwright install`` download is needed.  When chromium (or Playwright) is
missing the tests here are skipped, except under CI (env ``CI`` set), where
they fail instead: CI must never pass by skipping them.

Fixtures: ``browser`` (session), ``page`` (a fresh tab per test), ``server``
(one dashboard per test module) and ``server_factory`` (a fresh dashboard on
call, stopped after the test).  Helpers: ``wait_for_app(page)`` and
``screenshot(page, name)`` (writes only with ``GANMM_SCREENSHOTS=1``), in
``browser_helpers.py``: ``from browser_helpers import screenshot, wait_for_app``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # so tests can `from browser_helpers import ...` under any --import-mode
    sys.path.insert(0, str(HERE))

from browser_helpers import ROOT, screenshot, wait_for_app  # noqa: E402,F401  (re-exported)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_TIMEOUT = 60.0
DEFAULT_TIMEOUT_MS = 30_000


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def find_chromium() -> str | None:
    """The chromium to drive: $GANMM_CHROMIUM when set (and only it), else chromium on PATH,
    else /usr/bin/chromium; None when none is an executable file."""
    override = os.environ.get("GANMM_CHROMIUM")
    candidates = [override] if override else [shutil.which("chromium"), "/usr/bin/chromium"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _missing(reason: str) -> None:
    """Skip outside CI, fail in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: end-to-end test in a real chromium against a live Streamlit server "
                   "(tests/browser; deselect with -m 'not browser')")


def pytest_collection_modifyitems(config, items):
    # This hook sees the whole session's items: mark only the ones under tests/browser.
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


# -- the browser ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        where = (f"$GANMM_CHROMIUM={os.environ['GANMM_CHROMIUM']}" if os.environ.get("GANMM_CHROMIUM")
                 else "PATH and /usr/bin/chromium")
        _missing(f"chromium not found (looked at {where}); "
                 "`make test` installs it, or: apt-get install --no-install-recommends chromium")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:  # pragma: no cover - requirements-test.txt pins it
        _missing(f"playwright is not installed ({exc}); `make test` installs requirements-test.txt")
    # expect() retries for 5 s by default: too short for a cold dataset load on a busy 2-core CI box
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
    except Exception:
        pw.stop()
        raise
    try:
        yield chromium
    finally:
        chromium.close()
        pw.stop()


@pytest.fixture
def page(browser):
    """A fresh tab (own context: no shared cookies or storage) per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


# -- the Streamlit server ------------------------------------------------------------------------

@dataclass
class Server:
    url: str
    home: Path
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def _healthy(url: str) -> bool:
    try:
        with _NO_PROXY.open(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200 and r.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


def start_server(home: Path, script: str = "Home.py", timeout: float = SERVER_START_TIMEOUT) -> Server:
    """Start ``streamlit run <script>`` on a free loopback port with GANMM_HOME=home; wait for health."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = dict(os.environ, GANMM_HOME=str(home), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "streamlit", "run", script,
           "--server.headless", "true",
           "--server.address", "127.0.0.1",
           "--server.port", str(port),
           "--browser.gatherUsageStats", "false",
           # others may edit files while the tests run: no "source changed" reruns
           "--server.fileWatcherType", "none",
           "--server.runOnSave", "false"]
    log = home.parent / f"{home.name}-streamlit-{port}.log"
    with open(log, "wb") as out:  # a file, not a pipe nobody reads: the server never blocks on it
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    server = Server(url=f"http://127.0.0.1:{port}", home=home, proc=proc, log=log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with code {proc.returncode} before answering on {server.url}:\n"
                        f"{server.output()}", pytrace=False)
        if _healthy(server.url):
            return server
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"streamlit did not answer {server.url}/_stcore/health within {timeout:.0f} s:\n"
                        f"{server.output()}", pytrace=False)
        time.sleep(0.25)


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium_path):
    """One dashboard per test module, on its own fresh GANMM_HOME."""
    srv = start_server(tmp_path_factory.mktemp("server") / "ganmm_home")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server_factory(tmp_path_factory, chromium_path):
    """``server_factory()`` starts a fresh dashboard (fresh GANMM_HOME unless ``home=`` is given),
    ``server_factory(script="pages/x.py")`` another script; all are stopped after the test."""
    started: list[Server] = []

    def make(home: Path | None = None, script: str = "Home.py") -> Server:
        srv = start_server(home or tmp_path_factory.mktemp("server") / "ganmm_home", script=script)
        started.append(srv)
        return srv

    try:
        yield make
    finally:
        for srv in started:
            srv.stop()
