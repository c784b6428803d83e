"""``partnb report --reference``: the site from the committed reference outputs alone
(partnb/report_reference.py, docs/report.md#the-reference-site).

The slow tests build the site of the three datasets from the COMMITTED ``figures/`` of the
checkout (read only: the test checks that nothing there changes) into ``tmp_path`` and check it
by the layout, never by the numbers (the reference runs are redone from time to time): a page
per notebook with outputs, every image and local link resolving, every table rendered and
checked against the hash that ``figures/<dataset>/provenance.json`` records, the claims table
filled; and in headless chromium, as the executed site is checked in tests/test_report.py.
The fast tests use a hand-made figures folder: where each output is placed, the three outcomes
of the hash check, and the bad inputs.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell
from test_report import _chromium_or_skip, browse_site

from partnb.report import _seconds_text

from conftest import FIGURES_ROOT, PARAMS

DATASETS = ("jetclass", "toplandscape", "quarkgluon")


def _stems() -> list[str]:
    from partnb.runner import list_notebooks

    return [p.stem for p in list_notebooks()]


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _committed(dataset: str, stem: str) -> list[Path]:
    from partnb.report_reference import reference_outputs

    return reference_outputs(FIGURES_ROOT / dataset, stem[:2])


@pytest.fixture(scope="module")
def reference_site(tmp_path_factory):
    """The reference site of the three datasets, from the checkout's committed figures."""
    from partnb.report import build_site

    before = _snapshot(FIGURES_ROOT)
    # a dataset whose figures lack a notebook's outputs needs --partial; say which
    lacking = {ds: [s for s in _stems() if not _committed(ds, s)] for ds in DATASETS}
    t0 = time.perf_counter()
    site = build_site([PARAMS / f"{ds}.yaml" for ds in DATASETS],
                      out=tmp_path_factory.mktemp("reference") / "site", reference=True,
                      partial=any(lacking.values()), log=lambda *_: None)
    seconds = time.perf_counter() - t0
    assert _snapshot(FIGURES_ROOT) == before, "building the reference site changed figures/"
    return site, lacking, seconds


def _pages(site) -> dict[str, str]:
    return {p.relative_to(site.path).as_posix(): p.read_text() for p in site.path.rglob("*.html")}


@pytest.mark.slow
def test_a_page_per_notebook_with_committed_outputs(reference_site):
    site, lacking, _ = reference_site
    pages = _pages(site)
    for ds in DATASETS:
        for stem in _stems():
            rel = f"runs/{ds}/{stem}.html"
            if stem in lacking[ds]:
                assert rel not in pages, rel
                assert f"{stem} (no outputs)" in pages[f"runs/{ds}/{_stems()[0]}.html"]
            else:
                assert rel in pages, rel
                page = pages[rel]
                assert "Committed reference outputs, not an executed notebook" in page
                assert f"figures/{ds}/" in page
                # the narrative (title and markdown) and the folded code of the source
                assert re.search(r"<h1 id=\"[^\"]+\">" + stem[:2], page), rel
                assert page.count('<details class="code-fold">') >= 2, rel
    if any(_committed("comparison", "08")):
        assert "runs/comparison/08_dataset_comparison.html" in pages


@pytest.mark.slow
def test_every_committed_figure_is_shown_and_every_local_link_resolves(reference_site):
    site, lacking, _ = reference_site
    pages = _pages(site)
    for ds in DATASETS:
        for stem in _stems():
            if stem in lacking[ds]:
                continue
            page = pages[f"runs/{ds}/{stem}.html"]
            srcs = re.findall(r'<img\b[^>]*\ssrc="([^"]+)"', page)
            pngs = [p.name for p in _committed(ds, stem) if p.suffix == ".png"]
            assert sorted(srcs) == sorted(f"figures/{n}" for n in pngs), (ds, stem)
    for rel, text in pages.items():
        folder = (site.path / rel).parent
        for ref in re.findall(r'(?:href|src)="([^"#]+)[^"]*"', text):
            if re.match(r"^[a-z]+:", ref):
                continue
            assert (folder / ref).is_file(), (rel, ref)
        assert "<script" not in text, rel


