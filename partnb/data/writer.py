"""The ROOT writer of the common jet layout (docs/datasets.md#the-common-jet-layout): what
generation and conversion write, apart from the readers of :mod:`partnb.data.io`."""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np

from partnb.data.io import DataError

__all__ = ["write_jetclass_root"]


def _writer_column(path: pathlib.Path, name: str, value: Any) -> tuple[bool, Any]:
    """Return (is_jagged, column) with jagged part_* cast to float32."""
    if isinstance(value, ak.Array | ak.Record) or not isinstance(value, np.ndarray):
        arr = ak.Array(value) if not isinstance(value, ak.Array) else value
        if arr.ndim == 1:
            value = ak.to_numpy(arr)
        elif arr.ndim == 2:
            arr = ak.to_packed(arr)
            if name.startswith("part_"):
                arr = ak.values_astype(arr, np.float32)
            return True, arr
        else:
            raise DataError(f"{path}: column {name!r} must be 1-d or jagged 2-d, got {arr.type}")
    value = np.asarray(value)
    if value.ndim != 1:
        raise DataError(f"{path}: column {name!r} must be 1-d (got shape {value.shape})")
    if name.startswith("part_"):
        raise DataError(f"{path}: particle column {name!r} must be jagged (var * number)")
    return False, value


def write_jetclass_root(
    path: str | os.PathLike,
    arrays: Mapping[str, np.ndarray | ak.Array],
    *,
    tree: str = "tree",
    compression: str | None = "lz4",
    basket_entries: int = 20_000,
) -> pathlib.Path:
    """Write one JetClass-layout ROOT file with uproot, atomically.

    The caller supplies every branch, label branches included: ``label_*`` with the JetClass
    mixed dtypes of ``schema.JETCLASS_LABEL_DTYPES`` for JetClass, or a raw ``label`` for
    TopLandscape / QuarkGluon. Jagged ``part_*`` columns are written as float32 (they share
    one counter branch ``npart``); scalars keep the dtype given. The file is written to
    ``<path>.tmp-<pid>`` in the same directory and moved into place with :func:`os.replace`;
    on any error the temporary file is removed. The result is read back by
    :func:`iterate_jets` as ``jetclass-root`` (with ``label_QCD``) or
    ``toplandscape-root`` / ``quarkgluon-root`` (with ``label``).

    Args:
        path: output file (``.root``).
        arrays: branch name -> 1-d numpy array (scalars) or jagged awkward array
            (``var * number``); all with the same number of jets.
        tree: TTree name.
        compression: ``"lz4"`` (default, fastest to read), ``"zlib"``, ``"zstd"``, ``"lzma"``
            or ``None``.
        basket_entries: jets per basket (the tree is filled in blocks of this size).

    Returns:
        The path written.

    Raises:
        DataError: columns of unequal length, particle columns with unequal multiplicities
            or of unsupported shape.
    """
    import uproot

    path = pathlib.Path(path)
    codecs = {
        "lz4": lambda: uproot.LZ4(1), "zlib": lambda: uproot.ZLIB(1),
        "zstd": lambda: uproot.ZSTD(1), "lzma": lambda: uproot.LZMA(1), None: lambda: None,
    }
    if compression not in codecs:
        raise ValueError(f"unknown compression {compression!r}; expected one of {list(codecs)}")
    if not arrays:
        raise DataError(f"{path}: nothing to write (no branches given)")
    columns: dict[str, Any] = {}
    groups: dict[str, dict[str, ak.Array]] = {}
    n_jets: int | None = None
    for name, value in arrays.items():
        is_jagged, col = _writer_column(path, name, value)
        if n_jets is None:
            n_jets = len(col)
        elif len(col) != n_jets:
            raise DataError(f"{path}: column {name!r} has {len(col)} entries, expected {n_jets}")
        if is_jagged and "_" in name:
            prefix, rest = name.split("_", 1)
            groups.setdefault(prefix, {})[rest] = col
        else:
            columns[name] = col
    for prefix, members in groups.items():
        if len(members) == 1:
            ((rest, col),) = members.items()
            columns[f"{prefix}_{rest}"] = col
            continue
        (first, ref), *others = members.items()
        counts = ak.to_numpy(ak.num(ref, axis=1))
        for rest, col in others:
            if not np.array_equal(ak.to_numpy(ak.num(col, axis=1)), counts):
                raise DataError(
                    f"{path}: column {prefix}_{rest} has other particle counts than "
                    f"{prefix}_{first}"
                )
        # one record of jagged fields -> branches <prefix>_<field> sharing counter n<prefix>
        columns[prefix] = ak.zip(members)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with uproot.recreate(tmp, compression=codecs[compression]()) as fh:
            types = {k: (ak.type(v) if isinstance(v, ak.Array) else v.dtype) for k, v in columns.items()}
            out = fh.mktree(tree, types)
            step = max(1, int(basket_entries))
            for lo in range(0, n_jets or 0, step):
                out.extend({k: v[lo:lo + step] for k, v in columns.items()})
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    return path
