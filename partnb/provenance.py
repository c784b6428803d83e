"""Where a run's numbers came from (docs/design.md#provenance).

``partnb run`` records, for every run of the notebooks on one params file,

* the code: git commit and whether the checkout had uncommitted changes, the partnb version,
  and the versions of Python and of the libraries that make the numbers;
* the params file (path and SHA-256 of its text) and the hash of its validated values;
* the data: for generated jets the generation settings and seed and a *content* hash over
  every branch of every file (two machines that generate with the same settings get the same
  hash although ROOT files carry their own creation time and UUID); for given files, each
  file's size and SHA-256 of its bytes;
* the checkpoints the notebooks load (final epoch, random initialisation, ParT-plain) with
  their SHA-256;
* the machine (cores, torch threads, platform), start and end, and each notebook's time and
  the tables and figures it wrote, each with its SHA-256.

The record goes to ``<output.runs>/provenance.json`` (the latest run). Beside the tables,
``<output.figures>/provenance.json`` maps every table and figure to the run that wrote it (its
``run_id`` and hash) and keeps the records of the runs still named there, so a table is traced
by its name and checked by its hash even after a partial rerun (``--only``) replaced some.

File hashes are cached in ``.partnb-cache/hashes.json`` under the project root by path, size
and modification time, so a rerun does not read a large dataset again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["LIBRARIES", "PROVENANCE_FILE", "content_hash", "file_sha256", "record_outputs",
           "run_record", "table_run"]

PROVENANCE_FILE = "provenance.json"
#: the libraries whose versions a record lists (import name -> distribution name)
LIBRARIES = {"torch": "torch", "numpy": "numpy", "pythia8mc": "pythia8mc", "fastjet": "fastjet",
             "uproot": "uproot", "awkward": "awkward", "papermill": "papermill",
             "scikit-learn": "scikit-learn", "matplotlib": "matplotlib"}
#: kinds of output a notebook writes beside its tables
_OUTPUT_SUFFIXES = (".csv", ".json", ".png", ".pdf")
_CHUNK = 1 << 20
#: what a ROOT file's jets are stored in (uproot 5.7 writes RNTuple by default)
_TREE_CLASSES = ("TTree", "ROOT::RNTuple")


def file_sha256(path: str | os.PathLike, cache: dict | None = None) -> str:
    """SHA-256 of the bytes of ``path`` (cached by path, size and mtime in ``cache``)."""
    path = Path(path).resolve()
    value = _cached(cache, path, "sha256")
    if value is None:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(_CHUNK), b""):
                digest.update(block)
        value = digest.hexdigest()
        _store(cache, path, "sha256", value)
    return value


def content_hash(files, cache: dict | None = None) -> str:
    """SHA-256 over the jets of ROOT files: per file (in name order) its tree (TTree or
    RNTuple) names and, per
    branch in name order, the branch name, the array's awkward form and its buffers. It does
    not depend on what a ROOT file stores besides the arrays (creation time, UUID,
    compression), so equal jets give equal hashes on any machine."""
    import awkward as ak
    import uproot

    digest = hashlib.sha256()
    for path in sorted((Path(f) for f in files), key=lambda p: p.name):
        per_file = _cached(cache, path, "content")
        if per_file is None:
            h = hashlib.sha256()
            with uproot.open(path) as root:
                trees = sorted({k.split(";")[0] for k, c in root.classnames().items()
                                if c in _TREE_CLASSES})
                if not trees:
                    raise ValueError(f"{path}: no TTree or RNTuple to hash")
                for name in trees:
                    tree = root[name]
                    h.update(name.encode())
                    for branch in sorted(tree.keys()):
                        array = ak.to_packed(tree[branch].array(library="ak"))
                        form, length, buffers = ak.to_buffers(array)
                        h.update(branch.encode() + form.to_json().encode() + str(length).encode())
                        for key in sorted(buffers):
                            h.update(key.encode() + bytes(memoryview(buffers[key])))
            per_file = h.hexdigest()
            _store(cache, path, "content", per_file)
        digest.update(path.name.encode() + per_file.encode())
    return digest.hexdigest()


def _cache_key(path: Path, kind: str) -> str:
    stat = path.stat()
    return f"{kind}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _cached(cache: dict | None, path: Path, kind: str) -> str | None:
    return None if cache is None else cache.get(_cache_key(path, kind))


def _store(cache: dict | None, path: Path, kind: str, value: str) -> None:
    if cache is not None:
        cache[_cache_key(path, kind)] = value


def _load_cache(root: Path) -> dict:
    path = root / ".partnb-cache" / "hashes.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(root: Path, cache: dict) -> None:
    from .outputs import atomic_write_text

    try:
        (root / ".partnb-cache").mkdir(exist_ok=True)
        atomic_write_text(root / ".partnb-cache" / "hashes.json", json.dumps(cache, indent=0))
    except OSError:
        pass  # a cache only: a read-only checkout hashes again next time


#: what "dirty" looks at: the code and settings, not the outputs a run writes (figures,
#: models: checkpoints are recorded by hash)
_CODE_PATHS = ("partnb", "notebooks", "params", "pyproject.toml")
#: the checkout partnb runs from (its commit is the code's, wherever the params file lies)
_CODE_ROOT = Path(__file__).resolve().parent.parent


def _git(root: Path) -> dict:
    """Commit of the checkout at ``root`` and whether its code or params differ from it
    (``None`` where partnb is not run from a git checkout, e.g. an installed wheel)."""
    def call(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()

    try:
        commit = call("rev-parse", "HEAD")
        dirty = bool(call("status", "--porcelain", "--untracked-files=no", "--", *_CODE_PATHS))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def _versions() -> dict:
    from importlib import metadata

    from . import __version__

    out = {"partnb": __version__, "python": platform.python_version()}
    for name, dist in LIBRARIES.items():
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _data(params, cache: dict, root: Path) -> dict:
    from .data import dataset_files

    ds = params.dataset
    files = dataset_files(params, generate=False)
    entry = {"dataset": ds.name, "source": ds.source, "n_files": len(files.files)}
    if ds.source == "generate":
        from .data.generate import GenerationConfig, output_dir

        config = GenerationConfig.from_params(params)
        entry.update({"generated_with": {"cache_key": config.cache_key(), "seed": params.seed,
                                         "jets_per_class": ds.jets_per_class,
                                         "jets_per_file": ds.jets_per_file,
                                         "classes": list(files.classes)},
                      "directory": _rel(output_dir(config, ds.cache_dir), root),
                      "content_sha256": content_hash(files.files, cache)})
    else:
        entry["files"] = [{"path": _rel(f, root), "bytes": Path(f).stat().st_size,
                           "sha256": file_sha256(f, cache)} for f in files.files]
    return entry


def _checkpoints(params, cache: dict, root: Path) -> dict:
    from .model.factory import checkpoint_path, plain_params

    found = {}
    for name, path in (("model", checkpoint_path(params)),
                       ("random_init", checkpoint_path(params, random_init=True)),
                       ("plain", checkpoint_path(plain_params(params)))):
        if Path(path).is_file():
            found[name] = {"path": _rel(path, root), "sha256": file_sha256(path, cache)}
    return found


def run_record(params, params_file: str | os.PathLike, *, started: float) -> dict:
    """Everything but the notebooks' part of a run's record (see the module docstring)."""
    import torch

    from .params import stable_hash

    root = Path(params.root)
    cache = _load_cache(root)
    params_file = Path(params_file)
    record = {
        "format": 1,
        "code": {**_git(_CODE_ROOT), "versions": _versions()},
        "params": {"file": _rel(params_file, root), "sha256": file_sha256(params_file),
                   "values_hash": stable_hash(params.to_dict())},
        "data": _data(params, cache, root),
        "checkpoints": _checkpoints(params, cache, root),
        "machine": {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "executable": sys.executable},
        "started": _iso(started),
    }
    _save_cache(root, cache)
    record["run_id"] = stable_hash({k: record[k] for k in ("code", "params", "data",
                                                             "checkpoints", "started")})
    return record


def _rel(path, root: Path) -> str:
    """``path`` relative to the project root when inside it (records compare across
    checkouts), else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def outputs_since(directory: Path, since: float) -> dict[str, str]:
    """Tables and figures of ``directory`` written at or after ``since`` -> SHA-256."""
    if not directory.is_dir():
        return {}
    return {p.name: file_sha256(p) for p in sorted(directory.iterdir())
            if p.suffix in _OUTPUT_SUFFIXES and p.name != PROVENANCE_FILE
            and p.stat().st_mtime >= since}


