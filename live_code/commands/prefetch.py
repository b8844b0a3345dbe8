"""``live-code prefetch URL PIN``: warm the cache with a repository's source and its environment,
as a derived image or an air-gapped site bakes them in (``base_images/prefetch``)."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from live_code import util
from live_code.commands._cli import Subparsers
from live_code.commands.repo import RepoSpec, resolve_source
from live_code.source import git
from live_code.source.store import Store

log = logging.getLogger(__name__)


def add_parser(sub: Subparsers) -> None:
    pf = sub.add_parser("prefetch", help="warm the cache (source and environment) for URL at PIN")
    pf.add_argument("url", help="the repository's URL (or a local path)")
    pf.add_argument("pin", help="a commit or tag (a branch with --allow-branch)")
    pf.add_argument("--source-only", action="store_true", help="fetch the source only, build no environment")
    pf.add_argument("--allow-branch", action="store_true", help="accept a branch as the pin")
    pf.add_argument("--index-url", help="as the task's pip_index_url (the env key includes the index settings)")
    pf.add_argument("--extra-index-url", action="append", default=[], help="as pip_extra_index_urls")
    pf.add_argument("--find-links", action="append", default=[], help="as pip_find_links (a wheelhouse)")
    pf.add_argument("--offline", action="store_true", help="as pip_offline: true")
    pf.set_defaults(func=cmd_prefetch)


def cmd_prefetch(args: argparse.Namespace) -> int:
    from live_code.envs import builder as envs

    index = envs.IndexSettings(
        index_url=args.index_url,
        extra_index_urls=tuple(args.extra_index_url),
        find_links=tuple(args.find_links),
        offline=args.offline,
    )
    cached = prefetch(args.url, args.pin, index=index, allow_branch=args.allow_branch, env=not args.source_only)
    print(f"source: {cached['url']} at {args.pin} = commit {cached['commit']} (mirror {cached['mirror'][:16]})")
    if "env" in cached:
        print(f"env:    {cached['env']} ({cached['env_packages']})")
    print(f"cache:  {Store().root}")
    return 0


def prefetch(
    url: str,
    pin: str,
    *,
    base_python: str | None = None,
    index: Any = None,
    allow_branch: bool = False,
    env: bool = True,
    store: Store | None = None,
) -> dict[str, str]:
    """Fetch ``url`` at ``pin`` into the cache and build its environment: what a derived image or
    an air-gapped site bakes in. Returns what was cached (source commit, mirror, env key)."""
    store = store or Store()
    tmp = Path(tempfile.mkdtemp(prefix="live-code-prefetch-"))
    try:
        source = resolve_source(RepoSpec(url, pin), tmp, allow_branch=allow_branch)
        prov = store.fetch_source(
            source.keys["git_url"],
            source.pin,
            tmp / "src",
            allow_branch=allow_branch,
            allow_local=git.allow_local_from_env(),
            token=source.token or os.environ.get("LIVE_CODE_GIT_TOKEN"),
        )
        out = {"commit": prov.commit, "url": prov.url, "mirror": git.normalise_url(prov.url, allow_local=True).cache_id}
        if env:
            out.update(_build_env(store, tmp / "src", base_python, index))
        return out
    finally:
        util.rmtree(tmp)


def _build_env(store: Store, src: Path, base_python: str | None, index: Any) -> dict[str, str]:
    """The environment a task's run of ``src`` would get, built into the cache with its bytecode."""
    from live_code.envs import builder as envs
    from live_code.task import manifest as manifest_mod

    manifest = manifest_mod.load(src)
    python = base_python or os.environ.get("LIVE_CODE_BASE_PYTHON") or None
    # the key a task's run computes (a legacy repo: with what its layout implies, SDK chosen "auto")
    spec_env = envs.prepare_env(
        src,
        manifest.requirements,
        base_python=python,
        legacy_layout=manifest.legacy,
        no_build_isolation=manifest.no_build_isolation,
        **({"index": index} if index is not None else {}),
    )
    with store.using("envs", spec_env.key):
        result = envs.ensure_env(
            store,
            spec_env,
            installer_cache=store.root / "installer-cache",
            reporter=lambda m: log.info("%s", m),
        )
        # an image bakes the bytecode in: its runs never compile (and the cache may be read-only)
        if not envs.finish_bytecode_compile(envs.start_bytecode_compile(result.path), timeout=3600.0):
            log.warning("the env's bytecode compile did not complete; runs will compile it again")
    return {"env": result.key, "env_packages": ", ".join(result.provenance.get("added") or []) or "none"}
