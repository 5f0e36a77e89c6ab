"""docs/report.png: a real run's report.html, rendered by headless Chromium.

Trains on the clothing reviews (text + categories + numbers → Recommended IND) with a
seeded 20 % test split, adds robustness (`Predictor.robustness`) and modality
importance (`Predictor.explain`) measured on the test rows, rebuilds the report and
screenshots the whole page (Debian packages chromium and chromium-driver; selenium).

    .venv/bin/python -m bench.report_screenshot [--epochs 4] [--out docs/report.png]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from bench.common import SHARED_DATA
from plait.report import write_report
from plait.runfolder import save_result
from plait.train import fit

TABLE = SHARED_DATA / "clothing-reviews" / "reviews.csv"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def screenshot(page: Path, png: Path, width: int = 1100) -> Image.Image:
    """The whole page (not just the window) as rendered by Chromium at `width` CSS pixels."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        browser.get(page.resolve().as_uri())
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(width, height + 120)  # the window chrome takes some of it
        browser.save_screenshot(str(png))
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return Image.open(png)


def shrink(image: Image.Image, png: Path, width: int, colours: int = 128) -> None:
    """Scale to `width` pixels and keep a small palette, so the file stays small."""
    image = image.convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colours, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--width", type=int, default=700, help="Width of the PNG in pixels.")
    parser.add_argument("--out", type=Path, default=Path("docs/report.png"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    table = pd.read_csv(TABLE)
    rng = np.random.default_rng(0)
    table["split"] = np.where(rng.random(len(table)) < 0.2, "test", "train")
    table.to_csv(folder / "reviews.csv", index=False)
    test = table[table["split"] == "test"]
    run = folder / "run"
    predictor = fit(
        folder / "reviews.csv", label="Recommended IND", out=run, epochs=args.epochs, verbose=False
    )
    save_result(run, "robustness.json", predictor.robustness(test).to_dict())
    save_result(run, "importance.json", predictor.explain(test).to_dict())
    write_report(run)
    print(f"report: {run / 'report.html'}")
    full = screenshot(run / "report.html", folder / "full.png")
    shrink(full, args.out, args.width)
    print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} KB (full page {full.width}×{full.height})")


if __name__ == "__main__":
    main()
