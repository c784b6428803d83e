"""Where a run's numbers came from (partnb.provenance): the record of `partnb run`, the map
from every table and figure to the run that wrote it, and the hashes behind both."""

from __future__ import annotations

import json
import time

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from partnb import provenance

from conftest import PARAMS


def _write_root(path, pt):
    with uproot.recreate(path) as f:
        f["tree"] = {"part_pt": ak.Array(pt), "jet_pt": np.array([sum(x) for x in pt], float)}


def test_content_hash_sees_the_jets_not_the_file(tmp_path):
    """Two ROOT files of the same jets written at different times differ in their bytes
    (uproot stores a creation time and UUID) but not in their content hash; one changed
    value changes it."""
    jets = [[1.0, 2.0, 3.0], [4.0], [5.0, 6.0]]
    for folder, content in (("a", jets), ("b", jets), ("c", [[1.0, 2.0, 3.0], [4.0], [5.0, 6.5]])):
        (tmp_path / folder).mkdir()
        _write_root(tmp_path / folder / "x.root", content)
        time.sleep(1.1)  # ROOT's creation time has a resolution of a second
    a, b, c = (tmp_path / d / "x.root" for d in "abc")
    assert provenance.file_sha256(a) != provenance.file_sha256(b)
    assert provenance.content_hash([a]) == provenance.content_hash([b])
    assert provenance.content_hash([a]) != provenance.content_hash([c])


def test_content_hash_of_a_file_without_jets_is_an_error(tmp_path):
    path = tmp_path / "empty.root"
    with uproot.recreate(path) as f:
        f["note"] = "no tree here"
    with pytest.raises(ValueError, match="empty.root: no TTree or RNTuple"):
        provenance.content_hash([path])


