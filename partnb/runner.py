"""Run the notebooks in batch with papermill: one params file, every notebook.

``partnb run params/<dataset>.yaml`` executes ``notebooks/NN_*.ipynb`` in order with the
params file injected as the ``params_file`` parameter and progress bars off, writes the
executed notebooks to ``output.runs`` and prints one line per notebook with its run time.
A failing notebook is named with the failing cell; the remaining notebooks still run and the
command exits non-zero at the end.

papermill shows nothing of a notebook while it runs, so the long steps run here first, with
their progress in the log: the data generation (files done / total, jets/s, every 30 s) and
the training a notebook would do (:data:`TRAINING_NOTEBOOKS`: one line per epoch with loss,
accuracy and jets/s). The notebook then finds the files and the checkpoint and loads them;
it trains nothing itself (training is a function of the params alone, wherever it runs).

A notebook's kernel is killed once its last cell has run (papermill's
``shutdown_kernel="immediate"``): nothing is left to do in it, and the graceful shutdown of a
kernel still running a cell (Ctrl-C, SIGTERM) printed an ipykernel traceback. ``kill -9`` of
``partnb run`` leaves no kernel behind either: ipykernel exits with its parent.

The comparison notebook (``08_dataset_comparison``) is not part of a per-dataset run: it reads
the tables that the runs of several params files wrote and overlays them
(:func:`run_comparison`; ``partnb compare`` or ``partnb run A.yaml B.yaml C.yaml --compare``).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import provenance

__all__ = ["NOTEBOOK_DIR", "KERNEL_NAME", "COMPARISON_NOTEBOOK", "TRAINING_NOTEBOOKS",
           "list_notebooks", "ensure_kernel", "run_notebooks", "run_comparison", "comparison_dir",
           "NotebookResult"]

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL_NAME = "partnb"
COMPARISON_NOTEBOOK = "08_dataset_comparison"
#: The notebooks that train a model when its checkpoint is missing (their parameter
#: ``train_if_missing`` / ``train_plain_if_missing`` defaults to True): ``"model"`` is the
#: params' model, ``"plain"`` ParT-plain (:func:`partnb.model.factory.plain_params`).
#: tests/test_notebooks.py checks this table against the notebooks' parameters.
TRAINING_NOTEBOOKS = {"02_training": "model", "05_eta_phi_attention": "model",
                      "06_interaction_ablation": "plain", "13_attention_signal": "model"}


@dataclass
class NotebookResult:
    notebook: str
    seconds: float
    output: Path
    error: str | None = None


def list_notebooks(only: list[str] | None = None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The ``NN_*.ipynb`` notebooks, in order; ``only`` picks by number or name.

    Raises:
        ValueError: an entry of ``only`` matches no notebook (naming it and the choices).
    """
    books = sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb")
                   if p.stem != COMPARISON_NOTEBOOK)
    if not only:
        return books
    chosen = []
    for key in only:
        match = [b for b in books if b.stem == key or b.stem.split("_", 1)[0] == key]
        if not match and key in (COMPARISON_NOTEBOOK, COMPARISON_NOTEBOOK[:2]):
            raise ValueError(f"--only {key}: {COMPARISON_NOTEBOOK} compares several datasets; run "
                             "`partnb compare A.yaml B.yaml ...` or `partnb run A.yaml B.yaml ... "
                             "--compare`")
        if not match:
            names = ", ".join(b.stem for b in books)
            raise ValueError(f"--only {key}: no such notebook (available: {names})")
        chosen += [m for m in match if m not in chosen]
    return sorted(chosen)


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Make sure a Jupyter kernel ``name`` running this Python exists (no NoSuchKernel)."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if name not in specs:
        from ipykernel.kernelspec import install

        install(kernel_name=name, display_name=name, prefix=sys.prefix)
    return name


def run_notebooks(params_file: str | os.PathLike, *, only: list[str] | None = None,
                  log=print) -> list[NotebookResult]:
    """Execute the notebooks for one params file; returns one result per notebook."""
    import papermill as pm

    from .params import load_params

    params_file = Path(params_file).resolve()
    params = load_params(params_file)
    books = list_notebooks(only)
    kernel = ensure_kernel()
    if params.dataset.source == "generate":
        # generate missing files here, with a progress line every 30 s, rather than silently
        # inside the first notebook (which then finds them cached)
        from .data import dataset_files

        dataset_files(params, progress=False, log=log)
    runs = Path(params.output.runs)
    runs.mkdir(parents=True, exist_ok=True)
    figures = Path(params.output.figures)
    started = time.time()
    results, notebooks = [], []
    for k, book in enumerate(books):
        out = runs / book.name
        if len(books) > 1:
            log(f"{book.stem:<28} ... ({k + 1}/{len(books)})")
        t0 = time.perf_counter()
        wall0 = time.time()
        error = None
        try:
            train_first(book.stem, params, log=log)
        except Exception as exc:  # reported like a failing notebook; the others still run
            error = f"training: {type(exc).__name__}: {_first_line(exc)}"
        else:
            try:
                _execute(book, out, {"params_file": str(params_file), "progress": False}, kernel)
            except pm.PapermillExecutionError as exc:
                error = (f"cell {exc.exec_count or exc.cell_index}: {exc.ename}: "
                         f"{_first_line(exc.evalue)}")
        seconds = time.perf_counter() - t0
        status = "ok" if error is None else f"FAILED at {error}"
        log(f"{book.stem:<28} {seconds:8.1f} s  {status}")
        results.append(NotebookResult(book.stem, seconds, out, error))
        # what this notebook wrote (a file's mtime may trail the clock by a tick)
        notebooks.append({"notebook": book.stem, "seconds": round(seconds, 2), "status": status,
                          "outputs": provenance.outputs_since(figures, wall0 - 0.05)})
    # where the numbers came from (partnb.provenance), once the checkpoints exist; a record
    # that cannot be made is reported, and the notebooks' results stand
    try:
        record = provenance.run_record(params, params_file, started=started)
        provenance.record_outputs(record, notebooks, runs_dir=runs, figures_dir=figures,
                                  finished=time.time())
    except Exception as exc:  # noqa: BLE001 - any failure is reported in one line
        log(f"provenance: not recorded ({type(exc).__name__}: {_first_line(exc)})")
    else:
        log(f"provenance: {runs / provenance.PROVENANCE_FILE} (run {record['run_id']})")
    return results


