"""The ``partnb`` command.

    partnb generate params/<dataset>.yaml [--jets-per-class N] [--out DIR] [--workers N]
                    [--class NAME --file INDEX | --plan | --scheduler local|tcp://HOST:PORT]
    partnb info <file | glob | directory | params.yaml> [--json]
    partnb run params/<dataset>.yaml [--only 01,03]
    partnb train params/<dataset>.yaml [--epochs N] [--no-progress]
    partnb evaluate params/<dataset>.yaml [--checkpoint PATH] [--data FILE ...] [--json]
    partnb study params/study/<dataset>_grid.yaml [--list] [--point NAME ...]

Bad input (a params key, a file, a branch) ends the command with one line on stderr that
names it and a non-zero exit status, without a traceback.

Ctrl-C (SIGINT), SIGTERM and SIGHUP stop a command at once with one line on stderr and the
exit status 128 + the signal number (130 for Ctrl-C): the work unwinds like Ctrl-C, so temp
files are removed and worker processes stopped; every file already in place is complete, and
the same command resumes. ``kill -9`` leaves temp files, which the next run removes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path

__all__ = ["main"]

#: Exit status for invalid input (params, files): argparse uses 2 for usage errors too.
EXIT_BAD_INPUT = 2


def _user_errors() -> tuple[type[BaseException], ...]:
    from .data.features import FeatureError
    from .data.io import DataError
    from .model.checkpoint import CheckpointError
    from .outputs import OutputError
    from .params import ParamsError
    from .study import StudyError
    from .train import TrainingError

    return (ParamsError, DataError, FeatureError, CheckpointError, TrainingError, OutputError,
            StudyError)


def _cmd_generate(args) -> int:
    from .data.generate import (
        GenerationConfig,
        GenerationRequestError,
        generate,
        generate_file,
        missing_chunks,
        output_dir,
        plan_chunks,
    )
    from .outputs import check_output_dir
    from .params import load_params

    one_file = args.class_name is not None or args.file is not None
    if one_file and (args.class_name is None or args.file is None):
        given, needed = ("--class", "--file") if args.file is None else ("--file", "--class")
        print(f"partnb: {given} needs {needed}: a single file is --class NAME --file INDEX",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    modes = [m for m, on in (("--class/--file", one_file), ("--plan", args.plan),
                             ("--scheduler", args.scheduler is not None)) if on]
    if len(modes) > 1:
        print(f"partnb: {' and '.join(modes)} do not go together", file=sys.stderr)
        return EXIT_BAD_INPUT
    overrides = {"dataset.workers": args.workers}
    params = load_params(args.params, overrides)
    if params.dataset.source != "generate":
        print(f"partnb: {args.params}: dataset.source is 'files'; nothing to generate",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    cache = args.out or params.dataset.cache_dir
    config = GenerationConfig.from_params(params, args.jets_per_class)
    try:
        if args.plan:  # reads only: stdout CLASS FILE_INDEX lines, one summary line on stderr
            missing = missing_chunks(config, cache)
            for c in missing:
                print(f"{c.class_name} {c.index}")
            print(f"# {config.dataset}: {len(missing)} of {len(plan_chunks(config))} files "
                  f"missing in {output_dir(config, cache)}", file=sys.stderr)
            return 0
        check_output_dir(cache, "--out" if args.out else "dataset.cache_dir")
        if one_file:
            path, stats = generate_file(config, args.class_name, args.file, cache)
            if stats.n_events:
                print(f"{path}: {stats.n_jets} jets of {args.class_name} made in "
                      f"{stats.seconds:.1f} s ({stats.n_jets / max(stats.seconds, 1e-9):.1f} "
                      "jets/s)")
            else:
                print(f"{path}: already there (kept)")
            return 0
        progress = not args.no_progress
        files = generate(config, cache, workers=params.dataset.workers,
                         scheduler=args.scheduler, progress=progress,
                         log=None if progress else print)
    except GenerationRequestError as exc:
        print(f"partnb: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{len(files)} files of {config.dataset} in {files[0].parent}")
    return 0


def _info_target(target: str):
    """(paths, card) for a file/glob/directory, or the files of a params file."""
    p = Path(target)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        from .data import dataset_files
        from .params import load_params

        params = load_params(p)
        ds = dataset_files(params, generate=False)
        return list(ds.files), ds.card
    return target, None


def _cmd_info(args) -> int:
    from .data import summarize

    paths, card = _info_target(args.target)
    summary = summarize(paths)
    if card is None and summary["format"].endswith("-root"):
        card = _card_from_manifest(paths)
    if args.json:
        if card:
            summary["card"] = card
        print(json.dumps(summary))
        return 0
    print(f"format: {summary['format']} ({summary['dataset']}), {summary['n_files']} file(s), "
          f"{summary['n_jets']} jets")
    print(f"{'class':<8} {'jets':>10} {'<multiplicity>':>15} {'median mass [GeV]':>18}")
    for c in summary["classes"]:
        mult = "-" if c["mean_multiplicity"] is None else f"{c['mean_multiplicity']:.1f}"
        mass = "-" if c["median_mass"] is None else f"{c['median_mass']:.1f}"
        print(f"{c['name']:<8} {c['n_jets']:>10} {mult:>15} {mass:>18}")
    if card:
        print()
        print(card)
    return 0


def _card_from_manifest(paths) -> str | None:
    from .data.io import expand_paths

    first = expand_paths(paths)[0]
    manifest = first.parent / "manifest.json"
    if manifest.is_file():
        try:
            return json.loads(manifest.read_text()).get("card")
        except ValueError:
            return None
    return None


def _cmd_run(args) -> int:
    from .params import load_params
    from .runner import list_notebooks, run_comparison, run_notebooks

    for path in args.params:
        _check_run_outputs(load_params(path))  # fail fast on a bad params file or output path
    only = [x.strip() for x in args.only.split(",") if x.strip()] if args.only is not None else None
    if only == []:
        print(f"partnb: error: --only {args.only!r} names no notebook (give e.g. --only 03,04)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        list_notebooks(only)
    except ValueError as exc:
        print(f"partnb: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    results = []
    for path in args.params:
        if len(args.params) > 1:
            print(f"== {path}")
        results += run_notebooks(path, only=only)
    if args.compare:
        print("== comparison")
        results.append(run_comparison(args.params))
    return _report_failures(results)


def _check_run_outputs(params) -> None:
    """Every directory a run writes can be a writable directory (nothing is created), and
    given files hold the params' dataset family and format (metadata only)."""
    from .outputs import check_output_dir

    for key in ("figures", "runs", "models"):
        check_output_dir(getattr(params.output, key), f"output.{key}")
    if params.dataset.source == "generate":
        check_output_dir(params.dataset.cache_dir, "dataset.cache_dir")
    else:
        from .data import dataset_files

        dataset_files(params, generate=False)


