"""The ``sitecustomize`` of a job run without a sandbox (copied into the job's fallback dir, first on
its ``PYTHONPATH``; never imported by the harness).

PyPI ``ymir-exc`` 1.x reads env.yaml from a path fixed in ``ymir_exc/settings.py``
(``DEFAULT_ENV_FILE_PATH = '/in/env.yaml'``, no variable), and ``/in`` does not exist without a
sandbox. An import hook sets that name to the mapped env.yaml (``$LIVE_CODE_ENV_FILE``) right after
the module runs, before anything reads it; the installed package is not touched. The 2.x SDK reads
``$DEFAULT_ENV_FILE_PATH``, which the harness sets to the same file.

Then the ``sitecustomize`` this file shadows (Debian's, a base image's) runs as it would have.
Standard library only: it runs in the job's interpreter.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

_SETTINGS = "ymir_exc.settings"
_ENV_FILE_VAR = "LIVE_CODE_ENV_FILE"
_HERE = os.path.dirname(os.path.abspath(__file__))


class _SettingsLoader:
    """Runs the real loader, then points ``DEFAULT_ENV_FILE_PATH`` at the mapped env.yaml."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        create = getattr(self._inner, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        path = os.environ.get(_ENV_FILE_VAR)
        if path:
            module.DEFAULT_ENV_FILE_PATH = path  # type: ignore[attr-defined]  # ymir_exc.settings, untyped here

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self._inner, name)


class _SettingsFinder:
    """A meta path finder that answers for ``ymir_exc.settings`` only, through the other finders."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != _SETTINGS:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _SettingsLoader(spec.loader)  # type: ignore[assignment]  # a Loader by duck typing
                return spec
        return None


def _run_shadowed() -> None:
    """The next ``sitecustomize`` on ``sys.path`` after this directory, as ``import`` would find it."""
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module  # what `import sitecustomize` gives from now on
    spec.loader.exec_module(module)


if not any(type(f).__name__ == "_SettingsFinder" for f in sys.meta_path):  # once, also if run again
    sys.meta_path.insert(0, _SettingsFinder())
_run_shadowed()
