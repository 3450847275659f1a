"""The page on this machine, for the screenshot tool (tools/serve_screenshot.py) and the browser test
(tests/test_serve_browser.py): served by uvicorn on a free local port in a daemon thread, and viewed in headless
Chromium through Selenium (the `test` extra; Chromium and chromedriver from the distribution:
`apt-get install chromium chromium-driver`, which work offline)."""

import shutil
import socket
import threading
import time

from saeh.errors import SaehError

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# JavaScript for `driver.execute_script(LOADED_IMAGES, css_selector)`: for each image the selector matches, whether it
# finished loading an actual picture.
LOADED_IMAGES = """return [...document.querySelectorAll(arguments[0])]
                   .map(image => image.complete && image.naturalWidth > 0);"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalServer:
    """`app` (an ASGI app, e.g. `saeh.serve.app.build_app`'s) served by uvicorn at `address` in a daemon thread;
    `stop()` ends it. Raises SaehError when uvicorn has not started within `timeout` seconds."""

    def __init__(self, app, timeout=30.0):
        import uvicorn

        port = free_port()
        self.address = f"http://127.0.0.1:{port}/"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise SaehError(f"uvicorn did not start the page within {timeout:g} s")
            time.sleep(0.05)

    def stop(self):
        self._server.should_exit = True
        self._thread.join(timeout=10)


def missing_browser():
    """Why headless Chromium cannot be driven here (a sentence with the command that fixes it), or None."""
    import importlib.util

    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed: pip install -e \".[test]\""
    if not any(shutil.which(name) for name in BROWSERS):
        return "no Chromium found: apt-get install chromium chromium-driver"
    if not shutil.which("chromedriver"):
        return "no chromedriver found: apt-get install chromium-driver"
    return None


def headless_chromium(width=1400, height=1000, page_load_timeout=30):
    """A Selenium driver of headless Chromium with a `width` x `height` window; the caller quits it. Raises SaehError
    (saying what to install) where Chromium or chromedriver is missing."""
    reason = missing_browser()
    if reason is not None:
        raise SaehError(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(name) for name in BROWSERS if shutil.which(name))
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    driver.set_page_load_timeout(page_load_timeout)
    return driver
