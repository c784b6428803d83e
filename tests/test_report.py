"""``partnb report``: the static site of executed runs (partnb/report.py, docs/report.md).

Fast tests build the site from hand-made executed notebooks (nbformat) and tables; the browser
tests open it in Debian's headless chromium through Playwright, as a reader would from
``file://``: once on a hand-made site with a broken image and a broken link (the check must
catch both), once on the site of the session's tiny run (every notebook executed by papermill).

Set ``PARTNB_REPORT_SCREENSHOTS=<dir>`` to keep screenshots of the tiny run's landing page.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from conftest import PARAMS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: the launch flags of tests/test_lab.py: no sandbox (root in CI), nothing fetched in the
#: background, a fresh profile per run
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
CODE_MARKER = "attention_summary_rows(model)  # the code of cell 3"


def _png() -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.5, 1))
    ax.plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _notebook(stem: str, png: str, *, error: bool = False):
    """An executed notebook as papermill leaves it: a title with math and links, the
    parameters and injected-parameters cells, a cell with text, a figure, a markdown table and
    a result."""
    nb = new_notebook()
    nb.metadata["papermill"] = {"duration": 3.25, "parameters": {"params_file": "x.yaml"}}
    nb.cells = [
        new_markdown_cell(f"# {stem[:2]} — a hand-made notebook\n\nThe jet $p_T$ and the "
                          "rows' [binary fractions](../docs/analyses.md#binary-fractions); the "
                          "[report module](../partnb/report.py) is not in the site.\n\n"
                          "## A section\n\nNarrative sentence that the page must keep."),
        new_code_cell('params_file = "../params/jetclass.yaml"', execution_count=1,
                      metadata={"tags": ["parameters"]}),
        new_code_cell('params_file = "/abs/params/hand.yaml"', execution_count=2,
                      metadata={"tags": ["injected-parameters"]}),
        new_code_cell(CODE_MARKER, execution_count=3, outputs=[
            new_output("stream", name="stdout", text="2000 jets, mean n = 53.5\n"),
            new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
            new_output("display_data", data={"text/markdown": "| k | accuracy |\n|---|---|\n"
                                             "| 1 | 0.387 |", "text/plain": "<Markdown>"}),
            new_output("execute_result", data={"text/plain": "0.4242"}, execution_count=3)]),
    ]
    if error:
        nb.cells.append(new_code_cell("1 / 0", execution_count=4, outputs=[
            new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                       traceback=["ZeroDivisionError: division by zero"])]))
    return nb


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_claim_tables(figures: Path, *, accuracy=0.86, n_jets=2000, binary=0.7, collapse=0.6,
                       plain=0.84, rate_d=0.05, rate_n=0.01, top1=0.77, skip=()) -> None:
    """The tables the landing page's claims read, with chosen numbers."""
    figures.mkdir(parents=True, exist_ok=True)
    tables = {
        "02_metrics.json": lambda p: p.write_text(json.dumps({"accuracy": accuracy,
                                                              "n_jets": n_jets})),
        "03_attention_summary.csv": lambda p: _write_csv(p, [
            {"model": "random_init", "variant": "correct", "layer": "all", "class": "all",
             "frac_rows_max_ge_0.8": 0.0, "frac_rows_max_ge_0.8_err": 0.0},
            {"model": "trained", "variant": "correct", "layer": "0", "class": "all",
             "frac_rows_max_ge_0.8": 0.99, "frac_rows_max_ge_0.8_err": 0.01},
            {"model": "trained", "variant": "correct", "layer": "all", "class": "all",
             "frac_rows_max_ge_0.8": binary, "frac_rows_max_ge_0.8_err": 0.002}]),
        "06_ablation_verdict.json": lambda p: p.write_text(json.dumps({
            "accuracy_trained": accuracy, "accuracy_zero_u": 0.3, "collapse_u": collapse})),
        "06_ablation.csv": lambda p: _write_csv(p, [
            {"model": "trained", "intervention": "none", "accuracy": accuracy,
             "accuracy_err": 0.008},
            {"model": "plain", "intervention": "none (trained without U)", "accuracy": plain,
             "accuracy_err": 0.008}]),
        "06_interaction_metrics.csv": lambda p: _write_csv(p, [
            {"model": "trained", "pair_features": "float32", "rate_D": rate_d, "rate_D_err": 0.001,
             "rate_N": rate_n, "rate_N_err": 0.001}]),
        "07_topk.csv": lambda p: _write_csv(p, [
            {"source": "partnb", "k": "1", "accuracy": top1},
            {"source": "partnb", "k": "all", "accuracy": accuracy}]),
    }
    for name, write in tables.items():
        if name not in skip:
            write(figures / name)


