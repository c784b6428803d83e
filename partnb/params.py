"""Parameter files: one YAML schema for every dataset, validated before any long work.

A params file has the sections ``dataset``, ``features``, ``model``, ``train``,
``analysis``, ``notebook``, ``output`` and the scalars ``name`` and ``seed``. Everything not written
takes the default below. :func:`load_params` reads a file with ``yaml.safe_load`` and
checks it completely; a problem raises one :class:`ParamsError` that names the file and the
key (with the nearest valid key for a typo), so a batch job fails in the first second, not
after an hour of generation.

Relative paths in a params file are resolved from the *project directory*: the directory
that holds ``params/`` when the file lies in a folder named ``params`` (or below it, as
``params/study/``), else the file's
own folder. So ``dataset.cache_dir: data/generated`` in ``params/jetclass.yaml`` means
``<repo>/data/generated`` wherever the command is started (a notebook under papermill runs
in ``notebooks/``).

:meth:`Params.hash` is a stable SHA-256 of the resolved settings of the chosen sections;
caches (generated data, trained models) are named by it.
"""

from __future__ import annotations

import copy
import difflib
import glob as _glob
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ParamsError", "Params", "load_params", "params_from_dict", "read_yaml", "SCHEMA", "stable_hash"]


class ParamsError(ValueError):
    """A params file (or override) is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Field:
    """One key of the schema: accepted types, default and an optional range check."""

    types: tuple[type, ...]
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None
    #: the value is a path (or list of paths) resolved against the project directory
    path: bool = False
    nullable: bool = False


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _finite_positive(v: Any) -> str | None:
    return None if 0 < v < float("inf") else "must be a finite number > 0"


def _dropout(v: Any) -> str | None:
    return None if 0 <= v < 1 else "must be in [0, 1)"


#: seeds feed torch (``manual_seed(seed · 100003 + epoch)`` per epoch), numpy and Pythia
SEED_MAX = 2**32 - 1
#: particles per jet the model pads to: pair features take P² memory per jet
MAX_PARTICLES_MAX = 1024


def _seed(v: Any) -> str | None:
    return None if 0 <= v <= SEED_MAX else f"must be in [0, {SEED_MAX}]"


def _max_particles(v: Any) -> str | None:
    return None if 2 <= v <= MAX_PARTICLES_MAX else f"must be in [2, {MAX_PARTICLES_MAX}]"


def _device_name(v: Any) -> str | None:
    if re.fullmatch(r"cpu|auto|cuda(:[0-9]+)?", v):
        return None
    return "must be 'cpu', 'cuda', 'cuda:N' or 'auto'"


def _one_of(*choices: Any) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {', '.join(map(repr, choices))}"

    return check


def _split(v: Any) -> str | None:
    if len(v) != 3 or any(not isinstance(x, int | float) or isinstance(x, bool) or not 0 <= x <= 1
                          for x in v):
        return "must be a list of three non-negative fractions [train, val, test]"
    if abs(sum(v) - 1.0) > 1e-6:
        return f"fractions must sum to 1 (they sum to {sum(v):g})"
    return None


def _scheduler(v: Any) -> str | None:
    if v in ("serial", "local") or ("://" in v and v.split("://", 1)[1]):
        return None
    return ("must be 'serial' (this process), 'local' (a Dask LocalCluster) or a Dask "
            "scheduler address such as tcp://HOST:PORT")


def _int_list(v: Any) -> str | None:
    if not v or any(not isinstance(x, int) or isinstance(x, bool) or x <= 0 for x in v):
        return "must be a non-empty list of positive integers"
    return None


def _at_least_two(v: Any) -> str | None:
    return None if v >= 2 else "must be >= 2 (a jackknife needs two groups)"


def _unit_interval(v: Any) -> str | None:
    return None if 0 <= v <= 1 else "must be in [0, 1]"


def _k_values(v: Any) -> str | None:
    if not v or any(not (x == "all" or (isinstance(x, int) and not isinstance(x, bool) and x >= 1))
                    for x in v):
        return "must be a non-empty list of whole numbers >= 1 or 'all'"
    return None


INT, FLOAT, STR, BOOL, LIST, MAPPING = (int,), (int, float), (str,), (bool,), (list,), (dict,)

#: ``model.attention`` values (partnb.model.part.ATTENTION_VARIANTS; docs/model.md#attention-variants)
ATTENTION_VARIANTS = ("softmax", "sparsemax", "entmax15", "differential", "differential_u")
#: ``train.attention_penalty.kind`` values (docs/model.md#attention-sparsity-penalty)
PENALTY_KINDS = ("entropy", "l1")

#: The schema: section -> key -> Field. Scalars at top level live under "".
SCHEMA: dict[str, dict[str, Field]] = {
    "": {
        "name": Field(STR, None, "run name: outputs go to figures/<name>, runs/<name>, models/<name>",
                      nullable=True),
        "seed": Field(INT, 42, "master seed of generation, splits, initialisation and training",
                      _seed),
    },
    "dataset": {
        "name": Field(STR, "jetclass", "dataset family",
                      _one_of("jetclass", "toplandscape", "quarkgluon")),
        "source": Field(STR, "generate", "generate the embedded default data, or read files",
                        _one_of("generate", "files")),
        "files": Field(LIST, [], "source: files: paths, globs or directories of the data",
                       path=True),
        "test_files": Field(LIST, [], "optional separate test files (else split from `files`)",
                            path=True),
        "format": Field(STR, "auto", "file format (auto-detected by default)",
                        _one_of("auto", "jetclass-root", "toplandscape-root", "quarkgluon-root",
                                "toplandscape-h5", "quarkgluon-npz", "toplandscape-parquet",
                                "quarkgluon-parquet")),
        "jets_per_class": Field(INT, 8000, "generate: jets per class (rounded up to whole files)",
                                _positive),
        "jets_per_file": Field(INT, 1000, "generate: jets per output file (one chunk of work)",
                               _positive),
        "classes": Field(LIST, None, "generate: subset of classes (default: all)", nullable=True),
        "detector": Field(STR, "none", "generate: detector response, none (particle level), "
                          "cms-like (JetClass: Delphes CMS card, particle flow) or atlas-like (Top "
                          "Landscape: Delphes ATLAS card, calorimeter towers); docs/detector.md",
                          _one_of("none", "cms-like", "atlas-like")),
        "workers": Field(INT, 0, "generate: worker processes (0 = all cores)", _non_negative),
        "cache_dir": Field(STR, "data/generated", "where generated files are cached", path=True),
        "split": Field(LIST, [0.8, 0.1, 0.1], "train/val/test fractions of the jets", _split),
    },
    "features": {
        "set": Field(STR, "kin", "particle feature set (docs/features.md#feature-sets)",
                     _one_of("kin", "kinpid", "kinpidplus", "full")),
        "max_particles": Field(INT, 128, "padded length P", _max_particles),
        "clip": Field(BOOL, True, "clip standardized features to [-5, 5] as weaver does"),
        "pair_features": Field(INT, 4, "pairwise features: 1 [lnD], 3 [lnkT, lnz, lnD], 4 (+ln m2)",
                               _one_of(0, 1, 3, 4)),
        "pad_mode": Field(STR, "wrap", "content of padded slots in training: weaver's 'wrap' "
                          "(particles of other jets) or 'zero' (docs/features.md#padding)",
                          _one_of("wrap", "zero")),
    },
    "model": {
        "embed_dims": Field(LIST, [128, 512, 128], "particle embedding MLP widths", _int_list),
        "pair_embed_dims": Field(LIST, [64, 64, 64], "pair embedding widths ([] = ParT-plain)",
                                 lambda v: None if not v else _int_list(v)),
        "num_heads": Field(INT, 8, "attention heads", _positive),
        "num_layers": Field(INT, 8, "particle-attention blocks", _positive),
        "num_cls_layers": Field(INT, 2, "class-attention blocks", _positive),
        "dropout": Field(FLOAT, 0.1, "dropout in particle blocks", _dropout),
        "trim": Field(BOOL, True, "weaver's sequence trimmer (random particle drop in training)"),
        "attention": Field(STR, "softmax", "attention of the particle blocks: softmax (ParT), "
                           "sparsemax, entmax15, differential (two query-key maps) or "
                           "differential_u (IAFormer: both maps from U; needs pair features); "
                           "docs/model.md#attention-variants", _one_of(*ATTENTION_VARIANTS)),
        "checkpoint": Field(STR, None, "load this state dict instead of the trained default",
                            nullable=True, path=True),
    },
    "train": {
        "optimizer": Field(STR, "ranger", "ranger (RAdam + Lookahead, docs/training.md#the-published-recipes) or adamw",
                           _one_of("ranger", "adamw")),
        "lr": Field(FLOAT, 1e-3, "learning rate", _finite_positive),
        "weight_decay": Field(FLOAT, 0.0, "weight decay (not on biases, norms, cls_token)",
                              lambda v: None if 0 <= v < float("inf") else "must be finite, >= 0"),
        "weight_decay_mode": Field(STR, "decoupled", "decoupled (weaver: w -= lr * wd * w) or "
                                   "coupled (wd * w added to the gradient, then rescaled by the "
                                   "adaptive step: torch's RAdam default)",
                                   _one_of("decoupled", "coupled")),
        "schedule": Field(STR, "flat+decay", "learning-rate schedule",
                          _one_of("flat+decay", "none")),
        "epochs": Field(INT, 6, "training epochs", _positive),
        "batch_size": Field(INT, 256, "global batch size", _positive),
        "max_jets": Field(INT, None, "cap on training jets (default: the whole train split)",
                          _positive, nullable=True),
        "threads": Field(INT, 0, "torch threads per process (0 = torch's default)", _non_negative),
        "device": Field(STR, "cpu", "where training runs: cpu, cuda, cuda:N or auto (cuda when "
                        "torch sees a GPU); it changes float rounding, not the recipe, so it is "
                        "not part of the run key (docs/training.md#training-on-a-gpu)",
                        _device_name),
        "batching": Field(STR, "bucketed", "training batches: plain (random) or bucketed (similar "
                          "multiplicity together; docs/datasets.md#length-bucketed-batches)",
                          _one_of("plain", "bucketed")),
        "monitor_jets": Field(INT, 500, "validation jets of the sparsity monitor (0 = off; "
                              "partnb.analysis.emergence)", _non_negative),
        "monitor_as_coded": Field(BOOL, True, "the monitor also measures the papers' as-coded "
                                  "capture"),
        "attention_penalty": Field(MAPPING, None, "sparsity penalty on the particle blocks' "
                                   "attention added to the loss, {kind: entropy | l1, weight: w} "
                                   "(docs/model.md#attention-sparsity-penalty); null = none",
                                   nullable=True),
    },
    "analysis": {
        "n_jets": Field(INT, 2000, "jets per analysis (test split)", _positive),
        "batch_size": Field(INT, 100, "jets per forward pass in analyses", _positive),
        "progress": Field(BOOL, True, "show progress bars"),
        "scheduler": Field(STR, None, "run the streamed passes of notebooks 03, 04 and 06 over "
                           "shards of the jets: null (one pass here), 'serial', 'local' (a "
                           "Dask LocalCluster) or tcp://HOST:PORT (a running Dask scheduler); "
                           "docs/cluster.md#sharded-analysis", _scheduler, nullable=True),
        "shards": Field(INT, None, "number of shards (default: 1 serial, the cores for 'local', "
                        "the workers of a remote cluster)", _positive, nullable=True),
        "threads": Field(INT, 0, "torch threads of the notebooks' analyses (0 = torch's default, "
                         "all cores; 1 keeps a shared machine responsive)", _non_negative),
        "jackknife_groups": Field(INT, 20, "jet groups of the jackknife errors of notebooks 03 "
                                  "and 04 (batch groups for the as-coded |A'|/|U|)", _at_least_two),
        "heatmap_head": Field(INT, 1, "head of the last particle block shown in the heat maps "
                              "(notebook 03; < model.num_heads)", _non_negative),
    },
    # what one notebook needs beyond the analysis settings: notebook parameters of the same
    # name override them (partnb.notebook.setup), so a params file may set them for every run
    "notebook": {
        "max_jets_per_class": Field(INT, 5000, "01: jets per class entering the dataset "
                                    "histograms", _positive),
        "detector_jets_per_class": Field(INT, 200, "01: jets per class generated at particle "
                                         "level and through the detector emulation of the real "
                                         "dataset, side by side (0: skip; docs/detector.md)",
                                         _non_negative),
        "graph_jet": Field(INT, 0, "05: draw the k-th jet of each type with enough particles "
                           "(and a lepton for Tbl)", _non_negative),
        "min_alpha": Field(FLOAT, 0.02, "05: graph lines with min-max-normalised weight below "
                           "this are not drawn (the JSON holds all)", _unit_interval),
        "compare_float64": Field(BOOL, True, "06: rerun the interaction metrics with float64 "
                                 "pair features (docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise)"),
        "k_values": Field(LIST, [1, 2, 3, 4, 6, 10, 20, 30, "all"], "07: the k of top-k "
                          "attention ('all': no restriction)", _k_values),
        "restrict_class_blocks": Field(BOOL, False, "07: also restrict the class-attention "
                                       "blocks (not stated in the paper)"),
    },
    "output": {
        "figures": Field(STR, "figures/{name}", "figures and tables", path=True),
        "runs": Field(STR, "runs/{name}", "executed notebooks", path=True),
        "models": Field(STR, "models/{name}", "checkpoints and training logs", path=True),
    },
}


def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list", dict: "a mapping"}
    if types == FLOAT:
        return "a number"
    return " or ".join(names.get(t, t.__name__) for t in types)


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else f" (valid keys: {', '.join(valid)})"


def stable_hash(obj: Any, length: int = 12) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys), first ``length`` hex digits."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class Section(Mapping):
    """Read-only attribute access to one validated section (``p.dataset.jets_per_class``)."""

    def __init__(self, values: dict[str, Any]):
        self._values = values

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Section({self._values!r})"


class Params:
    """Validated parameters. Sections are attributes; ``to_dict()`` gives plain data."""

    def __init__(self, values: dict[str, Any], source: Path | None, root: Path):
        self._values = values
        self.source = source
        self.root = root

    def __getattr__(self, key: str) -> Any:
        values = self.__dict__.get("_values", {})
        if key in values:
            v = values[key]
            return Section(v) if isinstance(v, dict) else v
        raise AttributeError(key)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._values)

    def hash(self, *sections: str, length: int = 12) -> str:
        """Stable hash of the given sections (all when none given) for cache names."""
        data = self._values if not sections else {s: self._values[s] for s in sections}
        return stable_hash(data, length)

    def __repr__(self) -> str:
        return f"Params({self.source or '<dict>'}: {self._values!r})"


def _project_root(path: Path) -> Path:
    """The directory holding the nearest enclosing ``params/`` folder (``params/study/x.yaml``
    too), else the file's own folder."""
    path = path.resolve()
    for folder in path.parents:
        if folder.name == "params":
            return folder.parent
    return path.parent


