"""Read every supported jet file format into one in-memory representation, streaming.

All readers produce chunks in the layout documented in :mod:`partnb.data.schema`: an
``awkward.Array`` of records whose fields carry JetClass branch names (docs/datasets.md#the-common-jet-layout)

* jagged ``float32`` ``part_*`` fields (particles in the order stored in the file, which is
  pT-descending for every supported source; QuarkGluon NPZ files are re-sorted),
* scalar ``float32`` ``jet_*`` fields (always including ``jet_mass``: read where the file has
  it, else computed from the sum of the constituents' four-vectors with m^2 clamped at 0),
* an ``int32`` field ``label`` holding the weaver class index (docs/datasets.md#label-conventions, docs/pitfalls.md#pitfall-8-label-conventions).

Branches that a format does not carry are absent, never zero-filled.

Supported formats (see :func:`detect_format`, detection is by content):

``jetclass-root``
    JetClass ROOT files: tree ``tree``, ten one-hot ``label_*`` branches of mixed dtypes; the
    class index is the position of the set label in :data:`schema.JETCLASS_CLASSES` order.
``toplandscape-root`` / ``quarkgluon-root``
    Converted or generated TopLandscape / QuarkGluon ROOT files: tree ``tree`` with a single raw
    ``label`` branch (class index 0 iff raw == ``DATASETS[ds].raw_label_of_index0``, i.e.
    raw 1 = top resp. quark -> index 0). QuarkGluon is recognised by ``part_isChargedHadron``
    or ``part_pid``.
``toplandscape-parquet`` / ``quarkgluon-parquet``
    The awkward parquet files written by ParT's ``convert_{top,qg}_datasets.py`` (fields
    ``label``, ``jet_*``, ``part_*``); same label convention.
``toplandscape-h5``
    The original TopLandscape pandas HDF5 files (key ``table``; columns ``E_i``, ``PX_i``,
    ``PY_i``, ``PZ_i``, ``is_signal_new``). Converted on the fly like ParT's converter
    (docs/datasets.md#top-landscape), **except** that the last jet of each file is kept (the converter's
    ``[0:-1]`` slice drops it, docs/pitfalls.md#pitfall-9-the-converters-drop-the-last-jet).
``quarkgluon-npz``
    The original EnergyFlow QuarkGluon ``.npz`` files (``X`` of shape (N, M, 4) holding
    (pt, y, phi, pid), zero padded, and ``y``). Converted like ParT's converter (docs/datasets.md#quark-gluon),
    again keeping the last jet of each file. ``X`` is streamed out of the zip archive in row
    blocks and never loaded whole.

Bad input raises :class:`DataError` (a :class:`ValueError`) naming the file, and the
branch/column/key where relevant. Non-finite values in particle or jet columns are replaced
by 0 as weaver does (docs/features.md#missing-values-and-labels), with one :class:`RuntimeWarning` per file and branch.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
import pickle
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

from partnb.data.kinematics import pseudorapidity, wrap_phi
from partnb.data.schema import (
    DATASETS,
    JET_BRANCHES,
    JETCLASS_CLASSES,
    KINEMATIC_PARTICLE_BRANCHES,
    PARTICLE_BRANCHES,
    PID_PARTICLE_BRANCHES,
)

__all__ = [
    "DataError",
    "FORMATS",
    "SUPPORTED_EXTENSIONS",
    "check_dataset_files",
    "count_jets",
    "dataset_of_format",
    "detect_format",
    "expand_paths",
    "iterate_jets",
    "read_jets",
    "stale_temp_files",
]

PathSpec = str | os.PathLike | Sequence[str | os.PathLike]

#: Every format name :func:`detect_format` can return, mapped to its dataset family.
_FORMAT_DATASET = {
    "jetclass-root": "jetclass",
    "toplandscape-root": "toplandscape",
    "quarkgluon-root": "quarkgluon",
    "toplandscape-h5": "toplandscape",
    "quarkgluon-npz": "quarkgluon",
    "toplandscape-parquet": "toplandscape",
    "quarkgluon-parquet": "quarkgluon",
}
FORMATS = tuple(_FORMAT_DATASET)

#: File name extensions picked up when a directory is given to :func:`expand_paths`.
SUPPORTED_EXTENSIONS = (".root", ".h5", ".hdf5", ".hdf", ".npz", ".parquet", ".parq", ".pq")

_TREE = "tree"
_H5_KEY = "table"
_JETCLASS_LABELS = tuple(f"label_{name}" for name in JETCLASS_CLASSES)
_FOUR_VECTOR = ("part_px", "part_py", "part_pz", "part_energy")
_DERIVED_JET = ("jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_mass", "jet_nparticles")
_TL_FIELDS = KINEMATIC_PARTICLE_BRANCHES + _DERIVED_JET
_QG_FIELDS = KINEMATIC_PARTICLE_BRANCHES + PID_PARTICLE_BRANCHES + ("part_pid",) + _DERIVED_JET
#: Canonical field order of the chunks (fields not listed follow in file order).
_CANONICAL = PARTICLE_BRANCHES + ("part_pid",) + JET_BRANCHES[:4] + ("jet_mass",) + JET_BRANCHES[4:]
_TL_PREFIXES = ("E", "PX", "PY", "PZ")
_QG_COLUMNS = ("pt", "y", "phi", "pid")
#: Size of the raw row blocks read from HDF5 / NPZ before conversion (memory bound).
_BLOCK_BYTES = 64 * 2**20
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_GLOB_CHARS = re.compile(r"[*?\[]")


class DataError(ValueError):
    """Bad input data: missing/corrupt file, missing branch, unusable jets, mixed datasets.

    The message always names the offending file, and the branch/column/key when relevant.
    """


# --------------------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------------------


def _natural_key(path: pathlib.Path) -> tuple[list[Any], str]:
    text = str(path)
    parts: list[Any] = [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", text)]
    return parts, text


def _natural_sorted(paths: Iterable[pathlib.Path]) -> list[pathlib.Path]:
    return sorted(paths, key=_natural_key)


def expand_paths(spec: PathSpec) -> list[pathlib.Path]:
    """Expand files, globs and directories into an ordered list of files.

    Args:
        spec: one entry or a sequence of entries. Each entry is a file, a glob pattern
            (``*``, ``?``, ``[...]``; ``**`` matches directories recursively) or a directory
            (all files with a :data:`SUPPORTED_EXTENSIONS` suffix directly inside it,
            non-recursive). ``~`` is expanded.

    Returns:
        The files, entries in the order given, the matches of each glob/directory in natural
        order (``file_2`` before ``file_10``); later duplicates (same resolved file) removed.

    Raises:
        DataError: a missing file, or a glob/directory that matches no file (names it), or
            an empty specification.
    """
    if isinstance(spec, str | os.PathLike):
        entries = [spec]
    else:
        entries = list(spec)
    if not entries:
        raise DataError("no input files given (empty path specification)")
    out: list[pathlib.Path] = []
    seen: set[pathlib.Path] = set()
    for entry in entries:
        text = os.path.expanduser(os.fspath(entry))
        if _GLOB_CHARS.search(text) and not os.path.exists(text):
            matches = [pathlib.Path(m) for m in glob.glob(text, recursive=True)]
            files = _natural_sorted(m for m in matches if m.is_file())
            if not files:
                raise DataError(f"{text}: glob pattern matches no file")
        elif os.path.isdir(text):
            files = _natural_sorted(
                p for p in pathlib.Path(text).iterdir()
                if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
            )
            if not files:
                raise DataError(
                    f"{text}: directory contains no file with a supported extension "
                    f"{SUPPORTED_EXTENSIONS}"
                )
        elif os.path.isfile(text):
            files = [pathlib.Path(text)]
        else:
            raise DataError(f"{text}: file not found")
        for path in files:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                out.append(path)
    return out


# --------------------------------------------------------------------------------------
# inspection / format detection
# --------------------------------------------------------------------------------------


@dataclass
class _FileInfo:
    """What detection learned about one file (cheap: headers and metadata only)."""

    path: pathlib.Path
    format: str
    #: branch / column / member names present in the file
    names: tuple[str, ...]
    n_entries: int
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _guard(path: pathlib.Path, what: str) -> Iterator[None]:
    """Turn any library error while reading *path* into a DataError naming the file."""
    try:
        yield
    except (DataError, MemoryError):
        raise
    except Exception as exc:  # every library error here means unreadable input
        raise DataError(
            f"{path}: cannot read {what}: the file is corrupt or truncated "
            f"({type(exc).__name__}: {_one_line(exc)})"
        ) from exc


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """A library's error message on one line: long back traces (HDF5) by their last line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if len(lines) > 3 else " ".join(lines)
    return text if len(text) <= limit else text[:limit] + " …"


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Unpickles plain data only (numbers, strings, lists, tuples, dicts): any class or
    function a pickle names is refused, so a pickle cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"pickled object {module}.{name} refused (untrusted file)")