def record_outputs(record: dict, notebooks: list[dict], *, runs_dir: Path, figures_dir: Path,
                   finished: float) -> None:
    """Complete ``record`` with the notebooks (name, seconds, status, outputs) and the end
    time, write it to ``runs_dir/provenance.json``, and merge its outputs into
    ``figures_dir/provenance.json`` (see the module docstring). Both written atomically."""
    from .outputs import atomic_write_text

    record = {**record, "finished": _iso(finished), "notebooks": notebooks}
    atomic_write_text(Path(runs_dir) / PROVENANCE_FILE, json.dumps(record, indent=1) + "\n")
    path = Path(figures_dir) / PROVENANCE_FILE
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        index = {}
    outputs = dict(index.get("outputs", {}))
    runs = dict(index.get("runs", {}))
    books = dict(index.get("notebooks", {}))
    for book in notebooks:
        for name, sha in book.get("outputs", {}).items():
            outputs[name] = {"sha256": sha, "notebook": book["notebook"], "run_id": record["run_id"]}
        if book.get("outputs"):  # the run time of the notebook that wrote the committed outputs
            books[book["notebook"]] = {"seconds": book.get("seconds"), "status": book.get("status"),
                                       "run_id": record["run_id"]}
    runs[record["run_id"]] = {k: v for k, v in record.items() if k != "notebooks"}
    named = {o["run_id"] for o in outputs.values()}
    books = {k: v for k, v in books.items() if v["run_id"] in named}
    index = {"format": 1, "outputs": dict(sorted(outputs.items())),
             "notebooks": dict(sorted(books.items())),
             "runs": {k: v for k, v in runs.items() if k in named}}
    if outputs:
        Path(figures_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(index, indent=1) + "\n")


def table_run(figures_dir: str | os.PathLike, name: str) -> dict:
    """The record of the run that wrote table or figure ``name`` of ``figures_dir``, with
    ``"matches"`` (the file's hash today equals the recorded one).

    Raises:
        KeyError: no provenance names ``name`` (naming the file).
    """
    figures_dir = Path(figures_dir)
    path = figures_dir / PROVENANCE_FILE
    try:
        index = json.loads(path.read_text())
        entry = index["outputs"][name]
    except (OSError, ValueError, KeyError):
        raise KeyError(f"{figures_dir / name}: not named in {path}") from None
    run = index["runs"][entry["run_id"]]
    current = figures_dir / name
    return {**run, "run_id": entry["run_id"], "notebook": entry["notebook"],
            "matches": current.is_file() and file_sha256(current) == entry["sha256"]}
