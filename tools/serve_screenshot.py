"""Take a screenshot of the retrieval page (`saeh serve`) in headless Chromium: the README's picture.

    python tools/serve_screenshot.py OUT.png [--query ROW] [--top-k K] -- SOURCE [SOURCE ...] [serve flags]

Everything after `--` is `saeh serve`'s command line (sources and data flags), e.g.

    python tools/serve_screenshot.py image/serve_cifar10.png --query 7 -- \\
        pretrained/saeh_cifar10_32bits pretrained/saeh-minus_cifar10_32bits --data-dir ~/data/cifar10

It serves the page with uvicorn on a free local port, opens it, asks for query ROW of the query set, waits until
every result image of every column has loaded, writes the screenshot (to a temporary name, then renamed) and prints
how long the page took to answer. Needs the `test` extra (Selenium) and Chromium with chromedriver
(`apt-get install chromium chromium-driver`).
"""

import argparse
import os
import shutil
import socket
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
LOADED_IMAGES = """return [...document.querySelectorAll(arguments[0])]
                   .map(image => image.complete && image.naturalWidth > 0);"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_in_thread(serve_argv):
    """(address, server) of the page of `serve_argv`, served by uvicorn in a daemon thread."""
    import uvicorn

    from saeh.cli.serve import build_app, build_parser

    app = build_app(build_parser().parse_args(serve_argv))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("uvicorn stopped before the page was served")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/", server


def chromium(width, height):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if browser is None or shutil.which("chromedriver") is None:
        raise SystemExit("needs Chromium and chromedriver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))


def all_results_loaded(driver, columns):
    for column in range(columns):
        loaded = driver.execute_script(LOADED_IMAGES, f"#column-{column} .grid img")
        if not loaded or not all(loaded):
            return False
    return True


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: serve_screenshot.py OUT.png [--query ROW] [--top-k K] -- SOURCE ... [serve flags]")
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("--query", type=int, default=0, help="row of the query set to show (default 0)")
    parser.add_argument("--top-k", type=int, default=16, help="results per model (default 16)")
    parser.add_argument("--size", type=int, nargs=2, default=(1400, 1100), metavar=("WIDTH", "HEIGHT"))
    args = parser.parse_args(argv[:split])
    serve_argv = [*argv[split + 1:], "--top-k", str(args.top_k)]
    sys.path.insert(0, ROOT)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from saeh.cli import quiet_tensorflow_start

    started = time.time()
    with quiet_tensorflow_start():
        address, server = serve_in_thread(serve_argv)
    print(f"page served at {address} after {time.time() - started:.1f} s (models and database codes loaded)")
    driver = chromium(*args.size)
    try:
        driver.get(address)
        columns = len(driver.find_elements(By.CSS_SELECTOR, "[id^=column-]"))
        row = driver.find_element(By.ID, "row")
        row.clear()
        row.send_keys(str(args.query))
        asked = time.time()
        driver.find_element(By.ID, "go-row").click()
        WebDriverWait(driver, 60).until(lambda d: all_results_loaded(d, columns)
                                        and f"query {args.query} [" in d.find_element(By.ID, "query").text,
                                        message="waiting for the results of the query")
        print(f"query {args.query}: {columns} columns of results shown {time.time() - asked:.2f} s after asking")
        temporary = os.path.join(os.path.dirname(os.path.abspath(args.out)), f".tmp-{os.path.basename(args.out)}")
        driver.save_screenshot(temporary)
        os.replace(temporary, args.out)
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    main()
