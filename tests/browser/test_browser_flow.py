"""The whole user flow in a real browser: upload a CSV with labels, train GANMM on a
2-D set and watch it live, stop it, train a second model, compare both."""

from __future__ import annotations

import re

from browser_helpers import choose, screenshot, wait_for_app, wait_for_charts
from playwright.sync_api import expect

ITERATION = re.compile(r"iteration (\d+) of at most")


def open_page(page, server, name: str) -> None:
    """Go to a page through the sidebar, in the same browser session (a page.goto
    would open a new session and lose the session's dataset choice)."""
    if not page.url.startswith(server.url):
        page.goto(server.url)
        wait_for_app(page)
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name=name).click()
    page.wait_for_url(re.compile(rf"/{name}(\?|$)"))  # the address may name the dataset in use
    wait_for_app(page)


def wait_quiet(page, seconds: float = 3.0, timeout: float = 120.0) -> None:
    """Wait until no script or fragment run has started for ``seconds`` (the live
    view refreshes every second while anything it shows is still moving)."""
    import time

    end = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < end:
        state = page.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")
        if state != "notRunning":
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= seconds:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the page kept rerunning for {timeout:.0f} s")


def click_until(main, button: str, shown: re.Pattern, tries: int = 6) -> None:
    """Click ``button`` until ``shown`` appears. The live view redraws its
    fragment every second while a run trains, so a click can wait for a button
    that keeps moving (Playwright wants it stable) or land on one just
    replaced; a user clicks again, and so does this."""
    from playwright.sync_api import Error as PlaywrightError

    for _ in range(tries):
        try:
            main.get_by_role("button", name=button, exact=True).click(timeout=10_000)
            expect(main.get_by_text(shown)).to_be_visible(timeout=15_000)
            return
        except (AssertionError, PlaywrightError):
            continue
    expect(main.get_by_text(shown)).to_be_visible(timeout=15_000)


def iteration_shown(main) -> int:
    text = main.get_by_text(ITERATION).first.inner_text(timeout=240_000)
    return int(ITERATION.search(text).group(1))


