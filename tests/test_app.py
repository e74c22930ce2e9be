"""The home page under Streamlit's AppTest."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def test_home_page_shows_the_method_and_a_dataset_preview():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "GANMM Studio"
    assert "epsilon-EM" in at.markdown[0].value
    assert at.selectbox[0].value == "mnist5k"
    assert any("5,000 rows" in m.value for m in at.markdown)
    at.selectbox[0].select("moons").run()
    assert not at.exception
    assert any("1,000 rows x 2 features" in m.value for m in at.markdown)
