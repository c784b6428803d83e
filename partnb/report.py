"""A static HTML site of executed runs: ``partnb report params/<dataset>.yaml [...] [--out DIR]``.

The site (docs/report.md) has

* a landing page with the papers' claims beside the runs' own numbers, each judged
  "reproduced" or "not reproduced" by a rule written under the claim (:func:`claims_table`;
  every number is read from a table the run wrote or from :mod:`partnb.reference`), the runs
  with their provenance in one line each, and the run time of every notebook;
* one page per executed notebook (``<output.runs>/NN_*.ipynb``, and the comparison notebook 08
  of ``partnb compare`` when it exists): its narrative, its code folded into ``<details>`` (or
  shown), its figures and printed tables, links to the tables it wrote (each checked against
  the hash its run recorded), its provenance (:mod:`partnb.provenance`), and navigation between
  notebooks and runs;
* the documentation pages (``docs/*.md``) that the notebooks cite, so their links resolve.

The cells are converted by nbconvert's ``HTMLExporter`` with a small template of ours
(``report_assets/templates/partnb_cells``) on nbconvert's classic cell markup; the page frame
is Jinja2. Nothing on a page comes from the network: one local style sheet, system fonts, no
script at all (math becomes MathML at build time, with ``latex2mathml``; browsers draw it
natively), so the site opens from ``file://`` and serves from any static host.

Bad input (no executed run, a missing notebook, an ``--out`` that is a file or a foreign
directory) raises :class:`ReportError` before anything is written; the site is built in a
temporary folder beside ``--out`` and renamed into place, so a stopped build leaves no half site.
"""

from __future__ import annotations

import calendar
import csv
import html
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import reference
from .provenance import PROVENANCE_FILE, file_sha256

__all__ = ["CODE_MODES", "SITE_MARKER", "ReportError", "RunSource", "NotebookSource", "Site",
           "build_site", "check_out_dir", "claims_table", "collect_comparison", "collect_run",
           "notebook_body", "render_markdown", "runtime_table"]

ASSETS = Path(__file__).resolve().parent / "report_assets"
#: the checkout's docs (absent in an installed wheel: the site then has no docs pages)
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
NOTEBOOK_SOURCE_DIR = Path(__file__).resolve().parent.parent / "notebooks"
CODE_MODES = ("folded", "shown")
#: written into every site; an existing ``--out`` directory is replaced only if it has it
SITE_MARKER = ".partnb-report"
DATASET_LABELS = {"jetclass": "JetClass", "toplandscape": "Top Landscape",
                  "quarkgluon": "Quark-Gluon"}
_TABLE_SUFFIXES = (".csv", ".json")
_NOTEBOOK_NAME = re.compile(r"^(\d\d)_\w+$")
#: slack between a notebook file's time and its run's start/end (file systems, clocks)
_TIME_SLACK = 120.0


class ReportError(ValueError):
    """A run, notebook or output directory that cannot make a site (names it)."""


# -- what the site is built from -------------------------------------------------------------

@dataclass
class NotebookSource:
    """One executed notebook and where its tables and provenance are."""

    stem: str
    path: Path
    nb: object                       # nbformat.NotebookNode
    figures: Path
    provenance: dict | None = None   # the record of the run that made it (see _notebook_record)
    provenance_origin: str = ""
    notes: list[str] = field(default_factory=list)
    #: reference mode (:mod:`partnb.report_reference`): the committed figures copied beside the
    #: page, the page's banner, and the outputs that no code cell names (HTML)
    images: list[Path] = field(default_factory=list)
    reference: str = ""
    extra_html: str = ""

    @property
    def number(self) -> str:
        return self.stem[:2]

    @property
    def title(self) -> str:
        """The first markdown heading of the notebook, else its name."""
        for cell in self.nb.cells:
            if cell.cell_type == "markdown":
                for line in cell.source.splitlines():
                    if line.startswith("#"):
                        return line.lstrip("#").strip()
        return self.stem

    @property
    def seconds(self) -> float | None:
        return None if self.provenance is None else self.provenance.get("seconds")

    @property
    def papermill_seconds(self) -> float | None:
        value = self.nb.metadata.get("papermill", {}).get("duration")
        return float(value) if isinstance(value, int | float) else None

    @property
    def failure(self) -> str | None:
        """Why the notebook failed (the run's status or the first error output), or None."""
        status = (self.provenance or {}).get("status")
        if status and status != "ok":
            return status.removeprefix("FAILED at ")
        for cell in self.nb.cells:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    count = cell.get("execution_count")
                    return f"cell {count}: {out.get('ename')}: {_first_line(out.get('evalue', ''))}"
        return None


@dataclass
class RunSource:
    """The executed notebooks of one params file (or the comparison)."""

    key: str                         # the folder of its pages in the site
    label: str
    dataset: str | None              # dataset family; None for the comparison
    params_file: str
    runs_dir: Path
    figures: Path
    notebooks: list[NotebookSource]
    expected: list[str]              # every notebook a complete run has, in order
    record: dict | None = None       # <runs>/provenance.json
    record_note: str = ""

    @property
    def missing(self) -> list[str]:
        have = {nb.stem for nb in self.notebooks}
        return [s for s in self.expected if s not in have]


@dataclass
class Site:
    """What :func:`build_site` made."""

    path: Path
    pages: list[str]
    seconds: float


def _first_line(text) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()
    return text.splitlines()[0] if text else ""


