"""The report in a real browser: headless Chromium loads it from disk, every image
decodes, the console stays clean, and a screenshot is taken. Skips without Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from plait.report import write_report
from tests.report.test_report import IMPORTANCE, ROBUSTNESS

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium(profile: Path):
    """A headless Chromium driven by chromedriver, with a fresh profile; skips when absent."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("chromium not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver))


@pytest.mark.slow
def test_report_renders_in_chromium(run_copy: Path, tmp_path: Path):
    (run_copy / "importance.json").write_text(json.dumps(IMPORTANCE))
    (run_copy / "robustness.json").write_text(json.dumps(ROBUSTNESS))
    page = write_report(run_copy)
    browser = chromium(tmp_path / "profile")
    try:
        browser.get(page.resolve().as_uri())
        assert browser.title.startswith("Plait run report")
        broken = browser.execute_script(
            "return Array.from(document.images)"
            ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt)"
        )
        count = browser.execute_script("return document.images.length")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        shot = tmp_path / "report.png"
        assert browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    assert count >= 11 and broken == []
    assert errors == []
    image = Image.open(shot).convert("L")
    assert image.size[0] >= 1000
    assert max(ImageStat.Stat(image).stddev) > 10  # text and plots, not a blank page