@pytest.mark.slow
def test_tables_are_rendered_and_checked_against_the_recorded_hash(reference_site):
    from partnb.provenance import file_sha256

    site, lacking, _ = reference_site
    pages = _pages(site)
    checked = 0
    for ds in DATASETS:
        index_path = FIGURES_ROOT / ds / "provenance.json"
        recorded = json.loads(index_path.read_text())["outputs"] if index_path.is_file() else None
        for stem in _stems():
            if stem in lacking[ds]:
                continue
            page = pages[f"runs/{ds}/{stem}.html"]
            for path in _committed(ds, stem):
                block = page.split(f'id="out-{path.name.rsplit(".", 1)[0]}"', 1)[1]
                block = block.split('class="ref-output"', 1)[0]
                line = block.split(path.name, 1)[1]
                if recorded is None:
                    want = "not checked"
                elif path.name not in recorded:
                    want = "not recorded in provenance.json"
                elif recorded[path.name]["sha256"] == file_sha256(path):
                    want, checked = "sha256 as recorded", checked + 1
                else:
                    want = "changed since the run"
                assert want in line.split("</figcaption>")[0].split("</p>")[0], (ds, path.name)
                if path.suffix in (".csv", ".json"):
                    assert '<table class="data">' in block, (ds, path.name)
                    assert f'href="tables/{path.name}"' in block, (ds, path.name)
                    assert (site.path / "runs" / ds / "tables" / path.name).is_file()
    if any((FIGURES_ROOT / ds / "provenance.json").is_file() for ds in DATASETS):
        assert checked > 0, "no output's hash was found as recorded"


@pytest.mark.slow
def test_landing_page_claims_runs_and_run_times(reference_site):
    site, lacking, _ = reference_site
    index = (site.path / "index.html").read_text()
    assert "The committed reference outputs of 3 datasets" in index
    claims = index.split('<table class="claims">', 1)[1].split("</table>", 1)[0]
    assert claims.count("<tr>") == 7  # header + six claims
    # the accuracy claim reads 02_metrics.json of every dataset: a number in each cell
    first = claims.split("<tr>")[2]
    assert first.count('<div class="ours">ours: 0.') == 3, first
    for ds in DATASETS:
        assert f'href="runs/{ds}/tables/02_metrics.json"' in claims
    runtimes = index.split('<table class="runtimes">', 1)[1].split("</table>", 1)[0]
    assert runtimes.count("<tr") == len(_stems()) + 2  # header, notebooks, total
    for ds in DATASETS:
        path = FIGURES_ROOT / ds / "provenance.json"
        if not path.is_file():
            continue
        recorded = json.loads(path.read_text()).get("notebooks") or {}
        for stem in _stems():
            if stem in lacking[ds]:
                continue
            cell = re.search(rf'href="runs/{ds}/{stem}\.html">([^<]*)<', runtimes)
            assert cell, (ds, stem)
            if stem in recorded:  # the notebook's own time, as its run recorded it
                assert cell.group(1) == _seconds_text(recorded[stem]["seconds"]), (ds, stem, cell.group(1))
            else:  # outputs of a run made before notebook times were recorded: a bound
                assert re.fullmatch(r"≤ \d.*|not recorded", cell.group(1)), (ds, stem, cell.group(1))
    runs = index.split('<table class="runs">', 1)[1].split("</table>", 1)[0]
    for ds in DATASETS:
        n = len(_stems()) - len(lacking[ds])
        assert f"{n} of {len(_stems())} with committed outputs" in runs