def _read_notebook(path: Path):
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several kinds for a truncated or foreign file
        raise ReportError(f"{path}: not a readable notebook ({type(exc).__name__}: "
                          f"{_first_line(exc)})") from None
    code = [c for c in nb.cells if c.cell_type == "code"]
    if "papermill" not in nb.metadata and not any(c.get("execution_count") for c in code):
        raise ReportError(f"{path}: not an executed notebook (no cell has run); "
                          "run it with `partnb run`")
    return nb


def _load_json(path: Path) -> tuple[dict | None, str]:
    """(content, "") or (None, why) for an optional JSON file."""
    if not path.is_file():
        return None, f"{path.name} not found"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"{path} unreadable ({_first_line(exc)})"
    return (data, "") if isinstance(data, dict) else (None, f"{path} is not a JSON object")


def _parse_time(text) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return None


def _notebook_record(stem: str, path: Path, record: dict | None, index: dict | None,
                     ) -> tuple[dict | None, str, list[str]]:
    """(provenance, origin, notes) of one executed notebook.

    First the run record ``<runs>/provenance.json`` if it lists the notebook (with its time
    and outputs); else the figures index ``<figures>/provenance.json``, whose run wrote this
    notebook's tables (no time recorded there); else nothing."""
    notes = []
    if record:
        entry = next((n for n in record.get("notebooks", []) if n.get("notebook") == stem), None)
        if entry is not None:
            prov = {k: v for k, v in record.items() if k != "notebooks"}
            prov.update({"seconds": entry.get("seconds"), "status": entry.get("status"),
                         "outputs": entry.get("outputs", {})})
            start, end = _parse_time(record.get("started")), _parse_time(record.get("finished"))
            mtime = path.stat().st_mtime
            if start is not None and end is not None and not (
                    start - _TIME_SLACK <= mtime <= end + _TIME_SLACK):
                notes.append(f"The executed notebook was written at {_iso(mtime)}, outside this "
                             f"run ({record.get('started')} to {record.get('finished')}): it may "
                             "come from another run.")
            return prov, "the run's provenance.json", notes
    if index:
        runs = [o.get("run_id") for o in index.get("outputs", {}).values()
                if o.get("notebook") == stem]
        if runs:
            run_id = Counter(runs).most_common(1)[0][0]
            run = index.get("runs", {}).get(run_id)
            if run is not None:
                outputs = {name: o.get("sha256") for name, o in index["outputs"].items()
                           if o.get("notebook") == stem and o.get("run_id") == run_id}
                prov = {**run, "run_id": run_id, "seconds": None, "status": None,
                        "outputs": outputs}
                notes.append("This notebook is not in the latest run's record; its provenance is "
                             "that of the run that wrote its tables (figures' provenance.json), "
                             "which keeps no run time.")
                return prov, "the figures' provenance.json", notes
    return None, "", notes


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _executed_notebooks(runs_dir: Path) -> list[Path]:
    return sorted(p for p in runs_dir.glob("[0-9][0-9]_*.ipynb") if _NOTEBOOK_NAME.match(p.stem))


def _expected_notebooks() -> list[str]:
    from .runner import list_notebooks

    try:
        return [p.stem for p in list_notebooks()]
    except OSError:
        return []


def collect_run(params_file: str | os.PathLike, *, partial: bool = False,
                expected: Sequence[str] | None = None) -> RunSource:
    """Read the executed notebooks of one params file's run and their provenance.

    Args:
        params_file: the params YAML of the run (its ``output.runs`` and ``output.figures``).
        partial: accept a run in which some notebooks have no executed copy (their pages say
            "not run"); by default each of ``expected`` must be there.
        expected: the notebooks of a complete run (default: the project's, 08 excluded).

    Raises:
        ReportError: no executed notebook, a missing or unreadable one (naming it).
    """
    from .params import load_params
    from .runner import COMPARISON_NOTEBOOK

    params = load_params(params_file)
    runs_dir, figures = Path(params.output.runs), Path(params.output.figures)
    found = [p for p in _executed_notebooks(runs_dir) if p.stem != COMPARISON_NOTEBOOK] \
        if runs_dir.is_dir() else []
    if not found:
        raise ReportError(f"{params_file}: no executed notebook in {runs_dir} (run "
                          f"`partnb run {params_file}` first, or build the site of the "
                          "committed reference outputs with --reference)")
    expected = list(_expected_notebooks() if expected is None else expected)
    have = {p.stem for p in found}
    missing = [s for s in expected if s not in have]
    if missing and not partial:
        numbers = ",".join(s[:2] for s in missing)
        raise ReportError(
            f"{params_file}: {runs_dir / (missing[0] + '.ipynb')} missing"
            + (f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else "")
            + f"; run `partnb run {params_file} --only {numbers}`, or build without "
              "them with --partial")
    record, record_note = _load_json(runs_dir / PROVENANCE_FILE)
    index, _ = _load_json(figures / PROVENANCE_FILE)
    notebooks = []
    for path in found:
        nb = _read_notebook(path)
        prov, origin, notes = _notebook_record(path.stem, path, record, index)
        notebooks.append(NotebookSource(path.stem, path, nb, figures, prov, origin, notes))
    family = params.dataset.name
    source = "generated" if params.dataset.source == "generate" else "files"
    return RunSource(key=params.name, label=f"{params.name} ({DATASET_LABELS.get(family, family)}, "
                     f"{source})", dataset=family, params_file=_display_path(params_file, params.root),
                     runs_dir=runs_dir, figures=figures, notebooks=notebooks,
                     expected=sorted(set(expected) | have), record=record,
                     record_note=record_note)


