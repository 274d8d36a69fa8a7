"""A sweep as a person sees it in MLflow's UI: headless Chromium on `sweeplab-tools server`.

The runs table is MLflow's React app; these tests open the URL sweeplab prints, find the
sweep's parent row, expand it and read the metric column, with Playwright driving the
system's Chromium (Debian's `chromium`). Without Playwright or Chromium they skip, saying
what to install; `make test-all` installs both and does not allow skipping.
"""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import REQUIRE_EXTRAS, sweeplab

# Every test here starts programs (a server, a browser): the end-to-end tier. They look at
# the session's tracking server, so one worker runs them with the other tests that use it.
pytestmark = [pytest.mark.process, pytest.mark.xdist_group("mlflow_server")]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a headless browser as root on a machine without a network: no sandbox (root),
# and none of Chromium's background connections, which a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# ag-grid, as MLflow 3.17's runs table uses it: the pinned left part holds the run names
# (and the +/- button that expands a parent), the centre part the other columns.
LEFT = ".ag-pinned-left-cols-container"
CENTER = ".ag-center-cols-container"
EXPANDER = 'button[data-component-id$="runnamecellrenderer.tsx_46"]'


def _need_browser() -> None:
    missing = None
    if importlib.util.find_spec("playwright") is None:
        missing = "Playwright is not installed (make install EXTRAS=ui)"
    elif CHROMIUM is None:
        missing = "Chromium is not installed (Debian: apt-get install chromium)"
    if missing and REQUIRE_EXTRAS:
        pytest.fail(f"{missing}; SWEEPLAB_REQUIRE_CLUSTER_TESTS=1 does not allow skipping")
    if missing:
        pytest.skip(missing)


@pytest.fixture(scope="session")
def shown_sweep(mlflow_server: tuple[str, Path]) -> dict:
    """A real 2x2 sweep into the local store a running `sweeplab-tools server` serves, as a
    user sweeps beside `make server` (in this process: what it logs, not how)."""
    _need_browser()
    uri, root = mlflow_server
    # An experiment of its own: other tests log into this server's store too.
    done = sweeplab("-m", "model.max_depth=3,6", "model.n_estimators=20,40",
                    "experiment.name=ui_sweep", cwd=root, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (url,) = re.findall(r"http://127\.0\.0\.1:8080/\S+", done.stdout)
    client = MlflowClient(f"sqlite:///{root}/outputs/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("ui_sweep").experiment_id])
    base = uri.removeprefix("http://")
    return {"url": url.replace("127.0.0.1:8080", base), "runs": runs, "base": base}


def _browser_page(playwright, metric: str, experiment_id: str):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context = browser.new_context(viewport={"width": 1800, "height": 1000})
    # As a user who picked the metric in the table's "Columns" menu (MLflow keeps that in
    # the browser), with the assistant panel, which opens on a first visit, closed.
    state = {
        "selectedColumns": ["attributes.`Source`", "attributes.`Models`", f"metrics.`{metric}`"]
    }
    key = f'MLflowLocalStorage-1.1-ExperimentPage-["{experiment_id}"]-ReactComponentState'
    context.add_init_script(
        f"localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(state))});"
        "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
        "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
    )
    return browser, context.new_page()


def test_the_printed_url_shows_the_parent_its_children_and_their_metric(shown_sweep):
    from playwright.sync_api import sync_playwright

    runs = shown_sweep["runs"]
    (parent,) = [r for r in runs if r.data.tags.get("sweeplab.sweep") == "true"]
    children = [r for r in runs if r is not parent]
    with sync_playwright() as playwright:
        browser, page = _browser_page(playwright, "rmse", parent.info.experiment_id)
        try:
            page.goto(shown_sweep["url"])
            rows = page.locator(f"{LEFT} .ag-row")
            rows.first.wait_for(timeout=60_000)
            # The model-training view: its sidebar, not the GenAI one's "No data available".
            assert "No data available" not in page.content()
            # Before expanding: one row, the sweep's parent, named by what it swept.
            assert rows.count() == 1
            row = page.locator(f'{LEFT} .ag-row[row-id="{parent.info.run_id}"]')
            assert "max_depth (md) x n_estimators (ne): 4 jobs of random_forest" in row.inner_text()
            row.locator(EXPANDER).click()
            page.wait_for_function(
                f"document.querySelectorAll('{LEFT} .ag-row').length == 5", timeout=20_000
            )
            shown = {
                run.info.run_id: page.locator(
                    f'{CENTER} .ag-row[row-id="{run.info.run_id}"] [col-id="metrics.`rmse`"]'
                )
                .inner_text()
                .strip()
                for run in runs
            }
            names = {r.get_attribute("row-id"): r.inner_text().strip() for r in rows.all()}
        finally:
            browser.close()
    # Each child by its swept values, with its rmse; the parent with the best child's. The
    # name column shows about 20 characters: they tell the children apart.
    assert len({child.info.run_name[:20] for child in children}) == len(children)
    for child in children:
        assert child.info.run_name in names[child.info.run_id]
        assert float(shown[child.info.run_id]) == pytest.approx(child.data.metrics["rmse"])
    best = min(child.data.metrics["rmse"] for child in children)
    assert float(shown[parent.info.run_id]) == pytest.approx(best)


def test_the_parent_run_page_reads_as_a_training_run(shown_sweep):
    from playwright.sync_api import sync_playwright

    (parent,) = [r for r in shown_sweep["runs"] if r.data.tags.get("sweeplab.sweep") == "true"]
    experiment_id = parent.info.experiment_id
    # The run's page as a fresh browser opens it, without the view in the URL: MLflow files
    # a run with no model under "Evaluations"; the parent carries the best model.
    url = f"http://{shown_sweep['base']}/#/experiments/{experiment_id}/runs/{parent.info.run_id}"
    with sync_playwright() as playwright:
        browser, page = _browser_page(playwright, "rmse", experiment_id)
        try:
            page.goto(url)
            page.get_by_text(
                "max_depth (md) x n_estimators (ne): 4 jobs of random_forest"
            ).first.wait_for(timeout=60_000)
            page.get_by_text("Logged models").first.wait_for(timeout=20_000)
            text = page.inner_text("body")
        finally:
            browser.close()
    assert "Evaluations" not in text
    assert "Sweep: 4 finished, 0 failed, ranked by rmse (minimize)." in text
