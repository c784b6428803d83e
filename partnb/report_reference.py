"""The report site from the committed reference outputs: ``partnb report ... --reference``.

A fresh clone has no executed notebook (``runs/`` is not committed) but holds every reference
output: each notebook's figures and tables in ``figures/<dataset>/NN_*.png|csv|json``, with
``figures/<dataset>/provenance.json`` naming the run that wrote each file and its SHA-256, and
the comparison's in ``figures/comparison/08_*``. This module turns them into the pages of
:mod:`partnb.report` without executing anything (docs/report.md#the-reference-site):

* the narrative and the code come from the notebook's source ``notebooks/NN_slug.py``
  (jupytext), rendered by the same nbconvert exporter as an executed notebook;
* in place of cell outputs, each figure and table the notebook wrote for the dataset is shown
  after the code cell that names it (a string literal ``"NN_what"``, or ``f"NN_{...}"`` read as
  a pattern), labelled as a committed reference output with its run and its hash check; what
  no cell names closes the page;
* a notebook's provenance is that of the run that wrote most of its outputs, from the figures'
  ``provenance.json``; the landing page's run times are bounds from the runs' start and end,
  since that index keeps no per-notebook time.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from .provenance import PROVENANCE_FILE, file_sha256
from .report import (
    DATASET_LABELS,
    NOTEBOOK_SOURCE_DIR,
    NotebookSource,
    ReportError,
    RunSource,
    _display_path,
    _expected_notebooks,
    _load_json,
    _parse_time,
    _seconds_text,
)

__all__ = ["OUTPUT_SUFFIXES", "collect_reference", "collect_reference_comparison",
           "output_table_html", "place_outputs", "reference_outputs", "reference_runtime_table",
           "runs_made_by"]

#: what a notebook's committed outputs are made of (pdfs stay in the repository)
OUTPUT_SUFFIXES = (".png", ".csv", ".json")
#: rows of a table shown on a page; the whole table is a link away
TABLE_ROWS = 20
#: a string literal in a code cell that names an output: "03_attention_summary", f"03_heatmap_{x}"
#: (an f-string's {...} may hold the other quote: f"10_knobs_{m.replace('.', '')}")
_OUTPUT_LITERAL = re.compile(r"""(?<![\w'"])([rRfF]{0,2})"""
                             r"""(?:"(\d\d_(?:\{[^{}\n]*\}|[^"\n{])*)"|'(\d\d_(?:\{[^{}\n]*\}|[^'\n{])*)')""")


# -- which outputs, after which cell -------------------------------------------------------

def reference_outputs(figures: Path, number: str) -> list[Path]:
    """The committed figures and tables of notebook ``number`` ("03") in ``figures``."""
    if not figures.is_dir():
        return []
    return sorted(p for p in figures.iterdir()
                  if p.is_file() and p.suffix in OUTPUT_SUFFIXES and p.name != PROVENANCE_FILE
                  and p.name.startswith(f"{number}_"))


def _literal_pattern(prefix: str, text: str) -> re.Pattern:
    if "f" in prefix.lower():
        parts = re.split(r"\{[^{}]*\}", text)
        return re.compile(".+".join(re.escape(p) for p in parts))
    return re.compile(re.escape(text))


def place_outputs(cells, names: Sequence[str]) -> tuple[dict[int, list[str]], list[str]]:
    """Which code cell each output belongs after.

    Args:
        cells: the notebook's cells (``cell_type``, ``source``).
        names: file names of the notebook's outputs (``03_attention_summary.png``, ...).

    Returns:
        (cell index -> the output names placed after it, in the order the cell names them;
        the names that no code cell names).
    """
    placed: dict[int, list[tuple[int, str]]] = {}
    left = list(names)
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or not left:
            continue
        literals = [(m.start(), _literal_pattern(m.group(1), m.group(2) or m.group(3)))
                    for m in _OUTPUT_LITERAL.finditer(cell.source)]
        for name in list(left):
            stem = name.rsplit(".", 1)[0]
            hit = next((pos for pos, pattern in literals
                        if pattern.fullmatch(stem) or pattern.fullmatch(name)), None)
            if hit is not None:
                placed.setdefault(i, []).append((hit, name))
                left.remove(name)
    return {i: [n for _, n in sorted(found)] for i, found in placed.items()}, left


# -- a committed output as the page shows it -----------------------------------------------

def _cell_text(value) -> str:
    """A table cell: long floats to 6 significant digits, long text cut."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if re.fullmatch(r"-?\d+\.\d{7,}(?:[eE][-+]?\d+)?", text):
        return f"{float(text):.6g}"
    return text if len(text) <= 400 else text[:400] + " …"


def _html_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell_text(v))}</td>" for v in row)
                   + "</tr>" for row in rows)
    return f'<div class="table-scroll"><table class="data"><thead><tr>{head}</tr></thead>' \
           f"<tbody>{body}</tbody></table></div>"


def output_table_html(path: Path, max_rows: int = TABLE_ROWS) -> tuple[str, str]:
    """(HTML table of the first ``max_rows`` rows of a csv or json output, what is shown:
    "12 rows", "first 20 of 1484 rows"). A file that cannot be read says so in place."""
    try:
        if path.suffix == ".csv":
            with open(path, newline="") as f:
                reader = csv.reader(f)
                header, rows, n = next(reader, []), [], 0
                for row in reader:
                    n += 1
                    if len(rows) < max_rows:
                        rows.append(row)
        else:
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                header, items = ["key", "value"], list(data.items())
            elif isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
                header = list(dict.fromkeys(k for d in data for k in d))
                items = [[d.get(k, "") for k in header] for d in data]
            else:
                header, items = ["value"], [[v] for v in (data if isinstance(data, list) else [data])]
            n, rows = len(items), items[:max_rows]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f'<p class="table-unreadable">not readable: {html.escape(str(exc))}</p>', "unreadable"
    what = "key" if path.suffix == ".json" and header == ["key", "value"] else "row"
    shown = f"{n} {what}{'s' if n != 1 else ''}" if n <= max_rows else \
        f"first {max_rows} of {n} {what}s"
    return _html_table(header, rows), shown


def _run_text(run_id: str | None, index: dict | None) -> str:
    run = ((index or {}).get("runs") or {}).get(run_id) or {}
    commit = (run.get("code") or {}).get("commit")
    date = str(run.get("finished") or run.get("started") or "")[:10]
    parts = [f"run {run_id}"] + ([f"commit {commit[:10]}"] if commit else []) + \
        ([date] if date else [])
    return " · ".join(parts)


def _hash_check(path: Path, index: dict | None, index_note: str) -> tuple[str, str, str | None]:
    """(text, css class, run id) of one output against the figures' provenance.json."""
    if index is None:
        return f"not checked ({index_note})", "hash-none", None
    entry = (index.get("outputs") or {}).get(path.name)
    if not entry:
        return "not recorded in provenance.json", "hash-none", None
    if entry.get("sha256") == file_sha256(path):
        return "sha256 as recorded", "hash-ok", entry.get("run_id")
    return "changed since the run (sha256 differs from provenance.json)", "hash-changed", \
        entry.get("run_id")


def _output_blocks(names: Sequence[str], figures: Path, index: dict | None, index_note: str,
                   shown_dir: str) -> str:
    """The HTML of some committed outputs: per stem its figure, then its table(s)."""
    by_stem: dict[str, list[str]] = {}
    for name in names:
        by_stem.setdefault(name.rsplit(".", 1)[0], []).append(name)
    blocks = []
    for stem, group in by_stem.items():
        parts = []
        for name in sorted(group, key=lambda n: (not n.endswith(".png"), n)):
            path = figures / name
            check, css, run_id = _hash_check(path, index, index_note)
            origin = _run_text(run_id, index) if run_id else "run not recorded"
            label = (f'<span class="ref-tag">reference output</span> <code>{html.escape(shown_dir)}'
                     f"{html.escape(name)}</code> · {html.escape(origin)} · "
                     f'<span class="{css}">{html.escape(check)}</span>')
            if name.endswith(".png"):
                parts.append(f'<figure class="ref-figure"><img src="figures/{html.escape(name)}" '
                             f'alt="{html.escape(name)}"><figcaption>{label}'
                             "</figcaption></figure>")
            else:
                table, shown = output_table_html(path)
                if shown.startswith("first"):  # a long table: its head, folded
                    table = f"<details><summary>{shown}</summary>{table}</details>"
                parts.append(f'<div class="ref-table"><p class="ref-caption">{label} · {shown} · '
                             f'<a href="tables/{html.escape(name)}">{html.escape(name)}</a></p>'
                             f"{table}</div>")
        blocks.append(f'<div class="ref-output" id="out-{html.escape(stem)}">{"".join(parts)}</div>')
    return "\n".join(blocks)


# -- one notebook, one dataset ---------------------------------------------------------------

def _read_source(stem: str):
    import jupytext

    path = NOTEBOOK_SOURCE_DIR / f"{stem}.py"
    try:
        return path, jupytext.read(path)
    except OSError:
        raise ReportError(f"{path}: the notebook's source is missing (the reference site reads "
                          "its narrative and code from it)") from None


def _index_provenance(number: str, files: Sequence[Path], index: dict | None,
                      ) -> tuple[dict | None, list[str]]:
    """The provenance of a notebook's committed outputs: the run that wrote most of them."""
    if not index:
        return None, []
    outputs = index.get("outputs") or {}
    runs = [outputs[p.name].get("run_id") for p in files if p.name in outputs]
    if not runs:
        return None, []
    counts = Counter(runs)
    run_id = counts.most_common(1)[0][0]
    run = (index.get("runs") or {}).get(run_id)
    if run is None:
        return None, [f"provenance.json names run {run_id} but keeps no record of it."]
    # the notebook's own run time, where the index keeps it (runs since it does)
    book = next((b | {"stem": stem} for stem, b in (index.get("notebooks") or {}).items()
                 if stem.startswith(f"{number}_") and b.get("run_id") == run_id), {})
    prov = {**run, "run_id": run_id, "seconds": book.get("seconds"), "status": book.get("status"),
            "outputs": {name: o.get("sha256") for name, o in outputs.items()
                        if name.startswith(f"{number}_")}}
    notes = []
    if len(counts) > 1:
        notes.append("These outputs come from more than one run: " + "; ".join(
            f"{_run_text(r, index)} ({n} file{'s' if n != 1 else ''})" for r, n in counts.most_common())
            + ". The provenance below is that of the first.")
    return prov, notes


def _reference_notebook(stem: str, files: list[Path], figures: Path, index: dict | None,
                        index_note: str, shown_dir: str, banner: str) -> NotebookSource:
    from nbformat.v4 import new_output

    path, nb = _read_source(stem)
    placed, left = place_outputs(nb.cells, [p.name for p in files])
    for i, names in placed.items():
        nb.cells[i].outputs = [new_output("display_data", data={
            "text/html": _output_blocks(names, figures, index, index_note, shown_dir)})]
    prov, notes = _index_provenance(stem[:2], files, index)
    source = NotebookSource(stem, path, nb, figures, prov, f"{shown_dir}{PROVENANCE_FILE}", notes)
    source.images = [p for p in files if p.suffix == ".png"]
    source.reference = banner
    if left:
        source.extra_html = _output_blocks(left, figures, index, index_note, shown_dir)
    return source


def _banner(stem: str, shown_dir: str, params_file: str, prov: dict | None,
            index_note: str) -> str:
    made = (f"made by {_run_text(prov['run_id'], {'runs': {prov['run_id']: prov}})} as recorded in "
            f"{shown_dir}{PROVENANCE_FILE}" if prov else
            f"no provenance records which run made them ({index_note})")
    rerun = f"“partnb run {params_file}”" if params_file else "“partnb compare”"
    return (f"Committed reference outputs, not an executed notebook. This page shows the "
            f"notebook's source (notebooks/{stem}.py) and, after the cell that writes each, the "
            f"figures and tables committed in {shown_dir}, {made}. Printed cell outputs are not "
            f"kept in the repository and are not shown; {rerun} executes the notebook and "
            "“partnb report” without --reference shows the executed pages.")


def _collect(key: str, label: str, dataset: str | None, params_file: str, figures: Path,
             shown_dir: str, expected: list[str], *, partial: bool, what: str,
             rerun: str) -> RunSource:
    have = {stem: reference_outputs(figures, stem[:2]) for stem in expected}
    missing = [s for s in expected if not have[s]]
    if len(missing) == len(expected):
        where = "holds no committed outputs" if figures.is_dir() else "does not exist: no outputs"
        raise ReportError(f"{what}: {figures} {where} of its notebooks (no "
                          f"{'/'.join(s[:2] for s in expected)}_*.png, .csv or .json); "
                          f"run `{rerun}` to make them")
    if missing and not partial:
        numbers = ",".join(s[:2] for s in missing)
        raise ReportError(
            f"{what}: {figures} lacks the committed outputs of {', '.join(missing)} (no "
            f"{'/'.join(s[:2] for s in missing)}_*.png, .csv or .json there); run "
            f"`{rerun}{' --only ' + numbers if dataset else ''}`, or build without "
            f"{'them' if len(missing) > 1 else 'it'} with --partial")
    index, index_note = _load_json(figures / PROVENANCE_FILE)
    notebooks = []
    for stem in expected:
        if not have[stem]:
            continue
        prov, _ = _index_provenance(stem[:2], have[stem], index)
        notebooks.append(_reference_notebook(
            stem, have[stem], figures, index, index_note, shown_dir,
            _banner(stem, shown_dir, params_file if dataset else "", prov, index_note)))
    return RunSource(key=key, label=label, dataset=dataset, params_file=params_file,
                     runs_dir=figures, figures=figures, notebooks=notebooks, expected=expected,
                     record=index, record_note=index_note)


def collect_reference(params_file: str | os.PathLike, *, partial: bool = False,
                      expected: Sequence[str] | None = None) -> RunSource:
    """The pages of one params file's committed reference outputs (``output.figures``).

    Args:
        params_file: the params YAML of the dataset.
        partial: accept a figures folder that lacks some notebooks' outputs (their entries
            say "no committed outputs"); by default each of ``expected`` must have some.
        expected: the notebooks of a complete run (default: the project's, 08 excluded).

    Raises:
        ReportError: the figures folder lacks the outputs of a notebook (naming the folder and
            the notebooks), or a notebook's source is missing.
    """
    from .params import load_params

    params = load_params(params_file)
    figures = Path(params.output.figures)
    shown = _display_path(params_file, params.root)
    family = params.dataset.name
    source = "generated" if params.dataset.source == "generate" else "files"
    expected = list(_expected_notebooks() if expected is None else expected)
    return _collect(params.name, f"{params.name} ({DATASET_LABELS.get(family, family)}, {source})",
                    family, shown, figures, _display_path(figures, params.root) + "/", expected,
                    partial=partial, what=shown, rerun=f"partnb run {shown}")


def collect_reference_comparison(params_files: Sequence[str | os.PathLike]) -> RunSource | None:
    """The comparison notebook's committed outputs (``figures/comparison/08_*``), or None where
    there are none."""
    from .params import load_params
    from .runner import COMPARISON_NOTEBOOK, comparison_dir

    params_list = [load_params(p) for p in params_files]
    figures, _ = comparison_dir(params_list)
    if not reference_outputs(figures, COMPARISON_NOTEBOOK[:2]):
        return None
    root = params_list[0].root
    return _collect("comparison", "comparison (08)", None,
                    ", ".join(_display_path(p, root) for p in params_files), figures,
                    _display_path(figures, root) + "/", [COMPARISON_NOTEBOOK], partial=False,
                    what="comparison", rerun="partnb compare")


# -- the landing page's run times ------------------------------------------------------------

def _run_seconds(prov: dict | None) -> float | None:
    if not prov:
        return None
    start, end = _parse_time(prov.get("started")), _parse_time(prov.get("finished"))
    return None if start is None or end is None else end - start


def reference_runtime_table(runs: Sequence[RunSource],
                            page_href: Callable[[RunSource, NotebookSource], str] | None = None,
                            ) -> dict:
    """Run times for the reference site, in the shape of :func:`partnb.report.runtime_table`.

    A cell is the notebook's own time where the figures' provenance.json records it (runs
    since it does); otherwise the duration of the run that wrote the notebook's outputs, an
    upper bound ("≤"). The total of a dataset adds the notebooks' own times and, once per run,
    the durations used as bounds."""
    stems = sorted({s for run in runs for s in run.expected})
    rows, per_run = [], [dict() for _ in runs]
    for stem in stems:
        cells = []
        for j, run in enumerate(runs):
            nb = next((n for n in run.notebooks if n.stem == stem), None)
            if nb is None:
                cells.append({"text": "no outputs", "css": "missing", "href": None})
                continue
            own = (nb.provenance or {}).get("seconds")
            if own is not None:  # the notebook's own time, recorded by its run
                per_run[j][(nb.provenance["run_id"], stem)] = own
                text = _seconds_text(own)
            else:
                seconds = _run_seconds(nb.provenance)
                if seconds is not None:
                    per_run[j][(nb.provenance["run_id"], None)] = seconds
                text = "not recorded" if seconds is None else f"≤ {_seconds_text(seconds)}"
            cells.append({"text": text, "css": "missing" if text == "not recorded" else "",
                          "href": page_href(run, nb) if page_href else None})
        rows.append({"stem": stem, "title": stem, "cells": cells})
    def total(d: dict) -> str:
        ids = {run_id for run_id, _ in d}
        # a run's duration (a bound) already holds the own times of its notebooks
        seconds = sum(d[(r, None)] if (r, None) in d else
                      sum(v for (q, stem), v in d.items() if q == r) for r in ids)
        return f"{_seconds_text(seconds)} ({len(ids)} run{'s' if len(ids) != 1 else ''})"

    totals = [total(d) if d else "—" for d in per_run]
    return {"rows": rows, "totals": totals, "papermill_used": False}


def runs_made_by(run: RunSource) -> list[dict]:
    """The runs named by a dataset's committed outputs: id, commit, date and notebooks."""
    index = run.record or {}
    made: dict[str, set] = {}
    for nb in run.notebooks:
        for name in (nb.provenance or {}).get("outputs", {}):
            entry = (index.get("outputs") or {}).get(name) or {}
            if entry.get("run_id") and (run.figures / name).is_file():
                made.setdefault(entry["run_id"], set()).add(name[:2])
    rows = []
    for run_id, numbers in made.items():
        rec = (index.get("runs") or {}).get(run_id) or {}
        rows.append({"run_id": run_id, "commit": (rec.get("code") or {}).get("commit"),
                     "dirty": (rec.get("code") or {}).get("dirty"),
                     "date": str(rec.get("finished") or rec.get("started") or "")[:10],
                     "notebooks": ", ".join(sorted(numbers))})
    return sorted(rows, key=lambda r: (r["date"], r["run_id"]))