def collect_comparison(params_files: Sequence[str | os.PathLike]) -> RunSource | None:
    """The executed comparison notebook (``partnb compare``) beside the first params' runs, or
    None where there is none."""
    from .params import load_params
    from .runner import COMPARISON_NOTEBOOK, comparison_dir

    params_list = [load_params(p) for p in params_files]
    figures, runs = comparison_dir(params_list)
    path = runs / f"{COMPARISON_NOTEBOOK}.ipynb"
    if not path.is_file():
        return None
    nb = _read_notebook(path)
    parameters = nb.metadata.get("papermill", {}).get("parameters", {})
    if parameters.get("output_dir"):
        figures = Path(parameters["output_dir"])
    record, note = _load_json(runs / PROVENANCE_FILE)
    prov, origin, notes = _notebook_record(path.stem, path, record, None)
    root = params_list[0].root
    compared = [_display_path(p, root) for p in parameters.get("params_files", [])]
    return RunSource(key="comparison", label="comparison (08)", dataset=None,
                     params_file=", ".join(compared), runs_dir=runs, figures=figures,
                     notebooks=[NotebookSource(path.stem, path, nb, figures, prov, origin, notes)],
                     expected=[path.stem], record=record, record_note=note)


def _display_path(path, root) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


# -- markdown, math and links ----------------------------------------------------------------

def _slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = html.unescape(re.sub(r"<[^>]+>", "", text)).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@dataclass
class LinkContext:
    """How relative links of one markdown source become site links.

    Args:
        base: the folder the source's relative links start from (``notebooks/``, ``docs/``).
        root: the site root relative to the page (``"../../"``).
        docs: names (stems) of the docs pages the site has.
    """

    base: Path
    root: str
    docs: frozenset = frozenset()
    slugs: Counter = field(default_factory=Counter)

    def href(self, url: str) -> tuple[str | None, str]:
        """(site href or None where the target is not in the site, repository path)."""
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url) or url.startswith("#") or not url:
            return url, ""
        path, _, fragment = url.partition("#")
        target = (self.base / path).resolve()
        if (target.suffix == ".md" and target.parent == DOCS_DIR.resolve()
                and target.stem in self.docs):
            return f"{self.root}docs/{target.stem}.html" + (f"#{fragment}" if fragment else ""), ""
        try:
            shown = target.relative_to(DOCS_DIR.resolve().parent).as_posix()
        except ValueError:
            shown = path
        return None, shown

    def anchor(self, text: str) -> str:
        slug = _slug(text)
        n = self.slugs[slug]
        self.slugs[slug] += 1
        return slug if n == 0 else f"{slug}-{n}"


def _math(tex: str, display: str) -> str:
    try:
        from latex2mathml.converter import convert
    except ImportError:  # pragma: no cover - a dependency; the TeX stays readable
        return f'<code class="math">{html.escape(tex)}</code>'
    try:
        return convert(tex, display=display)
    except Exception:  # latex2mathml raises its own kinds for TeX it does not know
        return f'<code class="math">{html.escape(tex)}</code>'