@pytest.mark.slow
def test_provenance_of_each_page_is_the_run_that_wrote_its_outputs(reference_site):
    site, lacking, _ = reference_site
    for ds in DATASETS:
        index_path = FIGURES_ROOT / ds / "provenance.json"
        outputs = json.loads(index_path.read_text())["outputs"] if index_path.is_file() else {}
        for stem in _stems():
            if stem in lacking[ds]:
                continue
            page = (site.path / "runs" / ds / f"{stem}.html").read_text()
            section = page.split('id="provenance"', 1)[1]
            runs = [outputs[p.name]["run_id"] for p in _committed(ds, stem) if p.name in outputs]
            if runs:
                assert max(set(runs), key=runs.count) in section.split("</dl>")[0], (ds, stem)
                assert (site.path / "runs" / ds / "provenance.json").is_file()
            else:
                assert "No provenance recorded for this notebook" in section, (ds, stem)


@pytest.mark.slow
@pytest.mark.browser
def test_reference_site_in_chromium(reference_site, tmp_path):
    playwright = _chromium_or_skip()
    site, lacking, _ = reference_site
    found = browse_site(playwright, site.path, tmp_path / "profile",
                        os.environ.get("PARTNB_REPORT_SCREENSHOTS"))
    landing = found["pages"]["index.html"]
    assert landing["text"] > 1000 and landing["claims"] == 6
    blank = [p for p, info in found["pages"].items() if info["text"] < 200]
    assert not blank, blank
    shown = sum(info["images"] for p, info in found["pages"].items() if p.startswith("runs/"))
    assert shown == sum(1 for ds in DATASETS for s in _stems()
                        for p in _committed(ds, s) if p.suffix == ".png") + \
        sum(1 for p in _committed("comparison", "08") if p.suffix == ".png")
    assert not found["broken_images"], found["broken_images"]
    assert not found["broken_links"], found["broken_links"]
    assert not found["console"], found["console"]
    assert not found["network"], found["network"]


# -- a hand-made figures folder --------------------------------------------------------------

def _project(root: Path, *, skip=("05",)) -> Path:
    """``root/params/hand.yaml`` whose ``figures/hand`` holds one png and one csv per notebook
    (none for ``skip``), 03's named by its code, one 03 table that no cell names, and a
    provenance.json recording one hash right, one wrong. Returns the params file."""
    import matplotlib.pyplot as plt

    from partnb.provenance import file_sha256

    params = yaml.safe_load((PARAMS / "tiny.yaml").read_text())
    params["name"] = "hand"
    params["output"] = {"runs": "runs/hand", "figures": "figures/hand", "models": "models/hand"}
    (root / "params").mkdir(parents=True, exist_ok=True)
    path = root / "params" / "hand.yaml"
    path.write_text(yaml.safe_dump(params))
    figures = root / "figures" / "hand"
    figures.mkdir(parents=True)
    fig, ax = plt.subplots(figsize=(1.5, 1))
    ax.plot([0, 1], [1, 0])
    for stem in _stems():
        if stem[:2] in skip:
            continue
        name = "03_attention_summary" if stem.startswith("03") else f"{stem[:2]}_hand"
        fig.savefig(figures / f"{name}.png", dpi=30)
        (figures / f"{name}.csv").write_text("model,frac\ntrained,0.25\nrandom_init,0.0\n")
    plt.close(fig)
    (figures / "03_nobody_names_me.json").write_text(json.dumps({"sentence": "left over"}))
    index = {"format": 1, "runs": {"run0hand": {
        "run_id": "run0hand", "code": {"commit": "c0ffee" + "0" * 34, "dirty": False},
        "started": "2026-11-30T01:00:00Z", "finished": "2026-11-30T01:02:05Z"}},
        "outputs": {"03_attention_summary.png": {
            "sha256": file_sha256(figures / "03_attention_summary.png"),
            "notebook": "03_attention_distributions", "run_id": "run0hand"},
            "03_attention_summary.csv": {"sha256": "0" * 64,
                                         "notebook": "03_attention_distributions",
                                         "run_id": "run0hand"}}}
    (figures / "provenance.json").write_text(json.dumps(index))
    return path