def _stems() -> list[str]:
    from partnb.runner import list_notebooks

    return [p.stem for p in list_notebooks()]


def make_run(root: Path, name: str = "hand", *, dataset: str = "jetclass", failing=()) -> Path:
    """A project ``root`` with ``params/<name>.yaml`` whose run has every notebook executed
    (hand-made), the claims' tables and a provenance record naming all notebooks but 05.
    Returns the params file."""
    params = yaml.safe_load((PARAMS / "tiny.yaml").read_text())
    params["name"] = name
    params["dataset"]["name"] = dataset
    params["output"] = {"runs": f"runs/{name}", "figures": f"figures/{name}",
                        "models": f"models/{name}"}
    (root / "params").mkdir(parents=True, exist_ok=True)
    path = root / "params" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    runs, figures = root / "runs" / name, root / "figures" / name
    runs.mkdir(parents=True)
    png = _png()
    started = time.time() - 60
    for stem in _stems():
        nbformat.write(_notebook(stem, png, error=stem[:2] in failing), runs / f"{stem}.ipynb")
    write_claim_tables(figures)
    (figures / "03_extra_table.csv").write_text("a,b\n1,2\n")
    from partnb.provenance import file_sha256

    outputs = {"03_attention_summary.csv": file_sha256(figures / "03_attention_summary.csv"),
               "03_extra_table.csv": "0" * 64}  # recorded hash differs: "changed since the run"
    record = {
        "format": 1, "run_id": "run0123abcd",
        "code": {"commit": "c0ffee" + "0" * 34, "dirty": False, "versions": {"partnb": "0.1.0"}},
        "params": {"file": f"params/{name}.yaml", "sha256": "a" * 64, "values_hash": "feedbeef"},
        "data": {"dataset": dataset, "source": "generate", "n_files": 10,
                 "generated_with": {"seed": 7}, "directory": "data/generated/x",
                 "content_sha256": "d" * 64},
        "checkpoints": {"model": {"path": f"models/{name}/epoch_002.pt", "sha256": "e" * 64}},
        "machine": {"cores": 2, "torch_threads": 1, "platform": "Linux"},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60)),
        "notebooks": [{"notebook": s, "seconds": 12.5 if s.startswith("03") else 2.0,
                       "status": "ok", "outputs": outputs if s.startswith("03") else {}}
                      for s in _stems() if not s.startswith("05")],
    }
    (runs / "provenance.json").write_text(json.dumps(record))
    return path