def _renderer_class():
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class SiteRenderer(IPythonRenderer):
        """nbconvert's markdown renderer with math as MathML, GitHub heading anchors and links
        rewritten for the site (see :class:`LinkContext`)."""

        def __init__(self, links: LinkContext, **kwargs):
            super().__init__(escape=False, **kwargs)
            self.links = links

        def inline_math(self, body: str) -> str:
            return _math(body, "inline")

        def block_math(self, body: str) -> str:
            return _math(body, "block")

        def latex_environment(self, name: str, body: str) -> str:
            return _math(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")

        def heading(self, text: str, level: int, **attrs) -> str:
            slug = self.links.anchor(text)
            return (f'<h{level} id="{html.escape(slug)}">{text}<a class="anchor-link" '
                    f'href="#{html.escape(slug)}">¶</a></h{level}>\n')

        def link(self, text: str, url: str, title: str | None = None) -> str:
            href, shown = self.links.href(url)
            if href is None:
                return f'<span class="repo-path" title="{html.escape(shown)} (in the repository)">{text}</span>'
            return super().link(text, href, title)

    return SiteRenderer


def render_markdown(text: str, links: LinkContext) -> str:
    """Markdown (with ``$math$``) as HTML for the site."""
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    return MarkdownWithMath(renderer=_renderer_class()(links)).render(text)


# -- one notebook's cells --------------------------------------------------------------------

def _exporter(code: str):
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import MarkdownWithMath
    from nbconvert.preprocessors import ExtractOutputPreprocessor

    renderer = _renderer_class()

    class SiteExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            resources = context.get("resources", {})
            cell = context.get("cell", {})
            return MarkdownWithMath(renderer=renderer(
                resources["partnb_links"], attachments=cell.get("attachments", {}),
                )).render(source)

    exporter = SiteExporter(template_name="partnb_cells",
                            extra_template_basedirs=[str(ASSETS / "templates")],
                            exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(ExtractOutputPreprocessor(
        enabled=True, output_filename_template="{unique_key}_{cell_index}_{index}{extension}"),
        enabled=True)
    return exporter


def notebook_body(nb, *, stem: str, links: LinkContext, code: str = "folded",
                  exporter=None) -> tuple[str, dict[str, bytes]]:
    """The HTML of a notebook's cells and the files of its figures (relative path -> bytes).

    Code cells are folded into ``<details>`` (``code="folded"``) or shown (``"shown"``);
    images are written beside the page in ``<stem>_files/``."""
    if code not in CODE_MODES:
        raise ReportError(f"--code {code!r}: one of {', '.join(CODE_MODES)}")
    exporter = exporter or _exporter(code)
    resources = {"unique_key": stem, "output_files_dir": f"{stem}_files", "partnb_code": code,
                 "partnb_links": links, "metadata": {"name": stem}}
    body, out = exporter.from_notebook_node(nb, resources=resources)
    return body, dict(out.get("outputs", {}))


# -- the landing page's numbers --------------------------------------------------------------

class _NoTable(LookupError):
    """A table or row a claim needs is not there (the message names it)."""


def _json_table(figures: Path, name: str) -> dict:
    path = figures / name
    try:
        return json.loads(path.read_text())
    except OSError:
        raise _NoTable(f"{name} missing") from None
    except ValueError:
        raise _NoTable(f"{name} unreadable") from None


def _csv_row(figures: Path, name: str, **match) -> dict:
    path = figures / name
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        raise _NoTable(f"{name} missing") from None
    for row in rows:
        if all(str(row.get(k, "")) == str(v) or (callable(v) and v(row.get(k, "")))
               for k, v in match.items()):
            return row
    raise _NoTable(f"{name}: no row " + ", ".join(f"{k}={getattr(v, 'label', v)}"
                                                 for k, v in match.items()))


def _num(row: dict, key: str, table: str) -> float:
    try:
        value = float(row[key])
    except (KeyError, TypeError, ValueError):
        raise _NoTable(f"{table}: no number in column {key}") from None
    if math.isnan(value):
        raise _NoTable(f"{table}: column {key} is NaN")
    return value


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}"


def _pm(x: float, err: float | None, decimals: int | None = None) -> str:
    """``x ± err``: 3 significant digits, or ``decimals`` places (accuracies); the error to 2
    significant digits."""
    text = _fmt(x) if decimals is None else f"{x:.{decimals}f}"
    if err is None or not math.isfinite(err):
        return text
    return f"{text} ± {_fmt(err, 2)}"


@dataclass
class ClaimCell:
    ours: str = ""
    paper: str = ""
    verdict: str = "no published number"
    sources: list[str] = field(default_factory=list)

    @property
    def verdict_class(self) -> str:
        return {"reproduced": "reproduced", "not reproduced": "not-reproduced"}.get(
            self.verdict, "none")


@dataclass
class Claim:
    claim: str
    rule: str
    evaluate: Callable[[str, Path], ClaimCell]


def _judge(ok: bool) -> str:
    return "reproduced" if ok else "not reproduced"


def _claim_accuracy(dataset: str, figures: Path) -> ClaimCell:
    table = "02_metrics.json"
    metrics = _json_table(figures, table)
    try:
        acc, n = float(metrics["accuracy"]), int(metrics["n_jets"])
    except (KeyError, TypeError, ValueError):
        raise _NoTable(f"{table}: no accuracy or n_jets") from None
    err = math.sqrt(acc * (1 - acc) / n) if n > 0 else float("nan")
    cell = ClaimCell(ours=f"{_pm(acc, err, 3)} ({n} jets)", sources=[table])
    published = reference.PART_PUBLISHED.get(dataset)
    if published:
        cell.paper = f"{published['accuracy']:.3f} ({published['source']})"
        cell.verdict = _judge(abs(acc - published["accuracy"]) <= max(0.02, 2 * err))
    return cell


def _claim_binary(dataset: str, figures: Path) -> ClaimCell:
    table = "03_attention_summary.csv"
    row = _csv_row(figures, table, model="trained", variant="correct", layer="all",
                   **{"class": "all"})
    frac = _num(row, "frac_rows_max_ge_0.8", table)
    err = float(row.get("frac_rows_max_ge_0.8_err") or "nan")
    cell = ClaimCell(ours=f"{_pm(frac, err)} of the rows", sources=[table])
    if dataset in ("jetclass", "quarkgluon"):
        cell.paper = "“nearly binary” (no published share in partnb/reference.py)"
        cell.verdict = _judge(frac > 0.5)
    elif dataset == "toplandscape":
        cell.paper = "less binary than JetClass and Quark-Gluon (see the comparison)"
        cell.verdict = "not judged here"
    return cell


def _claim_zero_u(dataset: str, figures: Path) -> ClaimCell:
    table = "06_ablation_verdict.json"
    v = _json_table(figures, table)
    try:
        acc, acc0, c_u = (float(v[k]) for k in ("accuracy_trained", "accuracy_zero_u", "collapse_u"))
    except (KeyError, TypeError, ValueError):
        raise _NoTable(f"{table}: no accuracy_trained, accuracy_zero_u or collapse_u") from None
    cell = ClaimCell(ours=f"{acc:.3f} → {acc0:.3f} (c_U = {c_u:.2f})", sources=[table])
    if dataset == "jetclass":
        cell.paper = (f"{reference.PART_PUBLISHED['jetclass']['accuracy']:.3f} → "
                      f"{reference.ZERO_U_PUBLISHED['accuracy']:.3f} (arXiv:2512.00210)")
        cell.verdict = _judge(c_u >= 0.5)
    return cell


def _claim_plain(dataset: str, figures: Path) -> ClaimCell:
    table = "06_ablation.csv"
    part = _csv_row(figures, table, model="trained", intervention="none")
    plain = _csv_row(figures, table, model="plain", intervention=_startswith("none"))
    a, b = _num(part, "accuracy", table), _num(plain, "accuracy", table)
    ea = float(part.get("accuracy_err") or "nan")
    eb = float(plain.get("accuracy_err") or "nan")
    cell = ClaimCell(ours=f"{_pm(b, eb, 3)} vs {_pm(a, ea, 3)}", sources=[table])
    published = reference.PART_PLAIN_PUBLISHED.get(dataset)
    if published:
        cell.paper = (f"{published['accuracy']:.3f} vs "
                      f"{reference.PART_PUBLISHED[dataset]['accuracy']:.3f} ({published['source']})")
        combined = math.hypot(ea, eb) if math.isfinite(ea) and math.isfinite(eb) else 0.0
        cell.verdict = _judge(a - b > combined)
    return cell


def _startswith(prefix: str):
    def match(value: str) -> bool:
        return str(value).startswith(prefix)

    match.label = f"{prefix}…"
    return match


def _claim_rates(dataset: str, figures: Path) -> ClaimCell:
    table = "06_interaction_metrics.csv"
    row = _csv_row(figures, table, model="trained", pair_features="float32")
    d, n = _num(row, "rate_D", table), _num(row, "rate_N", table)
    ed = float(row.get("rate_D_err") or "nan")
    en = float(row.get("rate_N_err") or "nan")
    cell = ClaimCell(ours=f"D {_pm(d, ed)}, N {_pm(n, en)}", sources=[table])
    if dataset == "jetclass":
        pub = reference.INTERACTION_PUBLISHED
        cell.paper = f"D {pub['rate_D']}, N {pub['rate_N']} ({pub['source']})"
        within = [0.5 <= ours / theirs <= 2 for ours, theirs in ((d, pub["rate_D"]),
                                                                 (n, pub["rate_N"]))]
        cell.verdict = _judge(all(within))
    return cell


def _claim_topk(dataset: str, figures: Path) -> ClaimCell:
    table = "07_topk.csv"
    one = _num(_csv_row(figures, table, source="partnb", k="1"), "accuracy", table)
    full = _num(_csv_row(figures, table, source="partnb", k="all"), "accuracy", table)
    cell = ClaimCell(ours=f"{one:.3f} of {full:.3f}", sources=[table])
    if dataset == "jetclass":
        rows = reference.TOPK_PUBLISHED["rows"]
        p1, pall = rows[1]["accuracy"], rows["all"]["accuracy"]
        cell.paper = f"{p1:.3f} of {pall:.3f} ({reference.TOPK_PUBLISHED['source']})"
        cell.verdict = _judge(full > 0 and abs(one / full - p1 / pall) <= 0.05)
    return cell


#: the claims of the landing page, in the README's order
CLAIMS = (
    Claim("ParT tags the jets: accuracy on the test split (ParT paper, Tables 2–4)",
          "reproduced if |ours − published| ≤ max(0.02, 2σ), σ the binomial error of ours",
          _claim_accuracy),
    Claim("Attention is nearly binary (arXiv:2512.00210): share of query rows whose largest "
          "weight is ≥ 0.8, trained model, the attention the forward pass computes",
          "reproduced if more than half of the rows are binary (> 0.5, the reading of notebook "
          "08); judged for JetClass and Quark-Gluon, where the paper makes the claim",
          _claim_binary),
    Claim("Setting U := 0 at inference collapses the tagger (arXiv:2512.00210, JetClass): "
          "accuracy trained → U := 0",
          "reproduced if the relative collapse c_U = (acc − acc_U:=0) / (acc − chance) ≥ 0.5, "
          "as notebook 06 judges it",
          _claim_zero_u),
    Claim("ParT-plain (trained without U) is slightly below ParT (arXiv:2512.00210, JetClass): "
          "accuracy ParT-plain vs ParT",
          "reproduced if ParT-plain is below ParT by more than their combined statistical error",
          _claim_plain),
    Claim("U seldom changes where a head looks (arXiv:2512.00210, JetClass): "
          "interaction-dependent rate D and non-binary rate N",
          "reproduced if both rates lie within a factor 2 of the published ones",
          _claim_rates),
    Claim("Hard attention keeps most of the accuracy (Wang et al., Table 1, JetClass): "
          "accuracy with top-k, k = 1, of the accuracy with all keys",
          "reproduced if the share kept, acc(k = 1) / acc(all), is within 0.05 of the "
          "published share",
          _claim_topk),
)


def claims_table(runs: Sequence[tuple[str, Path]],
                 table_href: Callable[[int, str], str | None] | None = None,
                 executed: Sequence[set[str]] | None = None) -> list[dict]:
    """The landing page's claims: one row per claim of :data:`CLAIMS`, one cell per run.

    Args:
        runs: (dataset family, figures directory) of each run.
        table_href: link of table ``name`` of run ``i`` in the site (None: no link).
        executed: per run, the numbers ("02", ...) of its executed notebooks; a table whose
            notebook is not among them is marked (it comes from an earlier run).

    Returns:
        rows ``{"claim", "rule", "cells"}``; a cell has ``ours``, ``paper``, ``verdict``
        ("reproduced", "not reproduced", "no published number", or why there is no number),
        ``verdict_class`` and ``sources`` (``{"name", "href"}``).
    """
    rows = []
    for claim in CLAIMS:
        cells = []
        for i, (dataset, figures) in enumerate(runs):
            try:
                cell = claim.evaluate(dataset, Path(figures))
            except _NoTable as exc:
                cell = ClaimCell(ours="—", verdict=f"no number: {exc}")
            cells.append({"ours": cell.ours, "paper": cell.paper, "verdict": cell.verdict,
                          "verdict_class": cell.verdict_class,
                          "sources": [{"name": s, "href": table_href(i, s) if table_href else None,
                                       "note": "" if executed is None or s[:2] in executed[i] else
                                       f"notebook {s[:2]} has no executed copy in this run"}
                                      for s in cell.sources]})
        rows.append({"claim": claim.claim, "rule": claim.rule, "cells": cells})
    return rows


def _seconds_text(s: float) -> str:
    return f"{s:.1f}" if s < 10 else f"{s:.0f}"


def runtime_table(runs: Sequence[RunSource],
                  page_href: Callable[[RunSource, NotebookSource], str] | None = None) -> dict:
    """Seconds of every notebook of every run (rows: notebooks; columns: runs): the run's
    recorded time (:mod:`partnb.provenance`, training included), else papermill's own duration
    from the executed notebook (marked †)."""
    stems = sorted({s for run in runs for s in run.expected}
                   | {nb.stem for run in runs for nb in run.notebooks})
    rows, totals, papermill_used = [], [0.0] * len(runs), False
    marked = [False] * len(runs)
    for stem in stems:
        cells = []
        for j, run in enumerate(runs):
            nb = next((n for n in run.notebooks if n.stem == stem), None)
            if nb is None:
                cells.append({"text": "not run", "css": "missing", "href": None})
                continue
            seconds, text = nb.seconds, None
            if seconds is None and nb.papermill_seconds is not None:
                seconds, papermill_used, marked[j] = nb.papermill_seconds, True, True
                text = f"{_seconds_text(seconds)} †"
            if seconds is None:
                text = "?"
            else:
                totals[j] += seconds
                text = text or _seconds_text(seconds)
            failed = nb.failure is not None
            cells.append({"text": text + (" ✗ failed" if failed else ""),
                          "css": "failed" if failed else "",
                          "href": page_href(run, nb) if page_href else None})
        rows.append({"stem": stem, "title": stem, "cells": cells})
    total_text = [(_seconds_text(t) + (" †" if m else "")) if t else "—"
                  for t, m in zip(totals, marked, strict=True)]
    return {"rows": rows, "totals": total_text, "papermill_used": papermill_used}


# -- provenance as the page shows it ---------------------------------------------------------

def _short(sha: str | None, n: int = 16) -> str:
    return f"{sha[:n]}…" if sha else "not recorded"


def provenance_items(nb: NotebookSource) -> list[tuple[str, str]]:
    """(label, value) pairs of a notebook's provenance for its page (empty when none)."""
    p = nb.provenance
    if not p:
        return []
    code, params, data = p.get("code", {}), p.get("params", {}), p.get("data", {})
    versions = code.get("versions", {}) or {}
    items = [("run id", str(p.get("run_id", "not recorded"))),
             ("recorded in", nb.provenance_origin)]
    if p.get("started"):
        items.append(("run", f"{p.get('started')} to {p.get('finished', '?')}"))
    if p.get("seconds") is not None:
        items.append(("run time of this notebook", f"{_seconds_text(float(p['seconds']))} s"
                      + (f" ({p['status']})" if p.get("status") else "")))
    commit = code.get("commit")
    dirty = code.get("dirty")
    items.append(("code commit", (commit or "not a git checkout")
                  + {True: " + uncommitted changes (partnb, notebooks, params or pyproject)",
                     False: " (clean)"}.get(dirty, "")))
    items.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v)))
    items.append(("params", f"{params.get('file', '?')} (sha256 {_short(params.get('sha256'))}, "
                            f"values {params.get('values_hash', '?')})"))
    if "content_sha256" in data:
        gen = data.get("generated_with", {})
        items.append(("data", f"{data.get('dataset')} generated, {data.get('n_files')} files in "
                              f"{data.get('directory')}, seed {gen.get('seed')}; content sha256 "
                              f"{_short(data.get('content_sha256'))}"))
    elif "files" in data:
        files = data.get("files", [])
        first = files[0] if files else {}
        items.append(("data", f"{data.get('dataset')} from {len(files)} file(s), e.g. "
                              f"{first.get('path')} (sha256 {_short(first.get('sha256'))})"))
    else:
        items.append(("data", "not recorded"))
    ckpts = p.get("checkpoints", {}) or {}
    items.append(("checkpoints", "; ".join(f"{name}: {c.get('path')} (sha256 {_short(c.get('sha256'))})"
                                           for name, c in ckpts.items()) or "none recorded"))
    machine = p.get("machine", {}) or {}
    if machine:
        items.append(("machine", f"{machine.get('cores')} cores, {machine.get('torch_threads')} "
                                 f"torch threads, {machine.get('platform')}"))
    return items