def _resolve_path(value: str, root: Path, name: str) -> str:
    value = os.path.expanduser(value.replace("{name}", name))
    return str(value if os.path.isabs(value) else root / value)


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def params_from_dict(
    data: Mapping[str, Any] | None,
    *,
    source: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    check_files: bool = True,
) -> Params:
    """Validate ``data`` against :data:`SCHEMA` and return :class:`Params`.

    Args:
        data: the parsed YAML (a mapping of sections) or None for all defaults.
        source: file the data came from (named in error messages).
        root: project directory for relative paths (default: derived from ``source``,
            else the current directory).
        check_files: check that ``dataset.files`` and ``model.checkpoint`` exist.

    Raises:
        ParamsError: naming the file and the offending key.
    """
    where = str(source) if source is not None else "<params>"
    if root is None:
        root = _project_root(Path(source)) if source is not None else Path.cwd()
    root = Path(root).resolve()
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ParamsError(f"{where}: the file must hold a mapping of sections, not {type(data).__name__}")

    sections = [s for s in SCHEMA if s]
    valid_top = sections + list(SCHEMA[""])
    out: dict[str, Any] = {}
    for key in data:
        if key not in valid_top:
            raise ParamsError(f"{where}: unknown key {key!r}{_suggest(str(key), valid_top)}")

    def validate(section: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        spec = SCHEMA[section]
        result: dict[str, Any] = {}
        for key in raw:
            if key not in spec:
                full = f"{section}.{key}" if section else key
                raise ParamsError(f"{where}: unknown key {full!r}{_suggest(str(key), list(spec))}")
        for key, f in spec.items():
            full = f"{section}.{key}" if section else key
            value = raw.get(key, copy.deepcopy(f.default))
            if value is None:
                if not f.nullable and f.default is not None:
                    raise ParamsError(f"{where}: {full} must not be empty")
                result[key] = None
                continue
            ok = isinstance(value, f.types) and not (isinstance(value, bool) and bool not in f.types)
            if not ok:
                raise ParamsError(
                    f"{where}: {full} must be {_type_name(f.types)}, got {value!r} "
                    f"({type(value).__name__})"
                )
            if f.check is not None:
                problem = f.check(value)
                if problem:
                    raise ParamsError(f"{where}: {full} = {value!r} {problem}")
            result[key] = value
        return result

    out.update(validate("", {k: data[k] for k in SCHEMA[""] if k in data}))
    for section in sections:
        raw = data.get(section) or {}
        if not isinstance(raw, Mapping):
            raise ParamsError(f"{where}: section {section!r} must be a mapping of keys")
        out[section] = validate(section, raw)

    if out["name"] is None:
        out["name"] = out["dataset"]["name"]
    name = out["name"]
    # Resolve paths against the project directory.
    for section in sections:
        for key, f in SCHEMA[section].items():
            if not f.path or out[section][key] is None:
                continue
            value = out[section][key]
            if isinstance(value, list):
                for item in value:
                    if not isinstance(item, str):
                        raise ParamsError(f"{where}: {section}.{key} must be a list of paths, "
                                          f"got the item {item!r}")
                out[section][key] = [_resolve_path(v, root, name) for v in value]
            else:
                out[section][key] = _resolve_path(value, root, name)

    ds = out["dataset"]
    if ds["source"] == "files" and not ds["files"]:
        raise ParamsError(f"{where}: dataset.source is 'files' but dataset.files is empty")
    if ds["classes"] is not None:
        from .data.schema import DATASETS

        valid = DATASETS[ds["name"]].classes
        for c in ds["classes"]:
            if c not in valid:
                raise ParamsError(f"{where}: dataset.classes: {c!r} is not a class of "
                                  f"{ds['name']}{_suggest(str(c), list(valid))}")
    _check_attention(out, where)
    if out["analysis"]["heatmap_head"] >= out["model"]["num_heads"]:
        raise ParamsError(f"{where}: analysis.heatmap_head = {out['analysis']['heatmap_head']} "
                          f"must be < model.num_heads = {out['model']['num_heads']}")
    if out["model"]["embed_dims"][-1] % out["model"]["num_heads"]:
        raise ParamsError(f"{where}: model.embed_dims[-1] = {out['model']['embed_dims'][-1]} "
                          f"is not divisible by model.num_heads = {out['model']['num_heads']}")
    if check_files:
        for key in ("files", "test_files"):
            for pattern in ds[key] if ds["source"] == "files" else []:
                matches = _glob.glob(pattern, recursive=True) if _has_glob(pattern) else (
                    [pattern] if os.path.exists(pattern) else [])
                if not matches:
                    raise ParamsError(f"{where}: dataset.{key}: {pattern} matches no file")
        ckpt = out["model"]["checkpoint"]
        if ckpt is not None and not os.path.isfile(ckpt):
            raise ParamsError(f"{where}: model.checkpoint: {ckpt} does not exist")
    return Params(out, Path(source) if source is not None else None, root)


def _check_attention(out: dict[str, Any], where: str) -> None:
    """The attention variant against the pair features, and the penalty's keys and values."""
    model = out["model"]
    if model["attention"] == "differential_u" and not (out["features"]["pair_features"]
                                                       and model["pair_embed_dims"]):
        raise ParamsError(f"{where}: model.attention = 'differential_u' builds both attention maps "
                          "from the pair features alone, but the model has none "
                          "(features.pair_features = 0 or model.pair_embed_dims = []); use "
                          "'differential' or give pair features")
    penalty = out["train"]["attention_penalty"]
    if penalty is None:
        return
    for key in penalty:
        if key not in ("kind", "weight"):
            raise ParamsError(f"{where}: unknown key 'train.attention_penalty.{key}'"
                              f"{_suggest(str(key), ['kind', 'weight'])}")
    for key in ("kind", "weight"):
        if key not in penalty:
            raise ParamsError(f"{where}: train.attention_penalty.{key} is missing (give "
                              "{kind: entropy | l1, weight: w}, or null for no penalty)")
    kind, weight = penalty["kind"], penalty["weight"]
    if kind not in PENALTY_KINDS:
        raise ParamsError(f"{where}: train.attention_penalty.kind = {kind!r} must be one of "
                          f"{', '.join(map(repr, PENALTY_KINDS))}")
    if (isinstance(weight, bool) or not isinstance(weight, int | float)
            or not 0 <= weight < float("inf")):
        raise ParamsError(f"{where}: train.attention_penalty.weight = {weight!r} must be a "
                          "finite number >= 0")


def read_yaml(path: Path, what: str = "params file", error: type[Exception] = ParamsError):
    """``yaml.safe_load`` of a file; a missing, unparsable or binary file raises ``error``
    with one line naming the file (and the line and column of a YAML error)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}: not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None


def load_params(
    path: str | os.PathLike, overrides: Mapping[str, Any] | None = None, *, check_files: bool = True
) -> Params:
    """Load and validate a params YAML file.

    Args:
        path: the YAML file.
        overrides: dotted keys to override after loading, e.g. ``{"dataset.jets_per_class": 100}``
            (how the CLI options and notebook parameters reach the schema).
        check_files: check that input files exist.

    Raises:
        ParamsError: a missing or unparsable file, or any invalid key or value.
    """
    path = Path(path)
    data = read_yaml(path, "params file")
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the file must hold a mapping of sections")
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ParamsError(f"{path}: cannot override {dotted}: {part} is not a section")
        node[leaf] = value
    return params_from_dict(data, source=path, check_files=check_files)
