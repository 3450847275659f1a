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
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def all_results_loaded(driver, columns):
    from saeh.serve.local import LOADED_IMAGES

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
    from saeh.cli.serve import build_app, build_parser
    from saeh.errors import SaehError
    from saeh.serve.local import LocalServer, headless_chromium

    started = time.time()
    try:
        with quiet_tensorflow_start():
            server = LocalServer(build_app(build_parser().parse_args(serve_argv)))
        address = server.address
        print(f"page served at {address} after {time.time() - started:.1f} s (models and database codes loaded)")
        driver = headless_chromium(*args.size, page_load_timeout=60)
    except SaehError as error:
        raise SystemExit(str(error))
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
        server.stop()


if __name__ == "__main__":
    main()