def _table_rows(nb: NotebookSource, href_dir: str) -> list[dict]:
    recorded = (nb.provenance or {}).get("outputs", {}) or {}
    rows = []
    for path in _notebook_tables(nb):
        sha = file_sha256(path)
        want = recorded.get(path.name)
        if want is None:
            check, css = "not recorded", "hash-none"
        elif want == sha:
            check, css = "as recorded by the run", "hash-ok"
        else:
            check, css = "changed since the run", "hash-changed"
        rows.append({"name": path.name, "href": f"{href_dir}{path.name}",
                     "bytes": path.stat().st_size, "check": check, "css": css, "path": path})
    return rows


def _notebook_tables(nb: NotebookSource) -> list[Path]:
    if not nb.figures.is_dir():
        return []
    return sorted(p for p in nb.figures.iterdir()
                  if p.is_file() and p.suffix in _TABLE_SUFFIXES and p.name != PROVENANCE_FILE
                  and p.name.startswith(f"{nb.number}_"))


# -- the output directory --------------------------------------------------------------------

def check_out_dir(out: str | os.PathLike) -> Path:
    """The site folder ``out`` if a site can go there (nothing is created).

    Raises:
        ReportError: ``out`` (or a folder above it) is a file, it or its parent is not
            writable, or it is a non-empty directory that no earlier ``partnb report`` made.
    """
    from .outputs import output_dir_problem

    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out}: is a file, not a directory")
    for folder in (out, out.parent):
        problem = output_dir_problem(folder)
        if problem:
            raise ReportError(f"--out {out}: {problem}")
    if out.is_dir() and any(out.iterdir()) and not (out / SITE_MARKER).is_file():
        raise ReportError(f"--out {out}: a directory that holds other files (no {SITE_MARKER} "
                          "of an earlier report); give a new or empty directory")
    return out


