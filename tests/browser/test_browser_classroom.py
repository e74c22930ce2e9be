"""The Classroom in a real browser: step twice, see every model's picture change,
then present it in teacher mode."""

from __future__ import annotations

from browser_helpers import screenshot, wait_for_app, wait_for_charts
from playwright.sync_api import expect

# What each of the three model pictures draws, as Plotly holds it in the page: per
# trace its name and its first coordinates (points, sample clouds, ellipses) or
# its grid of cluster ids (decision regions).
_PICTURES = """() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot'))
  .slice(0, 3).map(gd => JSON.stringify(gd.data.map(t => [
      t.name, t.x ? Array.from(t.x).slice(0, 30) : null, t.z ? t.z : null])))"""


def pictures(page) -> list[str]:
    wait_for_charts(page)
    return page.evaluate(_PICTURES)


def step_to(page, main, iteration: int) -> None:
    main.get_by_role("button", name="Step", exact=True).click()
    expect(main.get_by_test_id("stMetricValue").first).to_have_text(str(iteration), timeout=120_000)
    wait_for_app(page)


def test_classroom_steps_and_every_picture_changes(server, page):
    page.goto(server.url)
    wait_for_app(page)
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Classroom").click()
    page.wait_for_url("**/Classroom")
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_role("heading", name="Classroom")).to_be_visible()
    # iteration 0 (the initial split and the GANs' pretraining) is computed in the background:
    # 5 to 7 s alone on a 2-core machine, about 15 s from the click here. It took minutes
    # while Streamlit collected garbage after every poll of the page (.streamlit/config.toml).
    expect(main.get_by_test_id("stMetricValue").first).to_have_text("0", timeout=180_000)
    wait_for_app(page)
    for title in ("GMM (EM)", "GANMM (ε-EM)", "GANMM-EM (hard EM)"):
        expect(main.get_by_text(title, exact=True).first).to_be_visible()
    start = pictures(page)
    assert len(start) == 3

    step_to(page, main, 1)
    one = pictures(page)
    step_to(page, main, 2)
    two = pictures(page)
    # the GAN mixtures retrain every step: their sample clouds and regions move each time
    for model in (1, 2):
        assert one[model] != start[model] and two[model] != one[model], f"picture {model} did not change"
    expect(main.get_by_text("E-step.").first).to_be_visible()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    screenshot(page, "classroom")

    # going back shows iteration 1's pictures again
    slider = main.get_by_role("slider", name="Go back to iteration")
    slider.focus()
    page.keyboard.press("ArrowLeft")
    expect(main.get_by_test_id("stMetricValue").first).to_have_text("1")
    wait_for_app(page)
    assert pictures(page) == one

    main.get_by_role("button", name="Teacher mode").click()
    expect(main.get_by_role("button", name="Leave teacher mode")).to_be_visible()
    wait_for_app(page)
    expect(main.get_by_role("combobox", name="Dataset")).to_have_count(0)  # settings hidden
    expect(page.locator('[data-testid="stSidebar"]')).to_be_hidden()
    screenshot(page, "classroom-teacher")
    main.get_by_role("button", name="Leave teacher mode").click()
    expect(main.get_by_role("combobox", name="Dataset")).to_be_visible()
    # the lesson survived the round trip: still three iterations computed
    expect(main.get_by_role("slider", name="Go back to iteration")).to_have_attribute("max", "2")