def test_upload_train_watch_stop_and_compare(server, page, tmp_path):
    # ---- Data: upload a CSV and pick its label column ------------------------------
    csv = tmp_path / "flowers.csv"
    rows = [f"{x:.2f},{y:.2f},{'ab'[i % 2]}" for i, (x, y) in
            enumerate((i % 7 + (i % 2) * 10, i % 5) for i in range(40))]
    csv.write_text("width,height,species\n" + "\n".join(rows) + "\n")
    numbers = tmp_path / "numbers.csv"  # first a file without labels, as a user tries one
    numbers.write_text("a,b\n" + "\n".join(f"{i},{i % 3}" for i in range(10)) + "\n")
    open_page(page, server, "Data")
    main = page.locator('[data-testid="stMain"]')
    main.get_by_text("Upload", exact=True).click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(numbers))
    expect(main.get_by_role("combobox", name="Label column")).to_have_value(re.compile(r"^\(no labels\)"))
    expect(main.get_by_text("10 rows x 2 features")).to_be_visible()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(csv))
    # the one column that is not numbers is offered as the label column already
    expect(main.get_by_role("combobox", name="Label column")).to_have_value(re.compile(r"^species\b"))
    expect(main.get_by_text("40 rows x 2 features, kind 2d, 2 classes")).to_be_visible()
    main.get_by_role("button", name="Use this dataset for new runs").click()
    expect(main.get_by_text("New runs on the Train page use this dataset")).to_be_visible()
    # a reload starts a new session: the address brings back the file and its labels
    page.wait_for_url(re.compile(r"[?&]label=species"))
    page.reload()
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_text("40 rows x 2 features, kind 2d, 2 classes")).to_be_visible()
    expect(main.get_by_role("combobox", name="Label column")).to_have_value(re.compile(r"^species\b"))
    expect(main.get_by_text("New runs on the Train page use this dataset")).to_be_visible()

    # ---- Data: back to a built-in 2-D set for training -----------------------------
    main.get_by_text("Built-in", exact=True).click()
    choose(main, "Built-in dataset", "moons")
    main.get_by_role("button", name="Use this dataset for new runs").click()
    expect(main.get_by_text("New runs on the Train page use this dataset")).to_be_visible()

    # ---- Train: GANMM on moons, watched live, then stopped -------------------------
    open_page(page, server, "Train")
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_text("Dataset moons")).to_be_visible()
    main.get_by_label("Iterations (cap)").fill("20000")
    main.get_by_label("Run name (optional)").fill("ganmm moons")
    main.get_by_text("Stop when settled", exact=True).click()  # still training when Stop comes
    expect(main.get_by_role("checkbox", name="Stop when settled")).not_to_be_checked()
    main.get_by_role("button", name="Start training on moons").click()
    first = iteration_shown(main)
    sizes_chart = main.locator('[data-testid="stPlotlyChart"]').first
    expect(sizes_chart).to_be_visible(timeout=240_000)
    wait_for_charts(page)
    before = sizes_chart.inner_html()
    page.wait_for_function(  # the live view moves on by itself, without a click
        """(n) => { const m = document.body.innerText.match(/iteration (\\d+) of at most/);
                    return m && Number(m[1]) >= n; }""", arg=first + 2, timeout=90_000)
    assert iteration_shown(main) >= first + 2
    # the sizes-per-iteration chart grows too (it may draw a moment after the caption)
    for _ in range(60):
        wait_for_charts(page)
        if sizes_chart.inner_html() != before:
            break
        page.wait_for_timeout(500)
    assert sizes_chart.inner_html() != before
    assert main.locator('[data-testid="stPlotlyChart"]').count() >= 6
    # paused and resumed from the home page in another tab: this page's run picker
    # follows (only the live view redrew, and the picker kept saying "running")
    other = page.context.new_page()
    other.goto(server.url)
    wait_for_app(other)
    home = other.locator('[data-testid="stMain"]')
    picker = main.get_by_role("combobox", name="Run")
    home.get_by_role("button", name="Pause", exact=True).click()
    expect(picker).to_have_value(re.compile(r"^ganmm moons · paused\b"), timeout=20_000)
    home.get_by_role("button", name="Resume", exact=True).click()
    expect(picker).to_have_value(re.compile(r"^ganmm moons · running\b"), timeout=20_000)
    other.close()
    click_until(main, "Stop", re.compile(r"^stopped · iteration"))
    stopped_at = iteration_shown(main)
    assert stopped_at < 20000

    # ---- Train: a second run, k-means, to the end ----------------------------------
    wait_quiet(page)  # the run's end reruns the page once: let that settle first
    # the run picker says what became of the run, as the view does
    expect(main.get_by_role("combobox", name="Run")).to_have_value(re.compile(r"^ganmm moons · stopped\b"))
    screenshot(page, "train")  # a still page: a live one may be caught mid-redraw
    if not main.get_by_role("combobox", name="Model").is_visible():
        main.get_by_text("New run", exact=True).click()  # the form folds away once runs exist
    choose(main, "Model", "k-means")
    main.get_by_label("Run name (optional)").fill("")
    main.get_by_role("button", name="Start training on moons").click()
    expect(main.get_by_text(re.compile(r"^done · iteration"))).to_be_visible(timeout=60_000)

    # ---- Compare: both runs side by side -------------------------------------------
    open_page(page, server, "Compare")
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_role("heading", name="Summary")).to_be_visible()
    expect(main.get_by_text("ganmm moons").first).to_be_visible()
    expect(main.get_by_text("kmeans on moons").first).to_be_visible()
    assert main.locator('[data-testid="stPlotlyChart"]').count() >= 6
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    wait_for_charts(page)
    screenshot(page, "compare")

    # ---- Back: one press returns to Train, on the run it showed --------------------
    page.go_back()
    page.wait_for_url(re.compile(r"/Train\?"))
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_role("combobox", name="Run")).to_have_value(re.compile(r"^kmeans on moons\b"))
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
