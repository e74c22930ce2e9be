"""Helpers for the browser tests: wait for Streamlit to finish a run, take screenshots.

Import them in a test module with ``from browser_helpers import screenshot, wait_for_app``
(tests/browser/conftest.py puts this folder on sys.path).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "assets" / "screenshots"

# Streamlit (1.67) marks its root element with the script and connection state:
#   <div data-testid="stApp" data-test-script-state="initial|running|notRunning|rerunRequested|..."
#        data-test-connection-state="CONNECTED|...">
# and shows [data-testid="stStatusWidget"] ("Running...", a running-man icon) while a run is on.
_APP_IDLE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  return !(status && /Running/i.test(status.innerText || ''))
      && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
      && !document.querySelector('[data-testid="stStatusWidgetRunningManIcon"]');
}"""


def wait_for_app(page, timeout: float = 60_000) -> None:
    """Wait until the app is connected and its script run has finished (and no "Running..." shows).

    Right after a click the new run may not have started yet, so after an interaction
    prefer waiting for the expected content (``expect(locator).to_be_visible()``),
    then call this to let the run settle.
    """
    page.wait_for_selector('[data-testid="stApp"]', state="attached", timeout=timeout)
    page.wait_for_function(_APP_IDLE, timeout=timeout, polling=100)


# Charts and images draw after the script run ends (Plotly's bundle is lazy-loaded; its
# Scattergl traces draw on a WebGL canvas), so a screenshot also waits for them.
_CHARTS_DRAWN = """() => {
  const all = (sel) => Array.from(document.querySelectorAll(sel));
  const plotly = all('[data-testid="stPlotlyChart"]').every(
      el => el.querySelector('.js-plotly-plot .main-svg'));
  const vega = all('[data-testid="stVegaLiteChart"]').every(el => el.querySelector('canvas, svg'));
  const images = all('img').every(img => img.complete && img.naturalWidth > 0);
  return plotly && vega && images;
}"""


def choose(main, label: str, option: str) -> None:
    """Pick an option of a selectbox; a rerun landing at the click can close the
    popup, so open it again (up to three times) until the option shows."""
    from playwright.sync_api import expect

    box = main.get_by_role("combobox", name=label)
    wanted = main.page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}\b")).first
    for attempt in range(3):
        box.click()
        try:
            wanted.click(timeout=5_000)
        except Exception:
            if attempt == 2:
                raise
            main.page.keyboard.press("Escape")
        else:
            expect(box).to_have_value(re.compile(rf"^{re.escape(option)}\b"))
            return


def wait_for_charts(page, timeout: float = 30_000) -> None:
    """Wait until every Plotly / Vega-Lite chart has drawn and every image has loaded."""
    page.wait_for_function(_CHARTS_DRAWN, timeout=timeout, polling=100)
    # two animation frames: let the last layout and WebGL draw reach the screen
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def screenshot(page, name: str) -> Path | None:
    """Save a full-page PNG as assets/screenshots/<name>.png, only when GANMM_SCREENSHOTS=1.

    Otherwise a no-op (returns None), so test runs and CI leave the tree clean.
    """
    if os.environ.get("GANMM_SCREENSHOTS") != "1":
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    wait_for_app(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # no focus ring
    page.mouse.move(0, 0)  # no hover effects (chart toolbars, tooltips)
    # Streamlit scrolls inside its own container, not the document, so full_page=True alone
    # captures one viewport: grow the viewport to the content's height for the shot.
    size = page.viewport_size
    height = page.evaluate(_CONTENT_HEIGHT)
    try:
        if size and height > size["height"]:
            page.set_viewport_size({"width": size["width"], "height": int(height)})
            wait_for_app(page)
        wait_for_charts(page)
        page.screenshot(path=str(path), full_page=True, animations="disabled")
    finally:
        if size:
            page.set_viewport_size(size)
    return path


_CONTENT_HEIGHT = """() => {
  const sel = ['[data-testid="stAppViewContainer"]', '[data-testid="stMain"]',
               '[data-testid="stMainBlockContainer"]', '[data-testid="stSidebarContent"]'];
  let h = document.documentElement.scrollHeight;
  for (const s of sel) for (const el of document.querySelectorAll(s)) h = Math.max(h, el.scrollHeight);
  return Math.ceil(h);
}"""