def _report(capsys, *args) -> tuple[int, str, str]:
    from partnb.cli import main

    rc = main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_outputs_are_placed_after_the_cell_that_names_them():
    from partnb.report_reference import place_outputs

    cells = [new_markdown_cell('The table "02_roc" is described here, not written.'),
             new_code_cell('save_table(rows, out, "02_roc")\nsave_figure(fig, out, "02_roc")'),
             new_code_cell("for m in metrics:\n"
                           "    save_figure(f, out, f\"10_knobs_{m.replace('.', '')}\")"),
             new_code_cell("stem = f'05_graph_{kind}'\nsave_json(g, out, '02_metrics')")]
    placed, left = place_outputs(cells, ["02_roc.csv", "02_roc.png", "10_knobs_rows08.png",
                                         "05_graph_top_tlg.json", "02_metrics.json", "02_other.csv"])
    assert placed == {1: ["02_roc.csv", "02_roc.png"], 2: ["10_knobs_rows08.png"],
                      3: ["05_graph_top_tlg.json", "02_metrics.json"]}
    assert left == ["02_other.csv"]


def test_hand_made_reference_page(tmp_path, capsys):
    params = _project(tmp_path)
    rc, out, err = _report(capsys, params, "--reference", "--partial", "--out", tmp_path / "site")
    assert rc == 0, err
    page = next((tmp_path / "site" / "runs" / "hand").glob("03_*.html")).read_text()
    # the figure and table come after the code that writes them, before the next heading
    code_at = page.index('"03_attention_summary"</span>')
    block_at = page.index('id="out-03_attention_summary"')
    assert code_at < block_at
    block = page[block_at:].split('class="ref-output"', 1)[0]
    assert re.findall(r'<img\b[^>]*\ssrc="([^"]+)"', block) == ["figures/03_attention_summary.png"]
    assert "<td>trained</td><td>0.25</td>" in block and "2 rows" in block
    # the hash check: as recorded (png), changed (csv), not recorded (the leftover json)
    png_line, csv_line = block.split("03_attention_summary.png", 1)[1], \
        block.split("03_attention_summary.csv", 1)[1]
    assert "sha256 as recorded" in png_line.split("</figcaption>")[0]
    assert "changed since the run" in csv_line.split("</p>")[0]
    assert "run run0hand · commit c0ffee0000 · 2026-11-30" in block
    other = page.split('id="other-outputs"', 1)[1].split('id="tables"', 1)[0]
    assert "03_nobody_names_me.json" in other and "not recorded in provenance.json" in other
    assert "<td>sentence</td><td>left over</td>" in other
    # provenance of the page and the landing page's run time (2 min 5 s: an upper bound)
    assert "run0hand" in page.split('id="provenance"', 1)[1]
    index = (tmp_path / "site" / "index.html").read_text()
    runtimes = index.split('<table class="runtimes">', 1)[1]
    assert "≤ 125" in runtimes and "not recorded" in runtimes and "no outputs" in runtimes
    assert f"{_stems()[4]} (no outputs)" in page


def test_missing_outputs_are_one_error_before_anything_is_written(tmp_path, capsys):
    params = _project(tmp_path, skip=("05", "07"))
    rc, _, err = _report(capsys, params, "--reference", "--out", tmp_path / "site")
    assert rc == 2 and err.count("\n") == 1
    figures = tmp_path / "figures" / "hand"
    stems = [s for s in _stems() if s[:2] in ("05", "07")]
    assert f"{figures} lacks the committed outputs of {stems[0]}, {stems[1]}" in err
    assert "--only 05,07" in err and "--partial" in err
    assert not (tmp_path / "site").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures", "params"]
    for p in figures.iterdir():
        p.unlink()
    rc, _, err = _report(capsys, params, "--reference", "--partial", "--out", tmp_path / "site")
    assert rc == 2 and f"{figures} holds no committed outputs" in err
    figures.rmdir()
    rc, _, err = _report(capsys, params, "--reference", "--partial", "--out", tmp_path / "site")
    assert rc == 2 and f"{figures} does not exist" in err
    assert not (tmp_path / "site").exists()
