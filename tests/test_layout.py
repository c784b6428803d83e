"""The data flow of docs/design.md#layout, checked on the source: params -> data -> model ->
train | analysis -> plots/outputs, with notebook, study, runner and cli on top. Every import
counts, including the ones inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "partnb"

TOP = {"partnb.train", "partnb.notebook", "partnb.study", "partnb.runner", "partnb.cli", "partnb.lab"}
#: what each layer may not import (a module or anything under it)
FORBIDDEN = {
    "partnb.data": TOP | {"partnb.model", "partnb.analysis", "partnb.plots"},
    "partnb.model": TOP | {"partnb.analysis", "partnb.plots"},
    "partnb.analysis": TOP,
    "partnb.plots": TOP,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Absolute names of every module ``path`` (module ``name``) imports, relative imports
    resolved."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{alias.name}" for alias in node.names)
    return out


def _violations(path: Path, name: str | None = None) -> list[str]:
    name = name or _module_name(path)
    bad = []
    for layer, forbidden in FORBIDDEN.items():
        if name == layer or name.startswith(layer + "."):
            for imported in sorted(imports_of(path, name)):
                if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                    bad.append(f"{name} imports {imported}")
    return bad


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_no_upward_import(path):
    assert _violations(path) == []


def test_the_check_sees_relative_and_function_level_imports(tmp_path):
    """The checker must catch an upward import written relatively inside a function."""
    fake = tmp_path / "probe.py"
    fake.write_text("def f():\n    from ..train import train\n    from ..data.sample import load_split\n")
    assert _violations(fake, "partnb.analysis.probe") == [
        "partnb.analysis.probe imports partnb.train", "partnb.analysis.probe imports partnb.train.train"]


def test_train_holds_the_training_loop_only():
    """Splits, the model factory, inference and checkpoint resolution live below the trainer."""
    tree = ast.parse((PACKAGE / "train.py").read_text())
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    moved = {"load_split", "split_sizes", "split_slice", "split_indices", "model_from_params",
             "predict", "trained_model", "final_checkpoint", "plain_params"}
    assert defined & moved == set()
