"""Where outputs go and how they are written: every figure next to the table behind it.

One module owns the output paths (as showyourwork does): a figure ``NN_what`` of a run
named ``name`` is ``figures/<name>/NN_what.png`` and ``.pdf``, and its numbers are in
``figures/<name>/NN_what.csv`` (or ``.json``). Files are written to a temporary name and
renamed, so a reader (a test, the comparison notebook) never sees half a table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["OutputError", "figure_dir", "save_figure", "save_table", "save_json",
           "atomic_write_text", "markdown_table", "check_output_dir", "output_dir_problem"]


class OutputError(ValueError):
    """An output path cannot be created or written (names the setting and the path)."""


def output_dir_problem(path: str | os.PathLike) -> str | None:
    """Why the directory ``path`` cannot be created or written, or None: the nearest existing
    part of it is a regular file, or a directory without write permission. Nothing is created."""
    path = Path(path).absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{str(existing)!r} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{str(existing)!r} is not writable"
    return None


def check_output_dir(path: str | os.PathLike, setting: str) -> None:
    """Raise :class:`OutputError` naming ``setting`` if ``path`` cannot be a writable directory
    (checked before any work, so a refused run leaves nothing behind)."""
    problem = output_dir_problem(path)
    if problem:
        raise OutputError(f"{setting} = {str(path)!r}: {problem}")


def figure_dir(params) -> Path:
    """``output.figures`` of the params, created if needed."""
    path = Path(params.output.figures)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


#: file metadata that would change every rerun of an unchanged figure (the PDF creation
#: date), left out so that a rerun rewrites a figure's bytes only when its drawing changed
_STABLE_METADATA = {"pdf": {"CreationDate": None}}


def save_figure(fig, out_dir: str | os.PathLike, stem: str, *, formats: Sequence[str] = ("png", "pdf"),
                dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``out_dir/stem.<fmt>`` for each format (atomic), show it in the notebook
    when running in a Jupyter kernel (JupyterLab, papermill), and close it."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        tmp = out_dir / f".{stem}.tmp-{os.getpid()}.{fmt}"
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt,
                    metadata=_STABLE_METADATA.get(fmt))
        os.replace(tmp, path)
        paths.append(path)
    _show_in_notebook(fig)
    plt.close(fig)
    return paths


def _show_in_notebook(fig) -> None:
    """Display ``fig`` as a cell output when a Jupyter kernel runs the code (closing a figure
    stops the inline backend from showing it; outside a kernel nothing is shown)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return
    from IPython.display import display

    display(fig)


def save_table(rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, stem: str) -> Path:
    """Write a list of flat records as ``out_dir/stem.csv`` (columns in first-row order)."""
    import csv
    import io

    if not rows:
        raise ValueError(f"table {stem!r} has no rows")
    columns = list(rows[0])
    for r in rows[1:]:
        columns += [c for c in r if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _fmt(v) for k, v in r.items()})
    return atomic_write_text(Path(out_dir) / f"{stem}.csv", buf.getvalue())


def save_json(data: Any, out_dir: str | os.PathLike, stem: str) -> Path:
    """Write ``data`` as ``out_dir/stem.json`` (numpy scalars and arrays converted)."""
    return atomic_write_text(Path(out_dir) / f"{stem}.json",
                             json.dumps(data, indent=1, default=_to_builtin) + "\n")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                   digits: int = 4) -> str:
    """A Markdown table of flat records (for ``display(Markdown(...))`` in notebooks)."""
    columns = list(columns or rows[0])

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def _to_builtin(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