def _publish(tmp: Path, out: Path) -> None:
    """Put the finished site ``tmp`` at ``out`` (replacing an earlier site) by renames."""
    if out.exists():
        old = out.with_name(f".{out.name}.partnb-old-{os.getpid()}")
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except BaseException:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def _remove_leftovers(out: Path) -> None:
    """Temporary folders of builds beside ``out`` whose process is gone (``kill -9``)."""
    for path in out.parent.glob(f".{out.name}.partnb-*-*"):
        match = re.fullmatch(rf"\.{re.escape(out.name)}\.partnb-(?:tmp|old)-(\d+)(?:-.*)?", path.name)
        if not match or not path.is_dir():
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass  # alive (another user's): leave it


# -- the site --------------------------------------------------------------------------------

def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(ASSETS)),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _style_sheet() -> str:
    from pygments.formatters import HtmlFormatter

    return ((ASSETS / "style.css").read_text() + "\n/* code highlighting (pygments) */\n"
            + HtmlFormatter(style="default").get_style_defs(".highlight") + "\n")


def _docs_pages() -> list[Path]:
    return sorted(DOCS_DIR.glob("*.md")) if DOCS_DIR.is_dir() else []


def _page_href(run: RunSource, nb: NotebookSource) -> str:
    return f"runs/{run.key}/{nb.stem}.html"