def test_file_hash_cache_follows_size_and_mtime(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")
    cache = {}
    first = provenance.file_sha256(path, cache)
    assert len(cache) == 1 and provenance.file_sha256(path, cache) == first
    time.sleep(0.01)
    path.write_bytes(b"two")
    assert provenance.file_sha256(path, cache) != first


def _record(run_id):
    return {"run_id": run_id, "code": {"commit": "abc"}, "started": "t0"}


def test_partial_rerun_keeps_the_other_tables_runs(tmp_path):
    """A rerun of one notebook replaces its tables' entries; the other tables keep the run
    that wrote them, and a run no table names any more is dropped."""
    figures, runs = tmp_path / "figures", tmp_path / "runs"
    figures.mkdir()
    runs.mkdir()
    for name in ("03_a.csv", "04_b.csv"):
        (figures / name).write_text(name)
    books = [{"notebook": "03", "outputs": {"03_a.csv": provenance.file_sha256(figures / "03_a.csv")}},
             {"notebook": "04", "outputs": {"04_b.csv": provenance.file_sha256(figures / "04_b.csv")}}]
    provenance.record_outputs(_record("run1"), books, runs_dir=runs, figures_dir=figures,
                              finished=time.time())
    (figures / "03_a.csv").write_text("new numbers")
    provenance.record_outputs(
        _record("run2"), [{"notebook": "03", "outputs": {
            "03_a.csv": provenance.file_sha256(figures / "03_a.csv")}}],
        runs_dir=runs, figures_dir=figures, finished=time.time())
    index = json.loads((figures / "provenance.json").read_text())
    assert index["outputs"]["03_a.csv"]["run_id"] == "run2"
    assert index["outputs"]["04_b.csv"]["run_id"] == "run1"
    assert set(index["runs"]) == {"run1", "run2"}
    assert json.loads((runs / "provenance.json").read_text())["run_id"] == "run2"
    assert provenance.table_run(figures, "03_a.csv")["matches"]
    # rerun 04 too: run1 is named by nothing and goes
    provenance.record_outputs(
        _record("run3"), [{"notebook": "04", "outputs": {
            "04_b.csv": provenance.file_sha256(figures / "04_b.csv")}}],
        runs_dir=runs, figures_dir=figures, finished=time.time())
    assert set(json.loads((figures / "provenance.json").read_text())["runs"]) == {"run2", "run3"}


def test_a_table_edited_after_its_run_is_caught(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "02_metrics.json").write_text('{"accuracy": 0.9}')
    provenance.record_outputs(
        _record("r"), [{"notebook": "02", "outputs": {
            "02_metrics.json": provenance.file_sha256(figures / "02_metrics.json")}}],
        runs_dir=tmp_path, figures_dir=figures, finished=time.time())
    assert provenance.table_run(figures, "02_metrics.json")["matches"]
    (figures / "02_metrics.json").write_text('{"accuracy": 0.99}')
    assert not provenance.table_run(figures, "02_metrics.json")["matches"]
    with pytest.raises(KeyError, match="03_x.csv"):
        provenance.table_run(figures, "03_x.csv")


def test_tiny_run_records_where_every_table_came_from(tiny_run):
    """`partnb run` on the tiny params: runs/provenance.json names the code, the params, the
    generated data (settings and content hash), the checkpoints and each notebook with the
    files it wrote; every table and figure of the run is traced with a matching hash."""
    tmp, results = tiny_run
    record = json.loads((tmp / "runs" / "provenance.json").read_text())
    assert record["code"]["versions"]["torch"] and record["code"]["versions"]["pythia8mc"]
    assert len(record["code"]["commit"]) == 40  # the checkout partnb runs from
    assert len(record["params"]["sha256"]) == 64
    data = record["data"]
    assert data["source"] == "generate" and len(data["content_sha256"]) == 64
    assert data["generated_with"]["seed"] == yaml.safe_load((PARAMS / "tiny.yaml").read_text())["seed"]
    assert {"model", "random_init"} <= set(record["checkpoints"])
    assert [b["notebook"] for b in record["notebooks"]] == [r.notebook for r in results]
    figures = tmp / "figures"
    written = {p.name for p in figures.iterdir() if p.name != "provenance.json"
               and p.suffix in (".csv", ".json", ".png", ".pdf")}
    assert written
    for name in written:
        traced = provenance.table_run(figures, name)
        assert traced["matches"], name
        assert traced["run_id"] == record["run_id"]
    by_notebook = {b["notebook"]: b["outputs"] for b in record["notebooks"]}
    assert "02_metrics.json" in by_notebook["02_training"]
    assert all(name.startswith(book[:2]) for book, outs in by_notebook.items() for name in outs)


def test_an_unchanged_figure_is_rewritten_byte_for_byte(tmp_path):
    """PDFs carry no creation date, so rerunning an unchanged figure leaves its bytes (and its
    recorded hash) as they were."""
    import matplotlib.pyplot as plt

    from partnb.outputs import save_figure

    hashes = []
    for _ in range(2):
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        save_figure(fig, tmp_path, "f")
        hashes.append({s: provenance.file_sha256(tmp_path / f"f.{s}") for s in ("pdf", "png")})
        time.sleep(1.1)  # a date written to the second would differ now
    assert hashes[0] == hashes[1]


def test_figures_index_keeps_each_notebooks_own_time(tmp_path):
    """The figures' provenance.json records the run time of the notebook that wrote the
    committed outputs, so the reference site shows it instead of a bound."""
    import json

    from partnb.provenance import record_outputs

    runs, figures = tmp_path / "runs", tmp_path / "figures"
    runs.mkdir()
    first = {"run_id": "aaa", "started": "2026-11-30T01:00:00Z"}
    record_outputs(first, [{"notebook": "03_x", "seconds": 12.5, "status": "ok", "outputs": {"03_t.csv": "s1"}},
                           {"notebook": "04_y", "seconds": 7.0, "status": "ok", "outputs": {"04_t.csv": "s2"}}],
                   runs_dir=runs, figures_dir=figures, finished=1e9)
    second = {"run_id": "bbb", "started": "2026-11-30T02:00:00Z"}
    record_outputs(second, [{"notebook": "04_y", "seconds": 9.25, "status": "ok", "outputs": {"04_t.csv": "s3"}},
                            {"notebook": "05_z", "seconds": 1.0, "status": "error", "outputs": {}}],
                   runs_dir=runs, figures_dir=figures, finished=1e9)
    index = json.loads((figures / "provenance.json").read_text())
    assert index["notebooks"] == {"03_x": {"seconds": 12.5, "status": "ok", "run_id": "aaa"},
                                  "04_y": {"seconds": 9.25, "status": "ok", "run_id": "bbb"}}
    assert set(index["runs"]) == {"aaa", "bbb"}
