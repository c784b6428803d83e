"""The code style the project keeps (ruff, configured in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import REPO


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(REPO / ".venv" / "bin" / "ruff")
    res = subprocess.run([ruff, "check", "partnb", "tests", "benchmarks", "notebooks"],
                         cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_cli_module_imports():
    res = subprocess.run([sys.executable, "-c", "import partnb.cli, partnb.params"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