def _summary_line(nb: NotebookSource) -> str:
    p = nb.provenance
    if not p:
        return "No provenance recorded for this notebook."
    parts = [f"run {p.get('run_id')}"]
    commit = (p.get("code") or {}).get("commit")
    if commit:
        parts.append(f"commit {commit[:10]}" + (" (dirty)" if p["code"].get("dirty") else ""))
    data = p.get("data") or {}
    if data.get("content_sha256"):
        parts.append(f"data {data['content_sha256'][:12]}")
    if p.get("seconds") is not None:
        parts.append(f"{_seconds_text(float(p['seconds']))} s")
    return " · ".join(parts)


def build_site(params_files: Sequence[str | os.PathLike], *, out: str | os.PathLike | None = None,
               code: str = "folded", partial: bool = False, reference: bool = False,
               log=print) -> Site:
    """Build the static site of the runs of ``params_files`` (and their comparison) at ``out``
    (default ``build/site`` under the first params' project).

    Everything is read and checked first; the site is written to a temporary folder beside
    ``out`` and renamed into place (an earlier site there is replaced).

    Args:
        reference: build from the committed reference outputs (``output.figures``) and the
            notebooks' sources instead of the executed notebooks; nothing is executed
            (:mod:`partnb.report_reference`).

    Raises:
        ReportError: see :func:`collect_run` (:func:`~partnb.report_reference.collect_reference`
            with ``reference``) and :func:`check_out_dir`.
    """
    from .params import load_params

    t0 = time.perf_counter()
    if code not in CODE_MODES:
        raise ReportError(f"--code {code!r}: one of {', '.join(CODE_MODES)}")
    if not params_files:
        raise ReportError("give at least one params file")
    first = load_params(params_files[0])
    out = check_out_dir(out if out is not None else Path(first.root) / "build" / "site")
    if reference:
        from .report_reference import collect_reference, collect_reference_comparison

        runs = [collect_reference(p, partial=partial) for p in params_files]
    else:
        runs = [collect_run(p, partial=partial) for p in params_files]
    keys = Counter(r.key for r in runs)
    if any(n > 1 for n in keys.values()):
        dup = next(k for k, n in keys.items() if n > 1)
        raise ReportError(f"two params files have the name {dup!r}: "
                          + ", ".join(r.params_file for r in runs if r.key == dup))
    comparison = (collect_reference_comparison if reference else collect_comparison)(params_files)
    if comparison is not None and comparison.key in keys:
        comparison.key = "comparison-08"
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partnb-tmp-{os.getpid()}-", dir=out.parent))
    try:
        pages = _write_site(tmp, runs, comparison, code=code, log=log, reference=reference)
        (tmp / SITE_MARKER).write_text("made by partnb report; the folder is replaced by the next "
                                       "report built here\n")
        os.chmod(tmp, 0o755)
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Site(out, pages, time.perf_counter() - t0)


