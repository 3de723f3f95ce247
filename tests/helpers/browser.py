"""Open a page in headless Chromium (Debian's chromium and chromium-driver) and report what
it loaded: images, console messages and every network request."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1600",
)


@dataclass
class PageVisit:
    images: list[dict]
    console: list[dict]
    requests: list[str]


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"none of {names} is installed (Debian packages chromium, chromium-driver; "
        "`make test` as root installs them, .ci/system-packages.sh)"
    )


def visit(page: Path, screenshot: Path) -> PageVisit:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(_binary("chromedriver")), options=options)
    try:
        driver.get(page.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => "
            "({alt: i.alt, complete: i.complete, width: i.naturalWidth}))"
        )
        console = driver.get_log("browser")
        requests = [
            message["params"]["request"]["url"]
            for message in (
                json.loads(e["message"])["message"] for e in driver.get_log("performance")
            )
            if message["method"] == "Network.requestWillBeSent"
        ]
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(int(height), 12000))
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    return PageVisit(images, console, requests)
