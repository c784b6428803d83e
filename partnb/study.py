"""Study grids: what drives attention sparsity (notebook 10, docs/sparsity_study.md).

A study file (``params/study/<dataset>_grid.yaml``) names a base params file and knobs that
are turned one at a time from it::

    study:
      base: ../toplandscape.yaml        # relative to the study file
      output: models/toplandscape/study # one sub-directory per point (project-relative)
      overrides:                        # applied to every point, base included
        train.max_jets: 4000
      seeds: [42, 43]                   # the base point once per seed: the seed-to-seed spread
      knobs:
        train_jets:                     # a knob is one params key and its values ...
          key: train.max_jets
          values: [4000, 16000, 64000]
          also: {64000: {dataset.jets_per_class: 40000}}   # ... with optional extra keys per
                                        # value (or a list: one mapping or null per value)
        padding:
          key: features.pad_mode
          values: [wrap, zero]

Every point is a params object validated before any training (a bad key or value fails
at once, naming the study file, knob and key); it trains with the sparsity monitor on into
``<output>/<point>`` and resumes after a kill like any ``partnb train``. A point whose last
epoch exists is skipped. ``partnb study FILE --list`` shows every point, its status and
the command that trains it alone, so a batch system can run one point per job (and a GPU
cluster the same grid with ``torchrun``: each point is an ordinary training run).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .analysis.emergence import BINARY_COLUMN, STRICT_COLUMN

__all__ = ["Study", "StudyError", "StudyPoint", "load_study", "point_status", "run_study"]


class StudyError(ValueError):
    """A study file is invalid; the message names the file, the knob and the key."""


@dataclass
class StudyPoint:
    """One training run of a study: ``knob`` = "base" for the base point (one per seed)."""

    name: str
    knob: str
    value: object
    seed: int
    overrides: dict
    params: object

    @property
    def directory(self) -> Path:
        return Path(self.params.output.models)


@dataclass
class Study:
    path: Path
    base: Path
    output: Path
    points: list[StudyPoint]

    def point(self, name: str) -> StudyPoint:
        for p in self.points:
            if p.name == name:
                return p
        raise StudyError(f"{self.path}: no point {name!r} (points: "
                         f"{', '.join(p.name for p in self.points)})")


def _slug(value) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(value)).strip("_")


def load_study(path) -> Study:
    """Read and validate a study file; every point's params are built and checked.

    Raises:
        StudyError: a missing or malformed file, section or knob, naming it.
        ParamsError: a point's params are invalid (the message names the key).
    """
    from .params import ParamsError, load_params, read_yaml

    path = Path(path)
    data = read_yaml(path, "study file", StudyError)
    spec = data.get("study") if isinstance(data, dict) else None
    if not isinstance(spec, dict):
        raise StudyError(f"{path}: the file must hold a 'study' mapping")
    unknown = sorted(set(spec) - {"base", "output", "overrides", "seeds", "knobs"})
    if unknown:
        raise StudyError(f"{path}: unknown key study.{unknown[0]} (valid: base, output, "
                         "overrides, seeds, knobs)")
    if not isinstance(spec.get("base"), str):
        raise StudyError(f"{path}: study.base must name the base params file")
    base = (path.parent / spec["base"]).resolve()
    if not base.is_file():
        raise StudyError(f"{path}: study.base: {base} does not exist")
    if not isinstance(spec.get("output"), str):
        raise StudyError(f"{path}: study.output must be a directory for the points' runs")
    overrides = spec.get("overrides") or {}
    seeds = spec.get("seeds") or [None]
    knobs = spec.get("knobs") or {}
    if not isinstance(overrides, dict):
        raise StudyError(f"{path}: study.overrides must map params keys (a.b) to values")
    if not isinstance(seeds, list) or not all(s is None or (isinstance(s, int) and not isinstance(s, bool))
                                              for s in seeds):
        raise StudyError(f"{path}: study.seeds must be a list of integers")
    if not isinstance(knobs, dict):
        raise StudyError(f"{path}: study.knobs must map knob names to {{key, values}}")
    base_params = load_params(base, overrides)
    output = Path(base_params.root) / spec["output"]

    def make(name, knob, value, seed, extra) -> StudyPoint:
        point_overrides = {**overrides, **extra, "output.models": str(output / name)}
        if seed is not None:
            point_overrides["seed"] = seed
        try:
            params = load_params(base, point_overrides)
        except ParamsError as error:
            raise StudyError(f"{path}: knob {knob!r} = {value!r}: {error}") from None
        return StudyPoint(name, knob, value, params.seed, point_overrides, params)

    points = [make(f"base-seed{base_params.seed if s is None else s}", "base", None,
                   s, {}) for s in seeds]
    for knob, k in knobs.items():
        if not isinstance(k, dict) or not isinstance(k.get("key"), str) or \
                not isinstance(k.get("values"), list) or len(k["values"]) < 2:
            raise StudyError(f"{path}: knob {knob!r} needs 'key' (a params key a.b) and "
                             "'values' (a list of at least two)")
        also = k.get("also") or {}
        if isinstance(also, list):  # one mapping (or null) per value, in order
            if len(also) != len(k["values"]) or not all(a is None or isinstance(a, dict) for a in also):
                raise StudyError(f"{path}: knob {knob!r}: a list 'also' needs one mapping or "
                                 "null per value")
            also = list(zip(k["values"], also, strict=True))
        elif isinstance(also, dict):
            also = list(also.items())
        else:
            raise StudyError(f"{path}: knob {knob!r}: 'also' must map values to extra keys")
        section_key = k["key"].split(".")
        base_value = base_params.to_dict()
        for part in section_key:
            if not isinstance(base_value, dict) or part not in base_value:
                raise StudyError(f"{path}: knob {knob!r}: {k['key']!r} is not a params key")
            base_value = base_value[part]
        for value in k["values"]:
            extra = next((v for key, v in also if key == value), None) or {}
            if value == base_value and not extra:
                continue  # the base point itself
            points.append(make(f"{knob}-{_slug(value)}", knob, value, seeds[0],
                               {k["key"]: copy.deepcopy(value), **extra}))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise StudyError(f"{path}: two points share a name ({names})")
    return Study(path, base, output, points)


def point_status(point: StudyPoint) -> str:
    """``done``, ``partial k/E`` (epochs complete) or ``todo``."""
    epochs = point.params.train.epochs
    done = sorted(point.directory.glob("epoch_[0-9][0-9][0-9].pt"))
    last = int(done[-1].stem.split("_")[1]) if done else 0
    if last >= epochs:
        return "done"
    return f"partial {last}/{epochs}" if last else "todo"


def run_study(study: Study, names: list[str] | None = None, *, progress: bool = False,
              log: Callable[[str], None] = print, device: str | None = None) -> list[StudyPoint]:
    """Train the chosen points (default: all) that are not done, in order, on ``device``
    (default: each point's ``train.device``); returns them."""
    from .train import train

    chosen = [study.point(n) for n in names] if names else study.points
    trained = []
    for point in chosen:
        status = point_status(point)
        if status == "done":
            log(f"{point.name}: done, skipped")
            continue
        log(f"{point.name}: {status} -> training into {point.directory}")
        train(point.params, progress=progress, device=device,
              log=lambda line, p=point: log(f"{p.name}: {line}"))
        trained.append(point)
    return trained


# --- what the points measured (notebook 10) ------------------------------------------------------

#: the sparsity measures notebook 10 follows, as monitor-log columns
STUDY_METRICS = (BINARY_COLUMN, STRICT_COLUMN, "median_row_max", "median_logit_gap",
                 "mean_norm_entropy", "D_rate", BINARY_COLUMN + "_as_coded", "probe_accuracy")


def study_rows(study: Study) -> list[dict]:
    """One row per finished point: knob, value, seed, training jets and optimiser steps, and
    the last monitor row's measures (with their jackknife errors where the monitor has them).
    Points still training or not started are left out (:func:`point_status` says which)."""
    import json

    from .data.sample import split_sizes

    rows = []
    sizes: dict = {}
    for point in study.points:
        if point_status(point) != "done":
            continue
        log = json.loads((point.directory / "monitor_log.json").read_text())
        last = log[-1]
        p = point.params
        key = p.hash("dataset")
        if key not in sizes:
            sizes[key] = split_sizes(p, generate=False)["train"]  # never generates
        jets = min(sizes[key], p.train.max_jets or sizes[key])
        row = {"point": point.name, "knob": point.knob, "value": point.value, "seed": point.seed,
               "train_jets": jets, "epochs": p.train.epochs, "steps": last["step"],
               "classes": len(p.dataset.classes) if p.dataset.classes else None,
               "embed_dim": p.model.embed_dims[-1], "pad_mode": p.features.pad_mode,
               "weight_decay": p.train.weight_decay,
               "weight_decay_mode": p.train.weight_decay_mode, "detector": p.dataset.detector}
        for m in STUDY_METRICS:
            row[m] = last.get(m, float("nan"))
            row[f"{m}_err"] = last.get(f"{m}_err", float("nan"))
        rows.append(row)
    return rows