class _PlainDataPickle:
    """Stands in for the ``pickle`` module inside PyTables while partnb reads HDF5: pandas
    metadata (lists of column names) still loads, pickled objects (object columns, crafted
    attributes) do not."""

    UnpicklingError = pickle.UnpicklingError

    def __getattr__(self, name: str) -> Any:
        return getattr(pickle, name)

    @staticmethod
    def loads(data: bytes, **kwargs: Any) -> Any:
        import io as _io

        return _NoGlobalsUnpickler(_io.BytesIO(data), **kwargs).load()


@contextlib.contextmanager
def _plain_hdf5() -> Iterator[None]:
    """PyTables unpickles attributes and object-atom arrays (pandas' object columns) on
    read: while inside, only plain data unpickles (an untrusted TL file cannot run code)."""
    import tables.atom
    import tables.attributeset

    modules = (tables.atom, tables.attributeset)
    saved = [m.pickle for m in modules]
    for m in modules:
        m.pickle = _PlainDataPickle()
    try:
        yield
    finally:
        for m, original in zip(modules, saved, strict=True):
            m.pickle = original


def _sniff(path: pathlib.Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"root"):
        return "root"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if any(head[off:off + 8] == _HDF5_MAGIC for off in (0, 512, 1024, 2048)):
        return "hdf5"
    return ""


def _inspect(path: str | os.PathLike) -> _FileInfo:
    path = pathlib.Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    kind = _sniff(path)
    if kind == "root":
        return _inspect_root(path)
    if kind == "parquet":
        return _inspect_parquet(path)
    if kind == "zip":
        return _inspect_npz(path)
    if kind == "hdf5":
        return _inspect_h5(path)
    if path.suffix.lower() in SUPPORTED_EXTENSIONS:
        raise DataError(
            f"{path}: the file is corrupt or truncated (content is not a valid "
            f"{path.suffix.lower()[1:]} file)"
        )
    raise DataError(
        f"{path}: unsupported file type (expected ROOT, pandas HDF5, NPZ or parquet content)"
    )


def _check_root_branches(path: pathlib.Path, tree: Any) -> None:
    """Metadata checks of a TTree before any data is read: every basket of every branch lies
    inside the file (a file cut short keeps its header but loses baskets), and ``part_*``
    branches hold one value per particle (jagged), not one per jet."""
    import uproot

    size = path.stat().st_size
    for branch in tree.itervalues(recursive=True):
        n = branch.num_baskets
        seeks = np.asarray(branch.member("fBasketSeek"))[:n]
        nbytes = np.asarray(branch.member("fBasketBytes"))[:n]
        beyond = (seeks > 0) & (seeks + nbytes > size)
        if beyond.any():
            raise DataError(f"{path}: ROOT file is corrupt or truncated: branch {branch.name!r} has "
                            f"{int(beyond.sum())} of {n} baskets beyond its end ({size} bytes)")
        if branch.name.startswith("part_") and not isinstance(
                branch.interpretation, uproot.interpretation.jagged.AsJagged):
            raise DataError(f"{path}: branch {branch.name!r} holds {branch.interpretation}, "
                            "expected one value per particle (a jagged array)")