def _stem(number: str) -> str:
    return next(s for s in _stems() if s.startswith(number))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A site built from a hand-made run (folded code)."""
    from partnb.report import build_site

    root = tmp_path_factory.mktemp("project")
    params = make_run(root, failing=("04",))
    site = build_site([params], out=root / "site", log=lambda *_: None)
    return root, site


def _page(site, number: str) -> str:
    return (site.path / "runs" / "hand" / f"{_stem(number)}.html").read_text()


# -- the pages ----------------------------------------------------------------------------------

def test_every_page_is_written_with_the_site_marker(built):
    from partnb.report import SITE_MARKER

    root, site = built
    assert (site.path / "index.html").is_file() and (site.path / SITE_MARKER).is_file()
    for stem in _stems():
        assert (site.path / "runs" / "hand" / f"{stem}.html").is_file(), stem
    assert (site.path / "docs" / "analyses.html").is_file()
    assert not list(root.glob(".site.partnb-*")), "a temporary folder was left"


def test_notebook_page_has_narrative_folded_code_figures_and_tables(built):
    _, site = built
    page = _page(site, "03")
    assert "Narrative sentence that the page must keep." in page
    assert "a hand-made notebook" in page
    # code folded into <details>, the parameters cells labelled
    folded = re.findall(r'<details class="code-fold">(.*?)</details>', page, flags=re.S)
    assert len(folded) == 3 and any("attention_summary_rows" in f for f in folded)
    assert "parameters injected by papermill" in page
    # outputs: text, figure written beside the page, markdown table, result
    assert "2000 jets, mean n = 53.5" in page and "0.4242" in page
    assert "<td>0.387</td>" in page
    srcs = re.findall(r'<img\b[^>]*\ssrc="([^"]+)"', page)
    assert len(srcs) == 1 and not srcs[0].startswith("data:")
    assert (site.path / "runs" / "hand" / srcs[0]).stat().st_size > 100
    # math as MathML, no MathJax
    assert "<math" in page and "<msub><mi>p</mi><mi>T</mi></msub>" in page
    # the notebook's tables, copied and checked against the recorded hashes
    assert 'href="tables/03_attention_summary.csv"' in page
    assert (site.path / "runs" / "hand" / "tables" / "03_attention_summary.csv").is_file()
    assert re.search(r"03_attention_summary\.csv</a></td><td>\d+</td><td class=\"hash-ok\">", page)
    assert re.search(r"03_extra_table\.csv</a></td><td>\d+</td><td class=\"hash-changed\">", page)


def test_code_is_shown_on_request(tmp_path):
    from partnb.report import build_site

    params = make_run(tmp_path)
    site = build_site([params], out=tmp_path / "site", code="shown", log=lambda *_: None)
    page = _page(site, "03")
    assert "code-fold" not in page.split("<article", 1)[1]
    assert "attention_summary_rows" in page


def test_links_navigation_and_docs(built):
    _, site = built
    page = _page(site, "03")
    # docs links become the site's docs pages, with their GitHub anchors
    assert 'href="../../docs/analyses.html#binary-fractions"' in page
    assert 'id="binary-fractions"' in (site.path / "docs" / "analyses.html").read_text()
    # a link to a repository file the site does not hold is not a link
    assert 'class="repo-path" title="partnb/report.py (in the repository)">report module' in page
    # navigation: home, every notebook of the run, previous and next
    assert 'href="../../index.html"' in page
    for stem in _stems():
        assert f'href="{stem}.html"' in page, stem
    assert f'rel="prev" href="{_stem("02")}.html"' in page
    assert f'rel="next" href="{_stem("04")}.html"' in page
    # every relative link of every page resolves to a file of the site
    for html_file in site.path.rglob("*.html"):
        text = html_file.read_text()
        for href in re.findall(r'(?:href|src)="([^"#]+)[^"]*"', text):
            if re.match(r"^[a-z]+:", href):
                continue
            assert (html_file.parent / href).exists(), (html_file.name, href)


def test_provenance_block(built):
    _, site = built
    page = _page(site, "03")
    block = page.split('id="provenance"', 1)[1]
    for text in ("run0123abcd", "c0ffee", "(clean)", "d" * 16, "e" * 16, "12 s (ok)",
                 "models/hand/epoch_002.pt", "the run&#39;s provenance.json"):
        assert text in block, text
    assert (site.path / "runs" / "hand" / "provenance.json").is_file()
    # 05 is not in the record: the page says so
    assert "No provenance recorded for this notebook" in _page(site, "05")


def test_a_failed_notebook_is_flagged(built):
    _, site = built
    assert "This notebook failed: cell 4: ZeroDivisionError: division by zero" in _page(site, "04")
    index = (site.path / "index.html").read_text()
    assert "✗ failed" in index


def test_landing_page_claims_runs_and_run_times(built):
    _, site = built
    index = (site.path / "index.html").read_text()
    assert "The papers' claims beside our numbers" in index
    claims = index.split('<table class="claims">', 1)[1].split("</table>", 1)[0]
    assert claims.count("<tr>") == 7  # header + six claims
    assert claims.count("verdict-reproduced") == 6, claims
    assert 'href="runs/hand/tables/02_metrics.json"' in claims
    assert "No run given for: Top Landscape, Quark-Gluon" in index
    runtimes = index.split('<table class="runtimes">', 1)[1].split("</table>", 1)[0]
    assert f'href="runs/hand/{_stem("03")}.html">12<' in runtimes
    assert "3.2 †" in runtimes  # 05: papermill's own duration, the run recorded none
    assert "run0123abcd" in index


def test_no_script_and_nothing_from_the_network(built):
    _, site = built
    for html_file in site.path.rglob("*.html"):
        text = html_file.read_text()
        assert "<script" not in text, html_file
        for tag in re.findall(r"<(?:link|img|iframe|source|video|audio|embed|object)\b[^>]*>", text):
            assert not re.search(r'(?:src|href|data)="(?:https?:)?//', tag), (html_file, tag)
    css = (site.path / "assets" / "style.css").read_text()
    assert "@import" not in css and "url(" not in css


# -- the claims, from given tables --------------------------------------------------------------

def _verdicts(rows):
    return {row["claim"].split(" (")[0].split(":")[0]: [c["verdict"] for c in row["cells"]]
            for row in rows}


def test_claims_are_judged_by_their_rules(tmp_path):
    from partnb.report import claims_table

    good, bad, tl = tmp_path / "good", tmp_path / "bad", tmp_path / "tl"
    write_claim_tables(good)
    write_claim_tables(bad, accuracy=0.70, binary=0.03, collapse=0.3, plain=0.70, rate_d=0.7,
                       rate_n=0.97, top1=0.39, skip=("07_topk.csv",))
    write_claim_tables(tl, accuracy=0.93)
    rows = claims_table([("jetclass", good), ("jetclass", bad), ("toplandscape", tl)])
    assert len(rows) == 6
    verdicts = [[c["verdict"] for c in row["cells"]] for row in rows]
    assert verdicts[0] == ["reproduced", "not reproduced", "reproduced"]  # |0.93 - 0.940| <= 0.02
    assert verdicts[1] == ["reproduced", "not reproduced", "not judged here"]
    for v in verdicts[2:5]:
        assert v == ["reproduced", "not reproduced", "no published number"]
    assert verdicts[5] == ["reproduced", "no number: 07_topk.csv missing", "no published number"]
    # every number shown comes from the tables or from partnb.reference
    acc = rows[0]["cells"]
    assert acc[0]["ours"].startswith("0.860 ± 0.0078 (2000 jets)")
    assert acc[0]["paper"].startswith("0.861 (ParT paper Table 2")
    assert acc[2]["paper"].startswith("0.940 (ParT paper Table 3")
    assert rows[1]["cells"][0]["ours"] == "0.7 ± 0.002 of the rows"  # the 'all' row, not layer 0
    assert rows[4]["cells"][0]["paper"].startswith("D 0.036, N 0.0088")
    assert rows[5]["cells"][0]["ours"] == "0.770 of 0.860"
    assert all(row["rule"] for row in rows)


def test_a_claim_names_what_is_missing(tmp_path):
    from partnb.report import claims_table

    (tmp_path / "03_attention_summary.csv").write_text("model,variant,layer,class\n")
    rows = claims_table([("quarkgluon", tmp_path)])
    assert rows[0]["cells"][0]["verdict"] == "no number: 02_metrics.json missing"
    assert rows[1]["cells"][0]["verdict"].startswith(
        "no number: 03_attention_summary.csv: no row model=trained")


# -- bad input: one clear message, nothing written ----------------------------------------------

def _report(capsys, *args) -> tuple[int, str, str]:
    from partnb.cli import main

    rc = main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_no_executed_run(tmp_path, capsys):
    params = make_run(tmp_path)
    shutil.rmtree(tmp_path / "runs" / "hand")
    rc, _, err = _report(capsys, params, "--out", tmp_path / "site")
    assert rc == 2
    assert err.count("\n") == 1 and "no executed notebook in" in err
    assert str(tmp_path / "runs" / "hand") in err and "partnb run" in err
    assert not (tmp_path / "site").exists()


def test_a_missing_notebook(tmp_path, capsys):
    params = make_run(tmp_path)
    stem = _stem("05")
    (tmp_path / "runs" / "hand" / f"{stem}.ipynb").unlink()
    rc, _, err = _report(capsys, params, "--out", tmp_path / "site")
    assert rc == 2 and err.count("\n") == 1
    assert f"{stem}.ipynb missing" in err and "--partial" in err and "--only 05" in err
    assert not (tmp_path / "site").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures", "params", "runs"]
    # asked for, a partial site says which notebook was not run
    rc, out, _ = _report(capsys, params, "--out", tmp_path / "site", "--partial")
    assert rc == 0 and "index.html" in out
    assert not (tmp_path / "site" / "runs" / "hand" / f"{stem}.html").exists()
    assert f"{stem} (not run)" in (tmp_path / "site" / "runs" / "hand" / f"{_stem('03')}.html").read_text()


def test_a_notebook_that_never_ran(tmp_path, capsys):
    params = make_run(tmp_path)
    path = tmp_path / "runs" / "hand" / f"{_stem('02')}.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), path)
    rc, _, err = _report(capsys, params, "--out", tmp_path / "site")
    assert rc == 2 and str(path) in err and "not an executed notebook" in err
    path.write_text('{"cells": [')
    rc, _, err = _report(capsys, params, "--out", tmp_path / "site")
    assert rc == 2 and str(path) in err and "not a readable notebook" in err
    assert not (tmp_path / "site").exists()


def test_out_is_a_file(tmp_path, capsys):
    params = make_run(tmp_path)
    target = tmp_path / "site.html"
    target.write_text("mine")
    rc, _, err = _report(capsys, params, "--out", target)
    assert rc == 2 and err.count("\n") == 1
    assert f"--out {target}: is a file, not a directory" in err
    assert target.read_text() == "mine"
    rc, _, err = _report(capsys, params, "--out", target / "below")
    assert rc == 2 and "is not a directory" in err and str(target) in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_out_holding_other_files_is_refused(tmp_path, capsys):
    params = make_run(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    rc, _, err = _report(capsys, params, "--out", mine)
    assert rc == 2 and str(mine) in err and "holds other files" in err
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]


def test_rebuild_replaces_the_earlier_site_and_a_failed_build_leaves_nothing(tmp_path, monkeypatch):
    import partnb.report as report

    params = make_run(tmp_path)
    out = tmp_path / "site"
    report.build_site([params], out=out, log=lambda *_: None)
    (out / "runs" / "hand" / "stale.html").write_text("old")
    report.build_site([params], out=out, log=lambda *_: None)
    assert not (out / "runs" / "hand" / "stale.html").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site")]

    def broken(site, *args, **kwargs):
        (site / "index.html").write_text("half")
        raise RuntimeError("disk full")

    # what a build killed with -9 left beside the site goes at the next build
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    left = tmp_path / f".site.partnb-tmp-{gone.pid}-x1y2"
    (left / "runs").mkdir(parents=True)
    report.build_site([params], out=out, log=lambda *_: None)
    assert not left.exists()

    monkeypatch.setattr(report, "_write_site", broken)
    with pytest.raises(RuntimeError):
        report.build_site([params], out=tmp_path / "other", log=lambda *_: None)
    assert not (tmp_path / "other").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".other")]
    assert (out / "index.html").read_text().startswith("<!DOCTYPE html>")


# -- in a real browser ----------------------------------------------------------------------------

def _chromium_or_skip():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is missing: apt-get update && apt-get install -y chromium "
                    "(bash .ci/run installs it)")
    return pytest.importorskip("playwright.sync_api", reason="pip install playwright (test extra)")


def browse_site(playwright, site: Path, profile: Path, screenshots: str | None = None) -> dict:
    """Open every page of ``site`` from ``file://`` in headless chromium; returns what a reader
    would meet: per page its visible text length, images not loaded, local links to missing
    files, console errors, and every request that did not stay on ``file://``."""
    found = {"pages": {}, "broken_images": [], "broken_links": [], "console": [], "network": []}
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900})
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.on("console", lambda m: found["console"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: found["console"].append(str(e)))
            page.on("request", lambda r: None if r.url.startswith(("file://", "data:"))
                    else found["network"].append(r.url))
            for html_file in sorted(site.rglob("*.html")):
                rel = html_file.relative_to(site).as_posix()
                page.goto(html_file.as_uri(), wait_until="load")
                if rel == "index.html" and screenshots:
                    Path(screenshots).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(Path(screenshots) / "report_landing.png"), full_page=True)
                found["pages"][rel] = {
                    "text": len(page.locator("main").inner_text().strip()),
                    "claims": page.locator("table.claims tbody tr").count(),
                    "images": page.locator("img").count()}
                images = page.eval_on_selector_all(
                    "img", "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth > 0])")
                found["broken_images"] += [(rel, src) for src, ok in images if not ok]
                for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                    if href.startswith("file://"):
                        target = Path(page.evaluate("h => decodeURIComponent(new URL(h).pathname)", href))
                        if not target.exists():
                            found["broken_links"].append((rel, href))
        finally:
            browser.close()
    return found


