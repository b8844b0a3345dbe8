"""``live-code init``: a new repository from one of ``remote_templates/``, committed and ready to push.

The templates are complete repositories kept in live-code's source tree (``remote_templates/``);
the wheel carries them as package data (``live_code/_templates``, see pyproject.toml), so ``init``
works from an installed wheel, in the image and from a checkout alike. ``LIVE_CODE_TEMPLATES``
points at another copy.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from live_code import util
from live_code.errors import ConfigError

TEMPLATES_ENV = "LIVE_CODE_TEMPLATES"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv*")
#: used only when git has no identity configured (git refuses to commit without one)
_FALLBACK_IDENTITY = ("-c", "user.name=live-code init", "-c", "user.email=init@live-code.invalid")


def templates_dir() -> Path:
    """Where the templates are: ``$LIVE_CODE_TEMPLATES``, else the installed package's
    ``_templates``, else ``remote_templates`` of the checkout."""
    given = os.environ.get(TEMPLATES_ENV)
    if given:
        path = Path(given)
    else:
        here = Path(__file__).resolve().parent.parent  # live_code/
        path = next(
            (p for p in (here / "_templates", here.parent / "remote_templates") if p.is_dir()), here / "_templates"
        )
    if not path.is_dir():
        raise ConfigError(
            f"no templates folder at {path}",
            value=str(path),
            hint=f"reinstall live-code (its wheel carries the templates), or set {TEMPLATES_ENV} "
            "to a copy of its remote_templates folder",
        )
    return path


def available() -> list[str]:
    root = templates_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def init(template: str, dest: Path) -> str:
    """Copy ``template`` into the new or empty ``dest``, ``git init`` it and make the first commit;
    returns the commit id."""
    names = available()
    if template not in names:
        raise ConfigError(
            f"there is no template {template!r} (yet) in {templates_dir()}",
            value=template,
            hint=f"choose one of: {', '.join(names)}",
        )
    dest = dest.absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"{dest} exists and is not an empty directory", value=str(dest), hint="choose a new DIR")
    created = not dest.exists()
    try:
        shutil.copytree(templates_dir() / template, dest, ignore=_IGNORE, dirs_exist_ok=True)
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        util.cmd_output("git", "init", "-q", "-b", "main", cwd=dest, env=env, timeout=60)
        util.cmd_output("git", "add", "-A", cwd=dest, env=env, timeout=60)
        rc, out, _ = util.cmd_output("git", "config", "user.email", cwd=dest, env=env, timeout=30, check=False)
        identity = () if rc == 0 and out.strip() or os.environ.get("GIT_AUTHOR_EMAIL") else _FALLBACK_IDENTITY
        util.cmd_output(
            "git",
            *identity,
            "commit",
            "-q",
            "-m",
            f"Start from the live-code {template} template",
            cwd=dest,
            env=env,
            timeout=60,
        )
        _, sha, _ = util.cmd_output("git", "rev-parse", "HEAD", cwd=dest, env=env, timeout=30)
    except (OSError, util.CalledProcessError) as e:
        if created:
            util.rmtree(dest)
        raise ConfigError(f"could not create the repository in {dest}: {e}", value=str(dest)) from None
    return sha.strip()


__all__: Sequence[str] = ("available", "init", "templates_dir")
