"""`retbench leaderboard build --html`: the static site, checked in a real headless browser.

The browser is Debian's chromium driven through chromedriver (selenium); `make test` installs
both with apt where it can. Where either is missing the browser tests skip and say why.
``RETBENCH_SCREENSHOTS=DIR`` saves a screenshot of every page of the committed records' site
(``scripts/leaderboard_screenshots.sh`` regenerates ``docs/leaderboard/``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from retbench import RunConfig, evaluate
from retbench.testing import make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,900")


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for program, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if not shutil.which(program):
            return f"{program} not found: apt-get install {package} (make test tries to)"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="retbench-chromium-")
    options.add_argument(f"--user-data-dir={profile}")  # a fresh profile: no first-run stalls
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _build(records: Path, out: Path, expected: Path) -> Path:
    from click.testing import CliRunner

    from retbench.cli import cli

    site = out / "site"
    result = CliRunner().invoke(cli, ["leaderboard", "build", "--records", str(records), "--out", str(out / "boards"),
                                      "--expected", str(expected), "--html", str(site)],
                                env={"RETBENCH_HOME": str(out / "home")})
    assert result.exit_code == 0, result.output
    assert f"site: {(site / 'index.html').resolve().as_uri()}" in result.output
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site of real runs on the sample dataset (answers and question types): retrieval
    alone, in-context readers with and without a retriever, a trained retriever whose report
    carries a loss curve (as DPR's does) and a translator-style ``curves`` mapping."""
    from retbench.engine.cache import Cache

    root = tmp_path_factory.mktemp("site")
    folder = root / "records"
    pm = make_plugin_manager()
    configs = [RunConfig(dataset="sample", retriever="counting"),
               RunConfig(dataset="sample", retriever="reverse"),
               RunConfig(dataset="sample", retriever="counting", reader="echo"),
               RunConfig(dataset="sample", retriever="counting", reader="echo", reader_args={"k": 3}),
               RunConfig(dataset="sample", retriever="counting", fit_split="train", reader="echo")]
    for config in configs:
        evaluate(config, pm=pm, cache=Cache(root / "home"), records_dir=folder)
    trained = next(p for p in folder.rglob("*.json") if not p.name.endswith("per_query.json")
                   and json.loads(p.read_text())["config"]["fit_split"])
    record = json.loads(trained.read_text())
    record["training"]["fit"]["loss_curve"] = [2.0 / (step + 1) + 0.1 for step in range(40)]
    record["training"]["fit-injector"] = {"curves": {"lm": [3.0 - 0.02 * s for s in range(30)],
                                                     "mse": [0.001 * s for s in range(30)]}}
    trained.write_text(json.dumps(record))
    return _build(folder, root, root / "none.toml")


def test_pages_are_self_contained(site):
    """Nothing is fetched at view time: no external source, a policy that forbids any, the
    figures inline SVG."""
    assert sorted(p.name for p in site.iterdir()) == ["index.html", "sample.html"]
    page = (site / "sample.html").read_text()
    assert "default-src 'none'" in page
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(link.startswith("#") or link.endswith(".html") for link in links)
    assert page.count("<svg") == 5  # quality-cost, per type (answers, retrieval), two training stages
    assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=", page)


def test_pareto_front_keeps_the_rows_nothing_beats():
    from retbench.reporting.site import pareto_front

    points = [(0, 1.0, 0.5), (1, 2.0, 0.4), (2, 3.0, 0.7), (3, 0.5, 0.2), (4, 3.0, 0.6), (5, 5.0, 0.7)]
    assert pareto_front(points) == [3, 0, 2]


def test_training_curves_are_found_by_convention():
    from retbench.reporting.site import training_curves

    report = {"loss_curve": [3, 2.5], "steps": 2, "targets": ["a", "b"], "negatives_log": [{"step": 0}],
              "curves": {"lm": [1.0, 0.5], "kl": [0.1, 0.2]}, "ranks": [1, 2], "flags": [True, False]}
    assert training_curves(report) == {"loss": [3.0, 2.5], "lm": [1.0, 0.5], "kl": [0.1, 0.2]}


