"""JupyterLab as a student uses it: the environment's settings and contents manager, and a real
browser (Debian's headless chromium, driven by Playwright) that opens a notebook's ``.py``,
switches its parameters to ``params/tiny.yaml``, runs every cell and checks what it shows.

Set ``PARTNB_LAB_SCREENSHOTS=<dir>`` to keep screenshots of the browser test.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from conftest import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: no sandbox (root in CI), nothing fetched in the background, a fresh profile per run
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
NOTEBOOK = "03_attention_distributions"  # ~30 s on tiny, six figures, progress bars
JUPYTER = Path(sys.executable).parent / "jupyter"


def _copy_notebooks(root: Path) -> None:
    (root / "notebooks").mkdir(parents=True)
    for path in (REPO / "notebooks").glob("[0-9][0-9]_*"):
        if path.suffix in (".py", ".ipynb"):
            shutil.copy2(path, root / "notebooks" / path.name)
    shutil.copy2(REPO / "jupytext.toml", root / "jupytext.toml")


# -- the environment (no browser) ---------------------------------------------------------------

def test_configure_environment_writes_the_prefix_and_keeps_other_settings(tmp_path):
    from partnb.lab import LAB_SETTINGS, configure_environment

    overrides = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    overrides.parent.mkdir(parents=True)
    overrides.write_text(json.dumps({
        "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook"},
                                                    "autosave": False},
        "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    for _ in range(2):  # idempotent
        server, lab = configure_environment(tmp_path)
    assert server == tmp_path / "etc" / "jupyter" / "jupyter_server_config.json"
    assert json.loads(server.read_text()) == {
        "ServerApp": {"contents_manager_class": "partnb.lab.NotebookContentsManager"}}
    settings = json.loads(lab.read_text())
    docmanager = settings["@jupyterlab/docmanager-extension:plugin"]
    assert docmanager["defaultViewers"] == {"markdown": "Jupytext Notebook", "python": "Jupytext Notebook"}
    assert docmanager["autosave"] is False
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert settings["@jupyterlab/apputils-extension:notification"] == \
        LAB_SETTINGS["@jupyterlab/apputils-extension:notification"]


def test_set_up_environment_is_configured():
    """``.ci/setup`` ran ``python -m partnb.lab`` in the environment that runs the tests."""
    server = Path(sys.prefix, "etc", "jupyter", "jupyter_server_config.json")
    lab = Path(sys.prefix, "share", "jupyter", "lab", "settings", "overrides.json")
    assert server.exists() and lab.exists(), "run bash .ci/setup"
    assert json.loads(server.read_text())["ServerApp"]["contents_manager_class"] == \
        "partnb.lab.NotebookContentsManager"
    kernel = json.loads(Path(sys.prefix, "share", "jupyter", "kernels", "partnb", "kernel.json").read_text())
    assert Path(kernel["argv"][0]).resolve() == Path(sys.executable).resolve()


@pytest.mark.parametrize("suffix", [".py", ".ipynb"])
def test_both_files_of_a_pair_load_as_the_notebook_with_language_info(tmp_path, suffix):
    from partnb.lab import NotebookContentsManager, kernel_language_info

    _copy_notebooks(tmp_path)
    manager = NotebookContentsManager(root_dir=str(tmp_path))
    model = asyncio.run(manager.get(f"notebooks/{NOTEBOOK}{suffix}"))
    assert model["type"] == "notebook"
    nb = model["content"]
    assert nb.metadata.kernelspec.name == "partnb"
    assert nb.metadata.language_info == kernel_language_info()
    expected = jupytext.read(REPO / "notebooks" / f"{NOTEBOOK}.py")
    assert [c.source for c in nb.cells] == [c.source for c in expected.cells]


@pytest.mark.parametrize("edited", [".py", ".ipynb"])
def test_saving_either_file_writes_both(tmp_path, edited):
    from partnb.lab import NotebookContentsManager

    _copy_notebooks(tmp_path)
    manager = NotebookContentsManager(root_dir=str(tmp_path))
    path = f"notebooks/{NOTEBOOK}{edited}"
    model = asyncio.run(manager.get(path))
    nb = model["content"]
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace("jetclass.yaml", "tiny.yaml")
    asyncio.run(manager.save({"type": "notebook", "format": "json", "content": nb}, path))
    for suffix in (".py", ".ipynb"):
        saved = jupytext.read(tmp_path / "notebooks" / f"{NOTEBOOK}{suffix}")
        first = next(c for c in saved.cells if c.cell_type == "code")
        assert first.source.startswith('params_file = "../params/tiny.yaml"'), suffix
        assert "parameters" in first.metadata.get("tags", []), suffix
    # what the browser test relies on: the .py keeps its cell tags and no language_info
    py = (tmp_path / "notebooks" / f"{NOTEBOOK}.py").read_text()
    assert '# %% tags=["parameters"]' in py and "language_info" not in py


# -- the real browser ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(line for line in (proc / "status").read_text().splitlines()
                         if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if text in cmdline and "zombie" not in state:
            pids.append(int(proc.name))
    return pids


@contextmanager
def _jupyter_lab(root: Path, home: Path):
    """``jupyter lab`` of the test's environment on a free localhost port with a token; the
    user's Jupyter config, settings, data and runtime folders are replaced by empty ones, so
    only the environment's configuration (``.ci/setup``) is in force. Yields the lab URL."""
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    cmd = [str(JUPYTER), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    home.mkdir(parents=True, exist_ok=True)
    log = home / "jupyter.log"
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"jupyter lab exited:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"jupyter lab did not start:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield f"{base}/lab?token={token}", log
    finally:
        request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
        try:
            urllib.request.urlopen(request, timeout=10).close()
            server.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("PARTNB_LAB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(500)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def _read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _same_table(ours: Path, reference: Path) -> None:
    a, b = _read_csv(ours), _read_csv(reference)
    assert len(a) == len(b) > 0 and list(a[0]) == list(b[0]), ours.name
    for row_a, row_b in zip(a, b, strict=True):
        for key in row_a:
            x, y = row_a[key], row_b[key]
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                assert x == y, (ours.name, key)
                continue
            assert fx == fy or math.isclose(fx, fy, rel_tol=1e-6, abs_tol=1e-9), (ours.name, key, x, y)


#: records every progress-bar widget that appears (they close when finished: leave=False)
_WATCH_PROGRESS = """() => {
  window.partnbBars = [];
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('.widget-hprogress')) {
      if (!window.partnbBars.includes(el)) window.partnbBars.push(el);
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""
_PROGRESS_STATE = """() => window.partnbBars.map(el => ({
  visible: el.isConnected && !el.closest('.lm-mod-hidden') && el.getClientRects().length > 0,
  danger: !!el.querySelector('.progress-bar-danger')}))"""
_PROMPTS = "els => els.map(e => e.textContent.trim())"


@pytest.fixture
def lab_root(tmp_path, tiny_run):
    """A student's clone in miniature: the notebooks, ``jupytext.toml`` and a
    ``params/tiny.yaml`` that reuses the session's tiny data and models (papermill made them)."""
    root = tmp_path / "clone"
    _copy_notebooks(root)
    tiny = yaml.safe_load((tiny_run[0] / "tiny.yaml").read_text())
    tiny["output"]["figures"] = str(root / "figures" / "tiny")
    tiny["output"]["runs"] = str(root / "runs" / "tiny")
    (root / "params").mkdir()
    (root / "params" / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    return root


@pytest.mark.slow
@pytest.mark.browser
def test_py_opens_as_notebook_and_runs_in_chromium(lab_root, tmp_path, tiny_run):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is missing: apt-get update && apt-get install -y chromium "
                    "(bash .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (test extra)")
    assert JUPYTER.exists(), f"{JUPYTER} missing: run bash .ci/setup"
    home, profile = tmp_path / "jupyter-home", tmp_path / "chromium-profile"
    source = jupytext.read(lab_root / "notebooks" / f"{NOTEBOOK}.py")
    code_cells = [c for c in source.cells if c.cell_type == "code"]
    assert code_cells[0].source.startswith('params_file = "../params/jetclass.yaml"')
    tiny_params = code_cells[0].source.replace("jetclass.yaml", "tiny.yaml")

    with _jupyter_lab(lab_root, home) as (url, log), playwright.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900})
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            # double clicks in the file browser, as a student would: an .ipynb, then a .py
            page.locator(".jp-DirListing-itemText", has_text=re.compile("^notebooks$")).dblclick()
            panel = page.locator(".jp-NotebookPanel:visible")
            for name in ("01_datasets.ipynb", f"{NOTEBOOK}.py"):
                page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$")).dblclick()
                tab = page.locator(".lm-TabBar-tab.jp-mod-current", has_text=name)
                tab.wait_for()
                panel.locator(".jp-Notebook").wait_for()
                page.locator("#jp-main-statusbar", has_text="partnb | Idle").wait_for()
                assert panel.locator(".jp-KernelName").inner_text() == "partnb", name
                page.wait_for_timeout(3000)  # time for a first-start pop-up or a late modified mark
                assert "jp-mod-dirty" not in tab.get_attribute("class"), f"opening {name} marked it modified"
            assert panel.locator(".jp-CodeCell").count() == len(code_cells)
            _screenshot(page, "1_py_opened_as_notebook")
            assert page.locator(".jp-Dialog").count() == 0, page.locator(".jp-Dialog").all_inner_texts()
            assert page.locator(".Toastify__toast").count() == 0, \
                page.locator(".Toastify__toast").all_inner_texts()

            # switch the parameters cell to params/tiny.yaml
            params_cell = panel.locator(".jp-CodeCell").first
            assert params_cell.locator(".cm-content").inner_text().strip() == code_cells[0].source.strip()
            params_cell.locator(".cm-content").click()
            page.keyboard.press("Control+a")
            page.keyboard.insert_text(tiny_params)
            page.keyboard.press("Escape")
            assert params_cell.locator(".cm-content").inner_text().strip() == tiny_params.strip()

            page.evaluate(_WATCH_PROGRESS)
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
            prompts = panel.locator(".jp-CodeCell .jp-InputPrompt")
            page.wait_for_function(
                """n => { const p = [...document.querySelectorAll(
                     '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
                     .map(e => e.textContent);
                   return p.length === n && !p.some(t => t.includes('*')) && /\\d/.test(p[0]); }""",
                arg=len(code_cells), timeout=240_000)
            page.locator("#jp-main-statusbar", has_text="partnb | Idle").wait_for()
            executed = prompts.evaluate_all(_PROMPTS)
            assert all(re.fullmatch(r"\[\d+\]:", p) for p in executed), executed
            assert panel.locator(".jp-OutputArea-output img").count() >= 6  # the notebook's figures
            bars = page.evaluate(_PROGRESS_STATE)
            assert bars, "no progress bar appeared in the browser"
            assert not any(b["visible"] or b["danger"] for b in bars), bars  # all finished and closed
            panel.locator(".jp-OutputArea-output img").nth(0).scroll_into_view_if_needed()
            _screenshot(page, "2_run_finished")
            page.keyboard.press("Control+s")
            page.wait_for_function(
                "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')")
        finally:
            browser.close()
    kernel_left = _processes_mentioning(str(home / "runtime"))
    browser_left = _processes_mentioning(str(profile))
    assert not kernel_left and not browser_left, (kernel_left, browser_left, log.read_text()[-2000:])

    # the saved pair: both files carry the edit, every cell ran without error, the figures
    ipynb = nbformat.read(lab_root / "notebooks" / f"{NOTEBOOK}.ipynb", as_version=4)
    py = jupytext.read(lab_root / "notebooks" / f"{NOTEBOOK}.py")
    assert [c.source for c in py.cells] == [c.source for c in ipynb.cells]
    assert 'params_file = "../params/tiny.yaml"' in py.cells[1].source
    code = [c for c in ipynb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    figures = sorted((lab_root / "figures" / "tiny").glob(f"{NOTEBOOK[:2]}_*.png"))
    assert len(images) == len(figures) >= 6
    # the same tables as papermill's run of the same params (tests/conftest.py: tiny_run)
    for table in sorted((lab_root / "figures" / "tiny").glob(f"{NOTEBOOK[:2]}_*.csv")):
        _same_table(table, tiny_run[0] / "figures" / table.name)