def _cmd_compare(args) -> int:
    from .params import load_params
    from .runner import run_comparison

    for path in args.params:
        load_params(path)
    return _report_failures([run_comparison(args.params, output=args.out)])


def _cmd_study(args) -> int:
    from .study import load_study, point_status, run_study

    study = load_study(args.study)
    if args.list:
        for point in study.points:
            p = point.params
            print(f"{point.name:<28} {point_status(point):<14} {p.train.epochs} epochs, "
                  f"max_jets {p.train.max_jets}, seed {p.seed}  "
                  f"[partnb study {args.study} --point {point.name}]")
        return 0
    if args.point:
        for name in args.point:
            study.point(name)  # every name checked before any training
    run_study(study, args.point, progress=not args.no_progress, device=args.device)
    return 0


def _cmd_report(args) -> int:
    from .report import ReportError, build_site

    try:
        site = build_site(args.params, out=args.out, code=args.code, partial=args.partial,
                          reference=args.reference, log=print if args.verbose else (lambda *_: None))
    except ReportError as exc:
        print(f"partnb: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    index = site.path / "index.html"
    print(f"site: {index} ({len(site.pages)} pages, {site.seconds:.1f} s); open "
          f"{index.as_uri()} in a browser, or serve it: python -m http.server -d {site.path}")
    return 0


def _report_failures(results) -> int:
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"partnb: notebooks/{r.notebook}.ipynb failed at {r.error} "
              f"(executed copy: {r.output})", file=sys.stderr)
    return 1 if failed else 0


def _cmd_train(args) -> int:
    from .model.factory import plain_params
    from .params import load_params
    from .train import train

    params = load_params(args.params)
    if args.plain:
        params = plain_params(params)
    result = train(params, epochs=args.epochs, progress=not args.no_progress, device=args.device)
    last = result.log[-1] if result.log else {}
    print(f"trained {params.name}: {len(result.log)} epochs in {result.directory}, "
          f"val accuracy {last.get('val_accuracy', float('nan')):.4f}")
    return 0


