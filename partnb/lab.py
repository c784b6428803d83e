"""JupyterLab on partnb's notebooks, configured for the project's environment only.

``python -m partnb.lab`` (run by ``.ci/setup``) writes two settings files under the
environment's prefix (``.venv``), never under the user's home:

* ``etc/jupyter/jupyter_server_config.json``: the server uses :class:`NotebookContentsManager`;
* ``share/jupyter/lab/settings/overrides.json``: a double click opens a ``.py`` as a notebook
  ("Jupytext Notebook"), and JupyterLab neither asks to fetch the Jupyter news nor checks for
  updates (no pop-up on first start, no request to the internet).

:class:`NotebookContentsManager` is jupytext's contents manager (a notebook's ``.py`` opens as a
notebook; saving either file of a pair writes both, with ``jupytext.toml``) plus one thing.
JupyterLab writes the kernel's ``language_info``, exact Python version included, into a
notebook's metadata as soon as the kernel starts, so a notebook stored without it is marked
modified the moment it is opened. The committed notebooks leave ``language_info`` out (it would
pin one Python release); the manager fills it in when a ``partnb``-kernel notebook is loaded,
from the environment the kernel runs in (the same ``.venv``), so opening changes nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class

__all__ = ["KERNEL_NAME", "LAB_SETTINGS", "NotebookContentsManager", "configure_environment",
           "kernel_language_info"]

#: the Jupyter kernel ``.ci/setup`` registers for the project's environment
KERNEL_NAME = "partnb"

#: JupyterLab settings for the environment (``overrides.json``: plugin id -> settings)
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def kernel_language_info() -> dict:
    """The ``language_info`` the partnb kernel (ipykernel in this environment) reports."""
    from ipykernel.ipkernel import IPythonKernel

    return dict(IPythonKernel.language_info)


class NotebookContentsManager(build_async_jupytext_contents_manager_class(AsyncLargeFileManager)):
    """Jupytext's contents manager; loaded ``partnb`` notebooks carry the kernel's
    ``language_info``, so that the kernel starting does not mark them modified."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):  # noqa: A002
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if content and model.get("type") == "notebook":
            metadata = model["content"]["metadata"]
            if metadata.get("kernelspec", {}).get("name") == KERNEL_NAME:
                metadata.setdefault("language_info", kernel_language_info())
        return model


def _merge_json(path: Path, settings: dict) -> None:
    """Merge ``settings`` (two levels deep) into the JSON file at ``path``, keeping other keys."""
    data = json.loads(path.read_text()) if path.exists() else {}
    for section, values in settings.items():
        current = data.setdefault(section, {})
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(current.get(key), dict):
                current[key] = {**current[key], **value}
            else:
                current[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def configure_environment(prefix: str | Path = sys.prefix) -> list[Path]:
    """Write the server and JupyterLab settings under ``prefix``; returns the files written."""
    prefix = Path(prefix)
    server = prefix / "etc" / "jupyter" / "jupyter_server_config.json"
    lab = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    _merge_json(server, {"ServerApp": {
        "contents_manager_class": "partnb.lab.NotebookContentsManager"}})
    _merge_json(lab, LAB_SETTINGS)
    return [server, lab]


if __name__ == "__main__":
    configure_environment()