def _inspect_root(path: pathlib.Path) -> _FileInfo:
    import uproot

    with _guard(path, "ROOT file"), uproot.open(path) as fh:
        if _TREE not in fh.keys(cycle=False):
            raise DataError(f"{path}: ROOT file has no TTree named {_TREE!r} (key {_TREE!r} missing)")
        tree = fh[_TREE]
        kinds = (uproot.behaviors.TTree.TTree, uproot.behaviors.RNTuple.RNTuple)
        if not isinstance(tree, kinds):
            raise DataError(f"{path}: key {_TREE!r} is not a TTree (nor an RNTuple)")
        names = tuple(tree.keys())
        n_entries = int(tree.num_entries)
        if isinstance(tree, uproot.behaviors.TTree.TTree):
            _check_root_branches(path, tree)
    if "label_QCD" in names:
        fmt = "jetclass-root"
    elif "label" in names:
        pid = "part_isChargedHadron" in names or "part_pid" in names
        fmt = "quarkgluon-root" if pid else "toplandscape-root"
    else:
        raise DataError(
            f"{path}: ROOT tree {_TREE!r} has neither branch 'label_QCD' (JetClass) nor "
            "branch 'label' (TopLandscape / QuarkGluon)"
        )
    return _FileInfo(path, fmt, names, n_entries)


def _inspect_parquet(path: pathlib.Path) -> _FileInfo:
    import pyarrow.parquet as pq

    with _guard(path, "parquet file"):
        meta = pq.ParquetFile(path)
        names = tuple(meta.schema_arrow.names)
        n_entries = int(meta.metadata.num_rows)
    if "label" not in names:
        raise DataError(f"{path}: parquet file has no field 'label' (branch 'label' missing)")
    pid = "part_isChargedHadron" in names or "part_pid" in names
    fmt = "quarkgluon-parquet" if pid else "toplandscape-parquet"
    return _FileInfo(path, fmt, names, n_entries)


def _h5_columns(store: Any) -> tuple[list[str], int, bool]:
    storer = store.get_storer(_H5_KEY)
    is_table = bool(getattr(storer, "is_table", False))
    if is_table:
        columns = [str(c) for c in storer.non_index_axes[0][1]]
        nrows = int(storer.nrows)
    else:
        frame = store.select(_H5_KEY, start=0, stop=0)
        columns = [str(c) for c in frame.columns]
        nrows = int(storer.shape[0])
    return columns, nrows, is_table


def _inspect_h5(path: pathlib.Path) -> _FileInfo:
    import pandas as pd

    with _guard(path, "HDF5 file"), _plain_hdf5():
        with pd.HDFStore(path, mode="r") as store:
            if f"/{_H5_KEY}" not in store.keys():
                raise DataError(
                    f"{path}: HDF5 file has no pandas key {_H5_KEY!r} (keys: {store.keys()})"
                )
            columns, nrows, is_table = _h5_columns(store)
    if "E_0" not in columns and "PX_0" not in columns:
        raise DataError(
            f"{path}: HDF5 key {_H5_KEY!r} has no constituent columns E_0, PX_0, ... "
            "(not a TopLandscape file)"
        )
    return _FileInfo(path, "toplandscape-h5", tuple(columns), nrows, {"is_table": is_table})


def _read_npy_header(fp: Any, path: pathlib.Path, member: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        reader = getattr(np.lib.format, "_read_array_header", None)
        if reader is None:
            raise DataError(f"{path}: member {member!r} uses unsupported .npy version {version}")
        shape, fortran, dtype = reader(fp, version)
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype)


def _inspect_npz(path: pathlib.Path) -> _FileInfo:
    with _guard(path, "NPZ file"), zipfile.ZipFile(path) as zf:
        members = tuple(zf.namelist())
        for key in ("X", "y"):
            if f"{key}.npy" not in members:
                raise DataError(f"{path}: NPZ file has no array {key!r} (member {key}.npy missing)")
        with zf.open("X.npy") as fp:
            shape, fortran, dtype = _read_npy_header(fp, path, "X")
        with zf.open("y.npy") as fp:
            yshape, _, _ = _read_npy_header(fp, path, "y")
    names = tuple(m[:-4] if m.endswith(".npy") else m for m in members)
    if len(shape) != 3 or shape[2] != 4:
        raise DataError(
            f"{path}: array 'X' has shape {shape}, expected (jets, particles, 4) holding "
            "(pt, y, phi, pid)"
        )
    if dtype.hasobject or dtype.kind not in "fiu":
        raise DataError(f"{path}: array 'X' has non-numeric dtype {dtype}")
    if fortran:
        raise DataError(
            f"{path}: array 'X' is stored in Fortran order, which cannot be streamed row by row"
        )
    if len(yshape) != 1 or yshape[0] != shape[0]:
        raise DataError(f"{path}: array 'y' has shape {yshape}, expected ({shape[0]},) like 'X'")
    return _FileInfo(path, "quarkgluon-npz", names, shape[0], {"shape": shape, "dtype": dtype})


def detect_format(path: str | os.PathLike) -> str:
    """Detect the jet file format of *path* from its content (not only its extension).

    Args:
        path: one file.

    Returns:
        One of :data:`FORMATS`: ``"jetclass-root"``, ``"toplandscape-root"``,
        ``"quarkgluon-root"``, ``"toplandscape-h5"``, ``"quarkgluon-npz"``,
        ``"toplandscape-parquet"``, ``"quarkgluon-parquet"``.

    Raises:
        DataError: missing, unreadable, corrupt or truncated file, or content of no supported
            format (the message names the file, and the missing key/branch if any).
    """
    return _inspect(path).format


def dataset_of_format(fmt: str) -> str:
    """Dataset family of a format name.

    Args:
        fmt: a name from :data:`FORMATS`.

    Returns:
        ``"jetclass"``, ``"toplandscape"`` or ``"quarkgluon"`` (keys of ``schema.DATASETS``).

    Raises:
        ValueError: unknown format name.
    """
    try:
        return _FORMAT_DATASET[fmt]
    except KeyError:
        raise ValueError(f"unknown jet file format {fmt!r}; expected one of {FORMATS}") from None


def check_dataset_files(paths: PathSpec, dataset: str, *, format: str = "auto",
                        what: str = "dataset.name") -> list[pathlib.Path]:
    """The files of ``paths``, each checked (metadata only) to hold jets of the family
    ``dataset`` and, unless ``format`` is ``"auto"``, of that format — so a model for one
    dataset is never trained or evaluated on another's labels.

    Raises:
        DataError: naming the first file of another family or format (and ``what``, the
            setting it contradicts).
    """
    files = expand_paths(paths)
    for path in files:
        fmt = _inspect(path).format
        if format != "auto" and fmt != format:
            raise DataError(f"{path}: file has format {fmt!r}, but dataset.format = {format!r}")
        if _FORMAT_DATASET[fmt] != dataset:
            raise DataError(f"{path}: holds {_FORMAT_DATASET[fmt]} jets ({fmt}), but "
                            f"{what} = {dataset!r}")
    return files