def test_importing_retbench_and_listing_plugins_leave_matplotlib_alone():
    code = ("import sys, retbench\nfrom retbench.cli import main\ntry:\n    main(['list'])\n"
            "except SystemExit:\n    pass\nprint('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"


def _column(driver, table: str, key: str) -> list[str]:
    return driver.execute_script(
        "var t = document.querySelector(arguments[0]);"
        "var col = Array.prototype.indexOf.call(t.tHead.rows[0].cells,"
        " t.querySelector('th[data-key=\"' + arguments[1] + '\"]'));"
        "return Array.prototype.map.call(t.tBodies[0].rows, function (r) {"
        " return r.cells[col].getAttribute('data-sort'); });", table, key)


def _click_header(driver, table: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'{table} th[data-key="{key}"]').click()


def _numbers(values: list[str]) -> list[float]:
    return [float(v) for v in values if v != ""]


def _check_page(driver, *, plots: set[str]) -> None:
    """Tables present, every expected kind of plot drawn with marks, no script error, nothing
    fetched, and the main table sorting by a metric, by cost and back by rank."""
    from selenium.webdriver.common.by import By

    assert driver.find_elements(By.CSS_SELECTOR, "#table-0 tbody tr")
    drawn = driver.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('figure.plot'), function (f) {"
        " var box = f.querySelector('svg').getBoundingClientRect();"
        " return [f.getAttribute('data-plot'), box.width, box.height,"
        " f.querySelectorAll('svg path, svg use, svg rect').length]; });")
    assert plots <= {kind for kind, *_ in drawn}
    assert all(width > 200 and height > 100 and marks > 10 for _, width, height, marks in drawn)
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(function (e) "
                                    "{ return e.name; });")
    assert fetched == []
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []

    keys = driver.execute_script("return Array.prototype.map.call("
                                 "document.querySelectorAll('#table-0 th'), function (h) { return h.dataset.key; });")
    metric = keys[4]
    ranks = _numbers(_column(driver, "#table-0", "#"))
    assert ranks == sorted(ranks)
    _click_header(driver, "#table-0", metric)  # first click: best first
    first = _column(driver, "#table-0", metric)
    assert _numbers(first) == sorted(_numbers(first), reverse=True)
    assert "" not in first or first.index("") >= len(_numbers(first))  # blanks last
    _click_header(driver, "#table-0", metric)
    again = _column(driver, "#table-0", metric)
    assert _numbers(again) == sorted(_numbers(first))
    assert driver.find_element(By.CSS_SELECTOR, f'#table-0 th[data-key="{metric}"]').get_attribute(
        "aria-sort") == "ascending"
    _click_header(driver, "#table-0", "system")
    labels = [v.lower() for v in _column(driver, "#table-0", "system")]
    assert labels == sorted(labels)
    _click_header(driver, "#table-0", "#")
    assert _numbers(_column(driver, "#table-0", "#")) == ranks


def test_the_site_renders_and_sorts_in_a_browser(browser, site):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    assert browser.find_elements(By.CSS_SELECTOR, "#table-0 tbody tr")[0].get_attribute("data-row") == "sample"
    browser.find_element(By.LINK_TEXT, "sample").click()
    assert browser.title.startswith("sample")
    _check_page(browser, plots={"quality-cost", "per-type", "training"})
    text = [f.text for f in browser.find_elements(By.CSS_SELECTOR, 'figure[data-plot="training"] svg')]
    assert len(text) == 2 and "#3 counting [trained" in text[0] and "lm" in text[1] and "mse" in text[1]
    browser.find_element(By.CSS_SELECTOR, "#table-0 tbody tr a").click()  # the label leads to its command
    assert browser.execute_script("return location.hash") == "#run-1"


def test_the_committed_records_site(browser, tmp_path):
    """Every page of the committed leaderboards' site renders its tables and plots and sorts;
    with RETBENCH_SCREENSHOTS set, each page's screenshot is saved there."""
    from selenium.webdriver.common.by import By

    leaderboards = ROOT / "leaderboards"
    site = _build(leaderboards / "records", tmp_path, leaderboards / "expected.toml")
    pages = sorted(p.stem for p in site.glob("*.html"))
    assert "index" in pages and len(pages) > 1
    shots = os.environ.get("RETBENCH_SCREENSHOTS")
    for page in pages:
        browser.set_window_size(1280, 900)
        browser.get((site / f"{page}.html").as_uri())
        if page == "index":
            assert len(browser.find_elements(By.CSS_SELECTOR, "#table-0 tbody tr")) == len(pages) - 1
        else:
            kinds = {"quality-cost"} | ({"training"} if "Training curves" in browser.page_source else set())
            _check_page(browser, plots=kinds)
            browser.get((site / f"{page}.html").as_uri())  # unsorted again for the picture
        if shots:
            _screenshot(browser, Path(shots) / f"{page}.png")


def _screenshot(driver, path: Path, width: int = 1280, scale: float = 0.6) -> None:
    """The whole page, scaled down and reduced to a palette: a small PNG."""
    import io

    from PIL import Image

    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(height + 150, 12000))
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=128, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
