"""Headless Chromium (Debian's chromium and chromium-driver) driven by Selenium, for the
page's tests and benchmarks."""

from __future__ import annotations

import shutil
import tempfile

__all__ = ["CHROMIUM_REASON", "chromium_missing", "open_browser", "screen_size"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_REASON = "needs Debian's chromium and chromium-driver (apt install chromium chromium-driver) and selenium"


def chromium_missing() -> bool:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return True
    return shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None


def open_browser(width: int = 1280, height: int = 800):
    """A new headless Chromium with an empty profile (a cold start: nothing cached)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="ps-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
                 f"--window-size={width},{height}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.profile_dir = profile
    return driver


def screen_size(driver, width: int, height: int, mobile: bool = False) -> None:
    """The page's viewport exactly ``width`` x ``height`` CSS pixels at scale 1 (a
    screenshot then has that size)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    if mobile:
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