def count_jets(paths: PathSpec) -> int:
    """Count the jets of all files cheaply (metadata only, no event data is read).

    Args:
        paths: files, globs or directories as for :func:`expand_paths`.

    Returns:
        Total number of jets (ROOT ``num_entries``, HDF5 rows, NPZ ``X`` rows from the
        header, parquet row count). Unlike ParT's converters, no last jet is dropped.
    """
    return sum(_inspect(p).n_entries for p in expand_paths(paths))


# --------------------------------------------------------------------------------------
# planning: which fields a call produces and which columns each file must provide
# --------------------------------------------------------------------------------------


def _derived_fields(fmt: str) -> tuple[str, ...] | None:
    if fmt == "toplandscape-h5":
        return _TL_FIELDS
    if fmt == "quarkgluon-npz":
        return _QG_FIELDS
    return None


def _label_names(fmt: str) -> tuple[str, ...]:
    return _JETCLASS_LABELS if fmt == "jetclass-root" else ("label",)


def _ordered(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    canon = [n for n in _CANONICAL if n in names]
    return canon + [n for n in names if n not in canon]


def _default_fields(info: _FileInfo) -> list[str]:
    derived = _derived_fields(info.format)
    if derived is not None:
        return list(derived)
    missing = [b for b in _FOUR_VECTOR if b not in info.names]
    if missing:
        raise DataError(f"{info.path}: required branch {missing[0]!r} is missing")
    names = [n for n in info.names if n.startswith(("part_", "jet_"))]
    if "jet_mass" not in names:
        names.append("jet_mass")
    return _ordered(names)


@dataclass
class _Plan:
    """Per file: the columns to read and which output fields are computed."""

    read: list[str]
    compute_mass: bool
    #: a jagged column read only to know the multiplicities (not output)
    count_source: str | None


def _plan_file(info: _FileInfo, fields: Sequence[str]) -> _Plan:
    path = info.path
    derived = _derived_fields(info.format)
    if derived is not None:
        for name in fields:
            if name not in derived:
                raise DataError(
                    f"{path}: requested branch {name!r} is not available in format "
                    f"{info.format!r} (available: {', '.join(derived)})"
                )
        if info.format == "toplandscape-h5":
            _tl_columns(info)  # raises on missing columns
        return _Plan(read=[], compute_mass=False, count_source=None)
    for label in _label_names(info.format):
        if label not in info.names:
            raise DataError(f"{path}: required label branch {label!r} is missing")
    read: list[str] = []
    compute_mass = False
    for name in fields:
        if name in info.names and name not in _label_names(info.format):
            read.append(name)
        elif name == "jet_mass":
            compute_mass = True
        else:
            raise DataError(f"{path}: branch {name!r} is missing")
    if compute_mass:
        for name in _FOUR_VECTOR:
            if name not in info.names:
                raise DataError(
                    f"{path}: branch {name!r} is missing (needed to compute jet_mass)"
                )
            if name not in read:
                read.append(name)
    count_source = None
    if not any(n.startswith("part_") for n in read):
        count_source = next((n for n in _FOUR_VECTOR if n in info.names), None)
        if count_source is None:
            count_source = next((n for n in info.names if n.startswith("part_")), None)
        if count_source is None:
            raise DataError(f"{path}: no particle branch (part_*) found; branch 'part_px' is missing")
        read.append(count_source)
    return _Plan(read=read, compute_mass=compute_mass, count_source=count_source)


# --------------------------------------------------------------------------------------
# per-block assembly shared by all readers
# --------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    """State of one file while it is streamed."""

    path: pathlib.Path
    fmt: str
    fields: list[str]
    warned: set[tuple[str, str]]


def _sanitize(ctx: _Ctx, name: str, values: np.ndarray, start: int, n_jets: int) -> np.ndarray:
    """Replace non-finite values by 0 (weaver), warning once per file and branch."""
    if values.dtype.kind != "f":
        return values
    finite = np.isfinite(values)
    if finite.all():
        return values
    bad = int(values.size - np.count_nonzero(finite))
    key = (str(ctx.path), name)
    if key not in ctx.warned:
        ctx.warned.add(key)
        warnings.warn(
            f"{ctx.path}: {bad} non-finite (NaN/inf) value(s) in branch {name!r} "
            f"(entries {start}-{start + n_jets - 1}) replaced by 0, as weaver does; "
            "further ones in this file are replaced without another warning",
            RuntimeWarning,
            stacklevel=4,
        )
    return np.where(finite, values, values.dtype.type(0))


def _check_multiplicity(ctx: _Ctx, counts: np.ndarray, start: int) -> None:
    bad = np.flatnonzero(counts < 2)
    if bad.size:
        first = [int(i) + start for i in bad[:5]]
        shown = ", ".join(f"entry {e} has {int(counts[e - start])}" for e in first)
        more = "" if bad.size <= 5 else ", ..."
        raise DataError(
            f"{ctx.path}: {bad.size} jet(s) with zero or one constituent ({shown}{more}); "
            "these jets cannot be analysed: attention over 0/1 particles is undefined"
        )


def _as_layout(arr: Any) -> ak.contents.Content:
    """Layout of a column with missing values (nullable parquet) turned into NaN / []."""
    arr = arr if isinstance(arr, ak.Array) else ak.Array(ak.to_layout(arr))
    if arr.layout.is_option:  # a missing jet: no particles (rejected later) / NaN scalar
        arr = ak.fill_none(arr, [] if arr.layout.content.is_list else np.nan, axis=0)
    if arr.layout.is_list and arr.layout.content.is_option:
        arr = ak.fill_none(arr, np.nan, axis=-1)  # missing particle values: NaN, warned below
    return arr.layout


def _split_column(ctx: _Ctx, name: str, arr: Any) -> tuple[np.ndarray | None, np.ndarray]:
    """Return (offsets or None, flat values) of one column, offsets starting at 0."""
    layout = _as_layout(arr)
    if layout.is_list:
        layout = ak.to_packed(ak.Array(layout)).layout
        if not isinstance(layout, ak.contents.ListOffsetArray) or not isinstance(
            layout.content, ak.contents.NumpyArray
        ):
            raise DataError(f"{ctx.path}: branch {name!r} is not a jagged array of numbers")
        offsets = np.asarray(layout.offsets.data, dtype=np.int64)
        values = np.asarray(layout.content.data)
        if offsets[0] != 0:
            values = values[offsets[0]:offsets[-1]]
            offsets = offsets - offsets[0]
        return offsets, values
    if not isinstance(layout, ak.contents.NumpyArray):
        layout = ak.to_packed(ak.Array(layout)).layout
    if not isinstance(layout, ak.contents.NumpyArray) or layout.data.ndim != 1:
        raise DataError(f"{ctx.path}: branch {name!r} is neither a scalar nor a jagged number column")
    return None, np.asarray(layout.data)


def _to_float32(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.float32:
        return values
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(np.float32)


def _segment_sums(offsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-jet float64 sums of a flat particle column (handles empty jets)."""
    n = len(offsets) - 1
    if n == 0:
        return np.zeros(0)
    counts = np.diff(offsets)
    if counts.min() > 0:
        return np.add.reduceat(values, offsets[:-1], dtype=np.float64)
    return np.bincount(np.repeat(np.arange(n), counts), weights=values, minlength=n)


def _jet_mass(offsets: np.ndarray, cols: Mapping[str, np.ndarray]) -> np.ndarray:
    px, py, pz, e = (_segment_sums(offsets, cols[b]) for b in _FOUR_VECTOR)
    m2 = e * e - px * px - py * py - pz * pz
    return np.sqrt(np.maximum(m2, 0.0)).astype(np.float32)


def _record(
    fields: Sequence[str],
    offsets: np.ndarray,
    jagged: Mapping[str, np.ndarray],
    scalars: Mapping[str, np.ndarray],
    label: np.ndarray,
    own_offsets: Mapping[str, np.ndarray] | None = None,
) -> ak.Array:
    """Pack columns into the record layout; part_* fields share *offsets*."""
    n = len(label)
    index = ak.index.Index64(offsets)
    own_offsets = own_offsets or {}
    contents: list[ak.contents.Content] = []
    for name in fields:
        if name in jagged:
            idx = ak.index.Index64(own_offsets[name]) if name in own_offsets else index
            contents.append(ak.contents.ListOffsetArray(idx, ak.contents.NumpyArray(jagged[name])))
        else:
            contents.append(ak.contents.NumpyArray(scalars[name]))
    contents.append(ak.contents.NumpyArray(np.asarray(label, dtype=np.int32)))
    return ak.Array(ak.contents.RecordArray(contents, [*fields, "label"], length=n))


def _assemble(
    ctx: _Ctx, plan: _Plan, start: int, columns: Mapping[str, Any], label: np.ndarray
) -> ak.Array:
    """Columnar formats (ROOT, parquet): cast, check and pack one block of jets."""
    n = len(label)
    offsets: np.ndarray | None = None
    ref_name = ""
    jagged: dict[str, np.ndarray] = {}
    own_offsets: dict[str, np.ndarray] = {}
    scalars: dict[str, np.ndarray] = {}
    for name in plan.read:
        offs, values = _split_column(ctx, name, columns[name])
        if name.startswith(("part_", "jet_")):
            values = _to_float32(values)
        if (offs is not None and len(offs) != n + 1) or (offs is None and len(values) != n):
            got = len(values) if offs is None else len(offs) - 1
            raise DataError(f"{ctx.path}: branch {name!r} has {got} entries, expected {n}")
        if offs is None:
            scalars[name] = values
            continue
        if not name.startswith("part_"):  # e.g. JetClass truth aux_genpart_*: own multiplicity
            jagged[name], own_offsets[name] = values, offs
            continue
        if offsets is None:
            offsets, ref_name = offs, name
            _check_multiplicity(ctx, np.diff(offsets), start)
        elif not np.array_equal(offs, offsets):
            bad = int(np.flatnonzero(np.diff(offs) != np.diff(offsets))[0])
            raise DataError(
                f"{ctx.path}: branch {name!r} has a different number of particles than "
                f"{ref_name!r} (first at entry {start + bad})"
            )
        jagged[name] = values
    assert offsets is not None  # the plan always reads one particle branch
    for name, values in list(jagged.items()):
        if name.startswith("part_"):
            jagged[name] = _sanitize(ctx, name, values, start, n)
    for name, values in list(scalars.items()):
        if name.startswith("jet_"):
            scalars[name] = _sanitize(ctx, name, values, start, n)
    if plan.compute_mass:
        scalars["jet_mass"] = _jet_mass(offsets, jagged)
    return _record(ctx.fields, offsets, jagged, scalars, label, own_offsets)


def _binary_label(ctx: _Ctx, raw: Any, start: int) -> np.ndarray:
    raw = np.asarray(ak.to_numpy(raw) if isinstance(raw, ak.Array) else raw)
    if raw.ndim != 1:
        raise DataError(f"{ctx.path}: branch 'label' is not a scalar column")
    values = raw.astype(np.float64)
    bad = np.flatnonzero(~np.isin(values, (0.0, 1.0)))
    if bad.size:
        raise DataError(
            f"{ctx.path}: branch 'label' must hold 0 or 1; {bad.size} entries do not "
            f"(first: entry {start + int(bad[0])} = {raw[bad[0]]!r})"
        )
    index0 = DATASETS[_FORMAT_DATASET[ctx.fmt]].raw_label_of_index0
    return np.where(values == index0, 0, 1).astype(np.int32)


def _jetclass_label(ctx: _Ctx, columns: Mapping[str, Any], start: int) -> np.ndarray:
    stack = np.stack(
        [np.asarray(ak.to_numpy(columns[b])).astype(np.float64) for b in _JETCLASS_LABELS], axis=1
    )
    is_set = stack != 0
    n_set = is_set.sum(axis=1)
    bad = np.flatnonzero((n_set != 1) | ~np.isfinite(stack).all(axis=1))
    if bad.size:
        first = int(bad[0])
        raise DataError(
            f"{ctx.path}: {bad.size} jet(s) without exactly one set label branch "
            f"({', '.join(_JETCLASS_LABELS)}); first: entry {start + first} has "
            f"{int(n_set[first])} set"
        )
    return np.argmax(is_set, axis=1).astype(np.int32)


# --------------------------------------------------------------------------------------
# readers: each yields finished blocks (entry_start, ak.Array) of one file
# --------------------------------------------------------------------------------------


def _next(it: Iterator[Any], path: pathlib.Path, what: str) -> Any:
    with _guard(path, what):
        return next(it, None)


def _read_root(
    info: _FileInfo, ctx: _Ctx, plan: _Plan, step: int, limit: int | None
) -> Iterator[ak.Array]:
    import uproot

    labels = list(_label_names(info.format))
    expressions = plan.read + labels
    with _guard(info.path, "ROOT file"):
        fh = uproot.open(info.path)
    with fh:
        with _guard(info.path, "ROOT file"):
            tree = fh[_TREE]
            stop = tree.num_entries if limit is None else min(limit, tree.num_entries)
            it = tree.iterate(
                expressions, step_size=step, entry_stop=stop, library="ak", how=dict
            )
        start = 0
        while (chunk := _next(it, info.path, "ROOT file")) is not None:
            if info.format == "jetclass-root":
                label = _jetclass_label(ctx, chunk, start)
            else:
                label = _binary_label(ctx, chunk["label"], start)
            yield _assemble(ctx, plan, start, chunk, label)
            start += len(label)


def _read_parquet(
    info: _FileInfo, ctx: _Ctx, plan: _Plan, step: int, limit: int | None
) -> Iterator[ak.Array]:
    import pyarrow.parquet as pq

    with _guard(info.path, "parquet file"):
        pf = pq.ParquetFile(info.path)
        it = pf.iter_batches(batch_size=step, columns=[*plan.read, "label"], use_threads=False)
    start = 0
    try:
        while limit is None or start < limit:
            batch = _next(it, info.path, "parquet file")
            if batch is None:
                break
            with _guard(info.path, "parquet file"):
                arr = ak.from_arrow(batch, generate_bitmasks=True)
            if limit is not None and start + len(arr) > limit:
                arr = arr[: limit - start]
            columns = {name: arr[name] for name in plan.read}
            label = _binary_label(ctx, ak.fill_none(arr["label"], np.nan), start)
            yield _assemble(ctx, plan, start, columns, label)
            start += len(label)
    finally:
        pf.close()


def _tl_columns(info: _FileInfo) -> tuple[int, dict[str, list[str]]]:
    names = set(info.names)
    n_max = 0
    while f"E_{n_max}" in names:
        n_max += 1
    groups: dict[str, list[str]] = {}
    for prefix in _TL_PREFIXES:
        cols = [f"{prefix}_{i}" for i in range(max(n_max, 1))]
        for col in cols:
            if col not in names:
                raise DataError(f"{info.path}: HDF5 key {_H5_KEY!r} has no column {col!r}")
        groups[prefix] = cols
    if "is_signal_new" not in names:
        raise DataError(f"{info.path}: HDF5 key {_H5_KEY!r} has no column 'is_signal_new'")
    return n_max, groups


def _derive(
    ctx: _Ctx,
    counts: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    energy: np.ndarray,
    eta: np.ndarray | None = None,
    phi: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Jet four-vector = sum of constituents; deta, dphi as ParT's converters (docs/datasets.md#top-landscape)."""
    n = len(counts)
    idx = np.repeat(np.arange(n), counts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    jpx, jpy, jpz, je = (_segment_sums(offsets, v) for v in (px, py, pz, energy))
    jpt = np.hypot(jpx, jpy)
    with np.errstate(divide="ignore", invalid="ignore"):
        jeta = pseudorapidity(jpx, jpy, jpz)
        if eta is None:
            eta = pseudorapidity(px, py, pz)
    jphi = np.arctan2(jpy, jpx)
    if phi is None:
        phi = np.arctan2(py, px)
    jmass = np.sqrt(np.maximum(je * je - jpx * jpx - jpy * jpy - jpz * jpz, 0.0))
    sign = np.where(jeta >= 0, 1.0, -1.0)  # sign(0) := +1
    deta = (eta - jeta[idx]) * sign[idx]
    dphi = wrap_phi(phi - jphi[idx])
    part = {
        "part_px": px, "part_py": py, "part_pz": pz, "part_energy": energy,
        "part_deta": deta, "part_dphi": dphi,
    }
    jet = {
        "jet_pt": jpt, "jet_eta": jeta, "jet_phi": jphi, "jet_energy": je,
        "jet_mass": jmass, "jet_nparticles": counts,
    }
    part = {k: v.astype(np.float32) for k, v in part.items()}
    jet = {k: np.asarray(v, dtype=np.float32) for k, v in jet.items()}
    return part, jet


def _finish_derived(
    ctx: _Ctx, counts: np.ndarray, part: dict[str, np.ndarray], jet: dict[str, np.ndarray],
    label: np.ndarray,
) -> ak.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return _record(ctx.fields, offsets, part, jet, label)


def _read_h5(
    info: _FileInfo, ctx: _Ctx, plan: _Plan, step: int, limit: int | None
) -> Iterator[ak.Array]:
    import pandas as pd

    n_max, groups = _tl_columns(info)
    wanted = [c for p in _TL_PREFIXES for c in groups[p]] + ["is_signal_new"]
    stop = info.n_entries if limit is None else min(limit, info.n_entries)
    rows = max(1, min(step, _BLOCK_BYTES // (8 * len(wanted))))
    with _guard(info.path, "HDF5 file"), _plain_hdf5():
        store = pd.HDFStore(info.path, mode="r")
    try:
        for start in range(0, stop, rows):
            end = min(start + rows, stop)
            with _guard(info.path, "HDF5 file"), _plain_hdf5():
                kw = {"columns": wanted} if info.extra.get("is_table") else {}
                frame = store.select(_H5_KEY, start=start, stop=end, **kw)
            if len(frame) != end - start:
                raise DataError(
                    f"{info.path}: HDF5 key {_H5_KEY!r} returned {len(frame)} rows for entries "
                    f"{start}-{end - 1}; the file is corrupt or truncated"
                )
            col_index = frame.columns.get_indexer(wanted)
            values = frame.to_numpy(dtype=np.float64)[:, col_index]
            blocks = {}
            for k, prefix in enumerate(_TL_PREFIXES):
                block = values[:, k * n_max:(k + 1) * n_max]
                blocks[prefix] = _sanitize(ctx, f"{prefix}_*", block, start, end - start)
            label = _binary_label(ctx, values[:, -1], start)
            mask = blocks["E"] > 0
            counts = mask.sum(axis=1)
            _check_multiplicity(ctx, counts, start)
            part, jet = _derive(
                ctx, counts, blocks["PX"][mask], blocks["PY"][mask], blocks["PZ"][mask],
                blocks["E"][mask],
            )
            yield _finish_derived(ctx, counts, part, jet, label)
    finally:
        store.close()


def _pid_flags(pid: np.ndarray) -> dict[str, np.ndarray]:
    apid = np.abs(pid)
    positive = np.isin(pid, (211, 321, 2212, -11, -13))
    negative = np.isin(pid, (-211, -321, -2212, 11, 13))
    flags = {
        "part_charge": positive.astype(np.float32) - negative.astype(np.float32),
        "part_isChargedHadron": np.isin(apid, (211, 321, 2212)),
        "part_isNeutralHadron": np.isin(pid, (130, 2112, -2112)),
        "part_isPhoton": pid == 22,
        "part_isElectron": apid == 11,
        "part_isMuon": apid == 13,
        "part_pid": pid,
    }
    return {k: v.astype(np.float32) for k, v in flags.items()}


def _read_npz(
    info: _FileInfo, ctx: _Ctx, plan: _Plan, step: int, limit: int | None
) -> Iterator[ak.Array]:
    n_jets, n_part, n_col = info.extra["shape"]
    dtype: np.dtype = info.extra["dtype"]
    row_bytes = n_part * n_col * dtype.itemsize
    stop = n_jets if limit is None else min(limit, n_jets)
    rows = max(1, min(step, _BLOCK_BYTES // max(row_bytes, 1)))
    with _guard(info.path, "NPZ file"):
        zf = zipfile.ZipFile(info.path)
    try:
        with _guard(info.path, "NPZ member 'y'"), zf.open("y.npy") as fp:
            y_all = np.lib.format.read_array(fp, allow_pickle=False)
        with _guard(info.path, "NPZ member 'X'"):
            fp = zf.open("X.npy")
            _read_npy_header(fp, info.path, "X")
        with fp:
            for start in range(0, stop, rows):
                end = min(start + rows, stop)
                k = end - start
                with _guard(info.path, "NPZ member 'X'"):
                    raw = fp.read(k * row_bytes)
                if len(raw) != k * row_bytes:
                    raise DataError(
                        f"{info.path}: array 'X' ends after {start + len(raw) // row_bytes} of "
                        f"{n_jets} rows; the file is corrupt or truncated"
                    )
                block = np.frombuffer(raw, dtype=dtype).reshape(k, n_part, n_col)
                block = block.astype(np.float64)
                cols = {}
                for c, name in enumerate(_QG_COLUMNS):
                    cols[name] = _sanitize(ctx, f"X[..., {c}] ({name})", block[:, :, c], start, k)
                label = _binary_label(ctx, y_all[start:end], start)
                order = np.argsort(-cols["pt"], axis=1, kind="stable")
                srt = {name: np.take_along_axis(v, order, axis=1) for name, v in cols.items()}
                mask = srt["pt"] > 0
                counts = mask.sum(axis=1)
                _check_multiplicity(ctx, counts, start)
                pt, rap, phi, pid = (srt[name][mask] for name in _QG_COLUMNS)
                part, jet = _derive(
                    ctx, counts, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(rap),
                    pt * np.cosh(rap), eta=rap, phi=phi,
                )
                part.update(_pid_flags(pid))
                yield _finish_derived(ctx, counts, part, jet, label)
            if stop == n_jets:
                # reaching the member's end makes zipfile verify its CRC-32 (deflated data)
                with _guard(info.path, "NPZ member 'X'"):
                    trailing = fp.read(1)
                if trailing:
                    raise DataError(
                        f"{info.path}: array 'X' holds more data than its header declares; "
                        "the file is corrupt"
                    )
    finally:
        zf.close()


_READERS = {
    "jetclass-root": _read_root,
    "toplandscape-root": _read_root,
    "quarkgluon-root": _read_root,
    "toplandscape-parquet": _read_parquet,
    "quarkgluon-parquet": _read_parquet,
    "toplandscape-h5": _read_h5,
    "quarkgluon-npz": _read_npz,
}


# --------------------------------------------------------------------------------------
# public streaming API
# --------------------------------------------------------------------------------------


def _rebatch(blocks: Iterable[ak.Array], step: int) -> Iterator[ak.Array]:
    buf: list[ak.Array] = []
    held = 0
    for block in blocks:
        while len(block):
            take = min(step - held, len(block))
            buf.append(block[:take] if take < len(block) else block)
            block = block[take:] if take < len(block) else block[:0]
            held += take
            if held == step:
                yield buf[0] if len(buf) == 1 else ak.concatenate(buf)
                buf, held = [], 0
    if held:
        yield buf[0] if len(buf) == 1 else ak.concatenate(buf)


@dataclass
class _Job:
    infos: list[_FileInfo]
    plans: list[_Plan]
    fields: list[str]
    step: int
    max_jets: int | None


def _prepare(
    paths: PathSpec,
    step_size: int,
    branches: Sequence[str] | None,
    format: str,
    max_jets: int | None,
) -> _Job:
    if isinstance(step_size, bool) or not isinstance(step_size, int | np.integer) or step_size < 1:
        raise ValueError(f"step_size must be a positive integer, got {step_size!r}")
    if max_jets is not None and (not isinstance(max_jets, int | np.integer) or max_jets < 0):
        raise ValueError(f"max_jets must be None or a non-negative integer, got {max_jets!r}")
    if format != "auto" and format not in _FORMAT_DATASET:
        raise ValueError(f"unknown format {format!r}; expected 'auto' or one of {FORMATS}")
    files = expand_paths(paths)
    infos = [_inspect(p) for p in files]
    if format != "auto":
        for info in infos:
            if info.format != format:
                raise DataError(
                    f"{info.path}: file has format {info.format!r}, but format={format!r} was requested"
                )
    first = infos[0]
    family = _FORMAT_DATASET[first.format]
    for info in infos[1:]:
        if _FORMAT_DATASET[info.format] != family:
            raise DataError(
                f"cannot mix dataset families in one call: {first.path} is {family} "
                f"({first.format}) but {info.path} is {_FORMAT_DATASET[info.format]} "
                f"({info.format})"
            )
    if branches is None:
        fields = _default_fields(first)
    else:
        if isinstance(branches, str):
            branches = [branches]
        fields = [b for b in dict.fromkeys(branches) if b != "label"]
    plans = [_plan_file(info, fields) for info in infos]
    return _Job(infos, plans, list(fields), int(step_size), max_jets)


def _generate(job: _Job) -> Iterator[ak.Array]:
    warned: set[tuple[str, str]] = set()
    remaining = job.max_jets
    for info, plan in zip(job.infos, job.plans, strict=True):
        if remaining is not None and remaining <= 0:
            return
        ctx = _Ctx(info.path, info.format, job.fields, warned)
        blocks = _READERS[info.format](info, ctx, plan, job.step, remaining)
        chunks = _rebatch(blocks, job.step)
        try:
            for chunk in chunks:
                if remaining is not None:
                    if len(chunk) > remaining:
                        chunk = chunk[:remaining]
                    remaining -= len(chunk)
                yield chunk
                if remaining is not None and remaining <= 0:
                    return
        finally:  # close the file now, also when the consumer stops early
            chunks.close()
            blocks.close()


def iterate_jets(
    paths: PathSpec,
    *,
    step_size: int = 100_000,
    branches: Sequence[str] | None = None,
    format: str = "auto",
    max_jets: int | None = None,
) -> Iterator[ak.Array]:
    """Stream jets of one or more files as chunks in the common representation.

    All inputs are checked before the first chunk is produced (files exist and are readable,
    one dataset family, requested branches present); data problems found while streaming
    (empty/one-particle jets, bad labels, truncated data) raise when reached.

    Args:
        paths: files, globs or directories (see :func:`expand_paths`); files are read in that
            order. All must belong to one dataset family (JetClass, TopLandscape or
            QuarkGluon); TopLandscape HDF5 and parquet/ROOT may be mixed, for example.
        step_size: maximum number of jets per chunk. Chunks never span two files; within a
            file all chunks but the last have exactly ``step_size`` jets. Memory use is
            bounded by the chunk size, independent of the number of files or jets.
        branches: output fields (``label`` is always added, and may be listed). ``None``
            means every particle/jet field the format has (for ROOT/parquet: every ``part_*``
            and ``jet_*`` branch of the first file, plus ``jet_mass`` computed from the
            constituents if absent); later files must then have the same branches.
            ``jet_mass`` may always be requested where ``part_px/py/pz/energy`` exist.
        format: ``"auto"`` (detect per file) or one name of :data:`FORMATS`, which every file
            must then have.
        max_jets: stop after this many jets in total (``None``: read everything).

    Returns:
        An iterator of ``ak.Array`` chunks, records with jagged float32 ``part_*``, scalar
        float32 ``jet_*`` and int32 ``label`` (weaver class index) fields. Original
        TopLandscape HDF5 / QuarkGluon NPZ files yield all their jets: unlike ParT's
        converters (docs/pitfalls.md#pitfall-9-the-converters-drop-the-last-jet) the last jet of each file is not dropped.

    Raises:
        DataError: missing/corrupt/truncated file, missing branch/column/key, mixed dataset
            families, jets with zero or one constituent, invalid labels.

    Warns:
        RuntimeWarning: non-finite values in a particle/jet column, replaced by 0 (once per
            file and branch, naming file, branch and count).
    """
    return _generate(_prepare(paths, step_size, branches, format, max_jets))


def _empty(fields: Sequence[str]) -> ak.Array:
    offsets = np.zeros(1, dtype=np.int64)
    jagged = {f: np.zeros(0, np.float32) for f in fields if f.startswith("part_")}
    scalars = {f: np.zeros(0, np.float32) for f in fields if not f.startswith("part_")}
    return _record(fields, offsets, jagged, scalars, np.zeros(0, np.int32))


def read_jets(paths: PathSpec, **kw: Any) -> ak.Array:
    """Read all jets into one array (for small samples and tests).

    Args:
        paths: files, globs or directories (see :func:`expand_paths`).
        **kw: ``step_size``, ``branches``, ``format``, ``max_jets`` as for
            :func:`iterate_jets`.

    Returns:
        The concatenation of the chunks of :func:`iterate_jets` (an empty array with the
        same fields if no jet is read).
    """
    unknown = sorted(set(kw) - {"step_size", "branches", "format", "max_jets"})
    if unknown:
        raise TypeError(f"read_jets() got unexpected keyword argument(s) {unknown}")
    job = _prepare(
        paths, kw.get("step_size", 100_000), kw.get("branches"), kw.get("format", "auto"),
        kw.get("max_jets"),
    )
    chunks = list(_generate(job))
    if not chunks:
        return _empty(job.fields)
    return chunks[0] if len(chunks) == 1 else ak.concatenate(chunks)


# --------------------------------------------------------------------------------------
# temp files of atomic writers
# --------------------------------------------------------------------------------------


def stale_temp_files(directory, pattern: str = "*.tmp-*") -> list[pathlib.Path]:
    """Temp files under ``directory`` matching ``pattern``, named ``<name>.tmp-<pid>`` (or
    ``.tmp-<pid>.<ext>``) by an atomic writer, whose writer no longer runs: a ``kill -9``
    between writing and renaming. A temp file of a live process other than this one (another
    run writing into the same directory) is not stale; this process's own are leftovers of an
    earlier call. Names without a pid after ``.tmp-`` are left out."""
    out = []
    for tmp in pathlib.Path(directory).glob(pattern):
        pid = tmp.name.rsplit(".tmp-", 1)[1].split(".")[0]
        if not pid.isdigit():
            continue
        if int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                continue  # the writer runs
            except ProcessLookupError:
                pass
            except PermissionError:  # another user's live process
                continue
        out.append(tmp)
    return out