@pytest.mark.slow
@pytest.mark.browser
def test_browser_check_catches_a_broken_image_and_link(tmp_path):
    """The check of the tiny run's site can fail: here an image path and a link are broken."""
    playwright = _chromium_or_skip()
    from partnb.report import build_site

    site = build_site([make_run(tmp_path)], out=tmp_path / "site", log=lambda *_: None).path
    page = site / "runs" / "hand" / f"{_stem('03')}.html"
    text = page.read_text()
    src = re.search(r'<img\b[^>]*\ssrc="([^"]+)"', text).group(1)
    page.write_text(text.replace(src, src.replace(".png", "_gone.png"))
                    .replace('href="../../index.html"', 'href="../../gone.html"', 1))
    found = browse_site(playwright, site, tmp_path / "profile")
    rel = f"runs/hand/{_stem('03')}.html"
    assert found["broken_images"] == [(rel, src.replace(".png", "_gone.png"))]
    assert [r for r, _ in found["broken_links"]] == [rel]
    assert not found["network"]
    # a missing image is a console error in chromium too ("Failed to load resource")
    assert found["console"]


@pytest.mark.slow
@pytest.mark.browser
def test_site_of_the_tiny_run_in_chromium(tmp_path, tiny_run):
    playwright = _chromium_or_skip()
    from partnb.report import build_site

    tmp, results = tiny_run
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    t0 = time.perf_counter()
    site = build_site([tmp / "tiny.yaml"], out=tmp_path / "site", log=lambda *_: None)
    seconds = time.perf_counter() - t0
    expected = {"index.html"} | {f"runs/tiny/{s}.html" for s in _stems()}
    written = {p.relative_to(site.path).as_posix() for p in site.path.rglob("*.html")}
    assert expected <= written, expected - written
    found = browse_site(playwright, site.path, tmp_path / "profile",
                        os.environ.get("PARTNB_REPORT_SCREENSHOTS"))
    assert set(found["pages"]) == written
    landing = found["pages"]["index.html"]
    assert landing["text"] > 1000 and landing["claims"] == 6
    blank = [p for p, info in found["pages"].items() if info["text"] < 200]
    assert not blank, blank
    # every notebook of the tiny run draws figures; the pages show them
    assert sum(found["pages"][f"runs/tiny/{s}.html"]["images"] for s in _stems()) >= 20
    assert not found["broken_images"], found["broken_images"]
    assert not found["broken_links"], found["broken_links"]
    assert not found["console"], found["console"]
    assert not found["network"], found["network"]
    assert seconds < 120, f"the site of the tiny run took {seconds:.0f} s"