def _cmd_evaluate(args) -> int:
    from .data.io import DataError, check_dataset_files
    from .data.sample import load_split
    from .metrics import evaluate
    from .model.checkpoint import load_state_dict_any
    from .model.factory import final_checkpoint, model_from_params, predict
    from .params import load_params

    params = load_params(args.params)
    checkpoint = Path(args.checkpoint) if args.checkpoint else final_checkpoint(params)
    if not checkpoint.is_file():
        raise DataError(f"{checkpoint}: checkpoint not found (run `partnb train {args.params}` "
                        "or give --checkpoint)")
    files = None
    if args.data:
        # unknown or corrupt format, or jets of another family than the params' model: one
        # clear error before any work
        files = check_dataset_files(args.data, params.dataset.name,
                                    what=f"dataset.name of {args.params}")
    model = model_from_params(params)
    load_state_dict_any(model, checkpoint)
    inputs = load_split(params, "test", files=files, progress=False)
    logits = predict(model, inputs)
    result = evaluate(inputs.label, logits, params.dataset.name)
    result["checkpoint"] = str(checkpoint)
    if args.json:
        print(json.dumps(_json_safe(result), allow_nan=False))
        return 0
    print(f"{params.name}: {result['n_jets']} jets, accuracy {result['accuracy']:.4f}, "
          f"AUC {result['auc']:.4f} ({checkpoint})")
    for name, value in result["rejection"].items():
        print(f"  Rej {name}: {value:.1f}")
    return 0


def _json_safe(obj):
    """Strict JSON: infinite rejections (no background passes) and NaN become null."""
    import math

    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="partnb",
        description="Reproducible companion to 'Why Is Attention Sparse in Particle Transformer?'",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate the embedded default data (Pythia 8 + FastJet)")
    g.add_argument("params", help="params YAML file (dataset.source: generate)")
    g.add_argument("--jets-per-class", type=int, default=None, metavar="N",
                   help="jets per class (default: dataset.jets_per_class)")
    g.add_argument("--out", default=None, metavar="DIR",
                   help="cache directory (default: dataset.cache_dir)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: dataset.workers; 0 = all cores)")
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bar: a line of files done / total and jets/s every 30 s")
    g.add_argument("--class", dest="class_name", default=None, metavar="NAME",
                   help="with --file: make only file INDEX of class NAME (an array task)")
    g.add_argument("--file", type=int, default=None, metavar="INDEX",
                   help="with --class: the file's index, 0 ... files per class - 1")
    g.add_argument("--plan", action="store_true",
                   help="list the missing files, one 'CLASS INDEX' per line on stdout (a summary "
                        "line on stderr), and make nothing")
    g.add_argument("--scheduler", default=None, metavar="local|ADDRESS",
                   help="run the files as tasks on dask.distributed: 'local' (a LocalCluster of "
                        "--workers processes) or a scheduler address tcp://HOST:PORT")
    g.set_defaults(func=_cmd_generate)

    i = sub.add_parser("info", help="describe a dataset: format, jets, classes")
    i.add_argument("target", help="a file, glob, directory, or params YAML")
    i.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    i.set_defaults(func=_cmd_info)

    r = sub.add_parser("run", help="execute every notebook for each params file (papermill)")
    r.add_argument("params", nargs="+", help="params YAML file(s)")
    r.add_argument("--only", default=None, metavar="NN,...",
                   help="comma-separated notebook numbers or names, e.g. 01,03")
    r.add_argument("--compare", action="store_true",
                   help="then run 08_dataset_comparison over the params files' tables")
    r.set_defaults(func=_cmd_run)

    c = sub.add_parser("compare", help="overlay several datasets' tables (08_dataset_comparison)")
    c.add_argument("params", nargs="+", help="params YAML files whose runs wrote the tables")
    c.add_argument("--out", default=None, help="output folder (default: figures/comparison)")
    c.set_defaults(func=_cmd_compare)

    rp = sub.add_parser("report", help="a static HTML site of the executed runs (no network "
                                       "needed to view it)")
    rp.add_argument("params", nargs="+", help="params YAML file(s) whose runs to show")
    rp.add_argument("--out", default=None, metavar="DIR",
                    help="site folder (default: build/site in the project); an earlier site "
                         "there is replaced")
    rp.add_argument("--code", choices=("folded", "shown"), default="folded",
                    help="code cells folded under a 'code' toggle (default) or shown")
    rp.add_argument("--partial", action="store_true",
                    help="build although some notebooks of a run were not executed (with "
                         "--reference: have no committed outputs)")
    rp.add_argument("--reference", action="store_true",
                    help="build from the committed reference outputs (figures/<dataset>/) and the "
                         "notebooks' sources, executing nothing: works on a fresh clone")
    rp.add_argument("--verbose", action="store_true", help="one line per page written")
    rp.set_defaults(func=_cmd_report)

    t = sub.add_parser("train", help="train the params' model (resumes a killed run)")
    t.add_argument("params", help="params YAML file")
    t.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--device", default=None, metavar="cpu|cuda|cuda:N|auto",
                   help="override train.device (docs/training.md#training-on-a-gpu)")
    t.add_argument("--plain", action="store_true",
                   help="train ParT-plain (no pair features) into <output.models>/plain")
    t.set_defaults(func=_cmd_train)

    s = sub.add_parser("study", help="train the points of a study grid (resumable, skips done points)")
    s.add_argument("study", help="study YAML file (params/study/<dataset>_grid.yaml)")
    s.add_argument("--list", action="store_true", help="list the points and their status")
    s.add_argument("--point", nargs="+", default=None, metavar="NAME", help="train only these points")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--device", default=None, metavar="cpu|cuda|cuda:N|auto",
                   help="override train.device for every point trained")
    s.set_defaults(func=_cmd_study)

    e = sub.add_parser("evaluate", help="metrics of a checkpoint on the test split or files")
    e.add_argument("params", help="params YAML file")
    e.add_argument("--checkpoint", default=None, help="state dict (default: the last epoch)")
    e.add_argument("--data", nargs="+", default=None, help="files or globs in any format")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    e.set_defaults(func=_cmd_evaluate)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that the same clean-up runs."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _quiet_from_now_on():
    """The work is being stopped: the kernel of a running notebook gets the same Ctrl-C and
    dies, and the libraries around it (nbclient, asyncio) log that as errors and tracebacks
    while the command unwinds. Nothing of that is news to a user who stopped it: from the
    signal on, only partnb's own one line is printed. Called in the signal handler, before any
    other code of the main thread runs again."""
    import logging

    logging.disable(logging.CRITICAL)