def train_first(notebook: str, params, *, log=print) -> bool:
    """Train what ``notebook`` would train (:data:`TRAINING_NOTEBOOKS`) if its checkpoint is
    missing, logging one line per epoch; True if it trained. A partial run resumes."""
    what = TRAINING_NOTEBOOKS.get(notebook)
    if what is None:
        return False
    from .model.factory import checkpoint_path, plain_params
    from .notebook import needs_training, trains_plain

    if what == "plain" and not checkpoint_path(params).exists():
        return False  # the notebook stops at the missing model before it trains ParT-plain
    if what == "plain" and not trains_plain(params):
        return False  # a given checkpoint: no ParT-plain is trained for it
    target = plain_params(params) if what == "plain" else params
    if not needs_training(target):
        return False
    import torch

    from .train import train

    name = f"{params.name} ParT-plain" if what == "plain" else params.name
    log(f"train {name} for {notebook}: {target.train.epochs} epochs into {target.output.models}")
    threads = torch.get_num_threads()  # train.threads sets them; the caller's come back
    try:
        train(target, progress=False, log=lambda line: log(f"train {name}: {line}"))
    finally:
        torch.set_num_threads(threads)
    return True


def comparison_dir(params_list) -> tuple[Path, Path]:
    """(figures, runs) directories of a comparison: ``comparison`` beside the first params'
    ``output.figures`` and ``output.runs`` (``figures/comparison``, ``runs/comparison``)."""
    first = params_list[0]
    return Path(first.output.figures).parent / "comparison", Path(first.output.runs).parent / "comparison"


def run_comparison(params_files, *, output: str | os.PathLike | None = None,
                   log=print) -> NotebookResult:
    """Execute ``08_dataset_comparison`` over the tables of several params files' runs.

    Args:
        params_files: the params files whose ``output.figures`` hold the tables to overlay.
        output: where the comparison's figures and tables go (default :func:`comparison_dir`).
    """
    import papermill as pm

    from .params import load_params

    paths = [Path(p).resolve() for p in params_files]
    params_list = [load_params(p) for p in paths]
    figures, runs = comparison_dir(params_list)
    figures = Path(output).resolve() if output else figures
    book = NOTEBOOK_DIR / f"{COMPARISON_NOTEBOOK}.ipynb"
    runs.mkdir(parents=True, exist_ok=True)
    out = runs / book.name
    t0 = time.perf_counter()
    error = None
    try:
        _execute(book, out, {"params_files": [str(p) for p in paths], "output_dir": str(figures),
                             "progress": False}, ensure_kernel())
    except pm.PapermillExecutionError as exc:
        error = f"cell {exc.exec_count or exc.cell_index}: {exc.ename}: {_first_line(exc.evalue)}"
    seconds = time.perf_counter() - t0
    log(f"{book.stem:<28} {seconds:8.1f} s  {'ok' if error is None else f'FAILED at {error}'}")
    return NotebookResult(book.stem, seconds, out, error)


def _execute(book: Path, out: Path, parameters: dict, kernel_name: str) -> None:
    """Execute one notebook with papermill, quietly, in the notebooks' folder. Its kernel
    and papermill talk over Unix sockets (``ipc``) instead of TCP on localhost: nothing
    listens on a network port, and ipykernel >= 7 no longer prints a warning about
    unencrypted TCP into every batch log.

    The sockets live in a fresh temporary directory, removed afterwards. jupyter_client's
    default names them ``kernel-ipc-<n>`` in the working directory, numbered from 1: two
    runs at once (two datasets in two shells) then connected to each other's kernels
    ("Invalid Signature"), and a killed run left the socket files in ``notebooks/``."""
    import papermill as pm
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="partnb-kernel-") as sockets:
        config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}})
        pm.execute_notebook(str(book), str(out), parameters=parameters, kernel_name=kernel_name,
                            cwd=str(book.parent), progress_bar=False, log_output=False,
                            shutdown_kernel="immediate", config=config)


def _first_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))
    return text.strip().splitlines()[0] if text.strip() else ""
