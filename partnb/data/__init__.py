"""Jets: generation (Pythia 8 + FastJet), reading of every supported format, model inputs.

The one entry point notebooks need is :func:`dataset_files`: given validated params it
returns the files of the dataset (generating the embedded default data first when
``dataset.source`` is ``generate`` and it is not cached yet), so the same notebook runs on
generated jets and on the real JetClass / Top Landscape / Quark-Gluon files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DatasetFiles", "dataset_files", "summarize"]


@dataclass(frozen=True)
class DatasetFiles:
    """The files of one dataset and what they hold."""

    dataset: str
    classes: tuple[str, ...]
    files: tuple[Path, ...]
    source: str
    #: the dataset card (Markdown) for generated data, else a one-line description
    card: str

    def __len__(self) -> int:
        return len(self.files)


def dataset_files(params, *, generate: bool = True, progress: bool | None = None,
                  jets_per_class: int | None = None, cache_dir=None, log=None) -> DatasetFiles:
    """Files of the params' dataset.

    Args:
        params: validated :class:`partnb.params.Params`.
        generate: for ``source: generate``, generate missing files (else raise if missing).
        progress: progress bar (default: ``params.analysis.progress``).
        jets_per_class: override ``dataset.jets_per_class``.
        cache_dir: override ``dataset.cache_dir``.
        log: a callable taking one line: generation progress for batch logs (files done /
            total, jets/s), at most every 30 s.

    Raises:
        partnb.data.io.DataError: no files, or generated files missing with ``generate=False``.
    """
    from .io import DataError, check_dataset_files
    from .schema import DATASETS

    ds = params.dataset
    if progress is None:
        progress = params.analysis.progress
    if ds.source == "files":
        # every file of the params' family and format, checked (metadata) before any work
        files = tuple(check_dataset_files(list(ds.files), ds.name, format=ds.format))
        if ds.test_files:
            check_dataset_files(list(ds.test_files), ds.name, format=ds.format)
        return DatasetFiles(ds.name, DATASETS[ds.name].classes, files, "files",
                            f"{ds.name} files: {len(files)} file(s) given in {params.source}")
    from .cards import dataset_card_text
    from .generate import GenerationConfig, iter_generated_files
    from .generate import generate as run_generation

    config = GenerationConfig.from_params(params, jets_per_class)
    cache = cache_dir or ds.cache_dir
    if generate:
        files = tuple(run_generation(config, cache, workers=ds.workers, progress=progress,
                                     log=log))
    else:
        files = tuple(iter_generated_files(config, cache))
        missing = [f for f in files if not f.exists()]
        if missing:
            raise DataError(f"{missing[0]}: generated file missing ({len(missing)} of {len(files)}); "
                            f"run `partnb generate {params.source}` first")
    return DatasetFiles(ds.name, config.class_names, files, "generate", dataset_card_text(ds.name, detector=ds.detector))


def summarize(paths, *, format: str = "auto", step_size: int = 200_000) -> dict:
    """Format, number of jets, and per class: jets, mean multiplicity, median jet mass.

    Streams over the files (memory independent of their size); the median mass comes from
    a 0.1 GeV histogram, so it is exact to 0.1 GeV.
    """
    import awkward as ak
    import numpy as np

    from .io import dataset_of_format, detect_format, expand_paths, iterate_jets
    from .schema import DATASETS

    files = expand_paths(paths)
    fmt = detect_format(files[0]) if format == "auto" else format
    dataset = dataset_of_format(fmt)
    classes = DATASETS[dataset].classes
    edges = np.arange(0.0, 5000.0 + 0.1, 0.1)
    n = np.zeros(len(classes), dtype=np.int64)
    mult = np.zeros(len(classes))
    mass_hist = np.zeros((len(classes), len(edges) - 1), dtype=np.int64)
    for chunk in iterate_jets(files, step_size=step_size, format=format,
                              branches=["part_px", "jet_mass"]):
        label = np.asarray(chunk.label)
        nparts = ak.to_numpy(ak.num(chunk.part_px))
        mass = np.asarray(chunk.jet_mass, dtype=np.float64)
        for c in range(len(classes)):
            sel = label == c
            n[c] += sel.sum()
            mult[c] += nparts[sel].sum()
            mass_hist[c] += np.histogram(np.clip(mass[sel], 0, edges[-1] - 1e-6), edges)[0]
    out_classes = []
    for c, name in enumerate(classes):
        if n[c] == 0:
            out_classes.append({"name": name, "n_jets": 0, "mean_multiplicity": None,
                                "median_mass": None})
            continue
        cum = np.cumsum(mass_hist[c])
        k = int(np.searchsorted(cum, 0.5 * n[c]))
        out_classes.append({
            "name": name, "n_jets": int(n[c]),
            "mean_multiplicity": round(float(mult[c] / n[c]), 3),
            "median_mass": round(float(edges[k] + 0.05), 2),
        })
    return {"format": fmt, "dataset": dataset, "n_files": len(files), "n_jets": int(n.sum()),
            "classes": out_classes}