def _raise_terminated(signum, frame):
    _quiet_from_now_on()
    raise _Terminated(signum)


def _raise_interrupt(signum, frame):
    _quiet_from_now_on()
    raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_like_ctrl_c():
    """While the command runs, SIGTERM and SIGHUP unwind it like Ctrl-C (Python's default
    for them ends the process at once: no ``finally``, temp files and worker processes left
    behind), and all three silence library logging first (:func:`_quiet_from_now_on`).
    Signals ignored when partnb started (``nohup``) stay ignored; the previous handlers come
    back afterwards (``main`` called in process, e.g. by tests)."""
    import threading

    signums = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    if threading.current_thread() is not threading.main_thread():  # signal.signal refuses
        yield
        return
    before = {s: signal.getsignal(s) for s in [*signums, signal.SIGINT]}
    for s, handler in before.items():
        if s == signal.SIGINT:
            if handler is signal.default_int_handler:  # Python's own Ctrl-C, not an ignored one
                signal.signal(s, _raise_interrupt)
        elif handler is signal.SIG_DFL:
            signal.signal(s, _raise_terminated)
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "jets_per_class", None) is not None and args.jets_per_class <= 0:
        parser.error("--jets-per-class must be positive")
    # progress lines reach a batch log (stdout to a file or pipe) as they are printed
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        with _stop_like_ctrl_c():
            return args.func(args)
    except KeyboardInterrupt as exc:  # first: the clause below imports torch (seconds)
        signum = getattr(exc, "signum", signal.SIGINT)
        _quiet_from_now_on()  # also for a KeyboardInterrupt raised before the handler was in place
        print(f"partnb: stopped by {signal.Signals(signum).name}; complete files are kept and "
              "the same command resumes", file=sys.stderr)
        if argv is not None:  # called in process (tests, scripts): logging works again for them
            import logging
            logging.disable(logging.NOTSET)
        return 128 + signum
    except _user_errors() as exc:
        print(f"partnb: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