def _write_site(site: Path, runs: list[RunSource], comparison: RunSource | None, *, code: str,
                log, reference: bool = False) -> list[str]:
    from . import __version__
    from .report_reference import reference_runtime_table, runs_made_by

    env = _environment()
    all_runs = runs + ([comparison] if comparison else [])
    docs = _docs_pages()
    doc_names = frozenset(p.stem for p in docs)
    nav = {"runs": [{"key": r.key, "label": r.key if r.dataset else r.label,
                     "href": _page_href(r, r.notebooks[0])} for r in all_runs],
           "docs": bool(docs), "version": __version__, "reference": reference}
    (site / "assets").mkdir()
    (site / "assets" / "style.css").write_text(_style_sheet())
    pages = []
    exporter = _exporter(code)

    def write(rel: str, text: str) -> None:
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        pages.append(rel)

    for run in all_runs:
        folder = site / "runs" / run.key
        (folder / "tables").mkdir(parents=True)
        if run.record is not None:
            shutil.copy2(run.runs_dir / PROVENANCE_FILE, folder / PROVENANCE_FILE)
        toc = []
        for stem in run.expected:
            nb = next((n for n in run.notebooks if n.stem == stem), None)
            toc.append({"stem": stem, "href": f"{stem}.html" if nb else None,
                        "failed": bool(nb and nb.failure)})
        for i, nb in enumerate(run.notebooks):
            t = time.perf_counter()
            links = LinkContext(NOTEBOOK_SOURCE_DIR, "../../", doc_names)
            body, files = notebook_body(nb.nb, stem=nb.stem, links=links, code=code,
                                        exporter=exporter)
            for rel, data in files.items():
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            tables = _table_rows(nb, "tables/")
            for table in tables:
                shutil.copy2(table.pop("path"), folder / "tables" / table["name"])
            if nb.images:
                (folder / "figures").mkdir(exist_ok=True)
                for image in nb.images:
                    shutil.copy2(image, folder / "figures" / image.name)
            elsewhere = [{"key": other.key, "href": f"../{other.key}/{nb.stem}.html"}
                         for other in all_runs if other is not run
                         and any(n.stem == nb.stem for n in other.notebooks)]
            notes = list(nb.notes)
            if nb.provenance is None:
                reason = ("partnb compare records none" if run.dataset is None else
                          run.record_note or "the run's record does not name it")
            else:
                reason = ""
            if run.record is not None:
                notes.append("The figures' provenance (each output's hash and the records of the "
                             "runs that wrote them): provenance.json beside this page."
                             if reference else
                             "The run's full record: provenance.json beside this page.")
            page = {"stem": nb.stem, "title": nb.title, "failed": nb.failure,
                    "summary": _summary_line(nb), "tables": tables, "elsewhere": elsewhere,
                    "provenance": provenance_items(nb), "no_provenance": reason, "notes": notes,
                    "reference": nb.reference, "extra": nb.extra_html,
                    "prev": ({"stem": run.notebooks[i - 1].stem,
                              "href": f"{run.notebooks[i - 1].stem}.html"} if i > 0 else None),
                    "next": ({"stem": run.notebooks[i + 1].stem,
                              "href": f"{run.notebooks[i + 1].stem}.html"}
                             if i + 1 < len(run.notebooks) else None)}
            html_text = env.get_template("notebook.html.j2").render(
                title=f"{nb.title} — {run.key}", root="../../", nav=nav, current_run=run.key,
                run={"key": run.key, "label": run.label, "toc": toc}, page=page, body=body,
                code=code)
            write(f"runs/{run.key}/{nb.stem}.html", html_text)
            log(f"runs/{run.key}/{nb.stem}.html  ({time.perf_counter() - t:.1f} s)")

    doc_list = [{"name": p.stem, "href": f"{p.stem}.html"} for p in docs]
    for path in docs:
        links = LinkContext(DOCS_DIR, "../", doc_names)
        body = render_markdown(path.read_text(), links)
        write(f"docs/{path.stem}.html", env.get_template("doc.html.j2").render(
            title=f"docs/{path.name}", root="../", nav=nav, current_run="docs",
            docs=doc_list, page={"name": path.stem}, body=body))

    def table_href(i: int, name: str) -> str | None:
        path = site / "runs" / runs[i].key / "tables" / name
        return f"runs/{runs[i].key}/tables/{name}" if path.is_file() else None

    claims = claims_table([(r.dataset, r.figures) for r in runs], table_href,
                          [{nb.number for nb in r.notebooks} for r in runs])
    present = {r.dataset for r in runs}
    absent = [label for family, label in DATASET_LABELS.items() if family not in present]
    run_rows = []
    for r in runs:
        rec = r.record or {}
        run_rows.append({"key": r.key, "label": r.label, "href": _page_href(r, r.notebooks[0]),
                         "dataset_label": DATASET_LABELS.get(r.dataset, r.dataset),
                         "params_file": r.params_file, "n_executed": len(r.notebooks),
                         "n_expected": len(r.expected), "missing": r.missing,
                         "run_id": rec.get("run_id"),
                         "commit": (rec.get("code") or {}).get("commit"),
                         "dirty": (rec.get("code") or {}).get("dirty"),
                         "made_by": runs_made_by(r) if reference else []})
    comp = None
    if comparison:
        comp = {"href": _page_href(comparison, comparison.notebooks[0]),
                "params_files": comparison.params_file.split(", ") if comparison.params_file else [],
                "note": "no provenance recorded (partnb compare records none)"
                if comparison.notebooks[0].provenance is None else
                f"run {comparison.notebooks[0].provenance.get('run_id')}"}
    write("index.html", env.get_template("index.html.j2").render(
        title="What reproduces", root="", nav=nav, current_run="", runs=run_rows,
        claims=claims, absent=absent, comparison=comp,
        runtimes=(reference_runtime_table if reference else runtime_table)(runs, _page_href)))
    return pages
