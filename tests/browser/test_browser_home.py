"""The dashboard in a real browser: the home page, then the dataset preview on the Data page."""

from __future__ import annotations

import re

from browser_helpers import screenshot, wait_for_app
from playwright.sync_api import expect


def test_home_page_shows_the_method_quick_start_and_empty_run_list(server, page):
    page.goto(server.url)
    wait_for_app(page)

    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_role("heading", name="GANMM Studio")).to_be_visible()
    expect(main.get_by_text("epsilon-EM", exact=True)).to_be_visible()
    # Shown, never clicked here: it starts a real training run.
    expect(main.get_by_role("button", name="Start GANMM on mnist5k")).to_be_visible()
    expect(main.get_by_text("No runs yet")).to_be_visible()  # the server's GANMM_HOME is fresh
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    # The sidebar names the pages as the README does (the entry script's file name
    # gives the first one its name); the menu offers no developer actions, even on
    # localhost, where a teacher projects the page.
    nav = page.locator('[data-testid="stSidebar"]').get_by_role("link")
    expect(nav).to_have_text(["Home", "Data", "Train", "Compare", "Classroom"])
    expect(page.locator('[data-testid="stAppDeployButton"]')).to_have_count(0)
    screenshot(page, "home")


def test_data_page_previews_a_builtin_dataset_and_switches_it(server, page):
    page.goto(server.url)
    wait_for_app(page)
    # Through the sidebar navigation, as a user would.
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Data").click()
    page.wait_for_url("**/Data")
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_role("heading", name="Data")).to_be_visible()
    expect(main.get_by_text("5,000 rows x 784 features")).to_be_visible()

    # A Streamlit selectbox is a BaseWeb combobox: its value sits in an <input role="combobox">
    # (not in the element's text); click it, then click the option in the popup list.
    select = main.get_by_role("combobox", name="Built-in dataset")
    expect(select).to_have_value(re.compile(r"^mnist5k\b"))
    select.click()
    page.get_by_role("option", name=re.compile(r"^moons\b")).click()

    expect(select).to_have_value(re.compile(r"^moons\b"))
    expect(main.get_by_text("1,000 rows x 2 features")).to_be_visible()
    expect(main.get_by_text("5,000 rows x 784 features")).to_have_count(0)
    wait_for_app(page)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    screenshot(page, "data")


def test_the_address_keeps_the_dataset_and_back_goes_back(server, page):
    """The sidebar's links carry the dataset in use, so one Back returns to the
    previous page (a page writing the address after arriving added a history entry
    per visit), and a reload, which starts a new session, keeps the dataset."""
    from browser_helpers import choose

    page.goto(server.url)
    wait_for_app(page)
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Data").click()
    page.wait_for_url(re.compile(r"/Data$"))  # mnist5k, the default, needs no address
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    choose(main, "Built-in dataset", "digits")
    main.get_by_role("button", name="Use this dataset for new runs").click()
    expect(main.get_by_text("New runs on the Train page use this dataset")).to_be_visible()
    page.wait_for_url(re.compile(r"/Data\?data=digits$"))
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Train").click()
    page.wait_for_url(re.compile(r"/Train\?data=digits$"))
    wait_for_app(page)
    expect(main.get_by_text("Dataset digits")).to_be_visible()
    page.reload()
    wait_for_app(page)
    expect(main.get_by_text("Dataset digits")).to_be_visible()
    page.go_back()
    page.wait_for_url(re.compile(r"/Data\?data=digits$"))
    wait_for_app(page)
    expect(main.get_by_role("heading", name="Data")).to_be_visible()
    expect(main.get_by_role("combobox", name="Built-in dataset")).to_have_value(re.compile(r"^digits\b"))
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
