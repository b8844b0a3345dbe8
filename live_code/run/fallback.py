"""A job without a sandbox: the task at mapped paths, its results mapped back, ``/in`` watched.

Without bubblewrap (not installed, not root on macOS, or a kernel that forbids user namespaces:
Ubuntu 24.04's AppArmor rule, most unprivileged containers) the job cannot see the task at ``/in``
and ``/out``. It gets a view in the run's work dir where every path it reads through the task
resolves on this machine::

    WORK/fallback/in/                     what /in is in the container (read-only modes)
        env.yaml, config.yaml, *.tsv      copies with every /in and /out path mapped: /in to this
                                          dir, /out to the real out dir; the image and annotation
                                          paths of the index files included
        assets, annotations, models, ...  links to the real ones
    WORK/fallback/live-code-config.yaml   the merged config of /out, mapped the same way
    WORK/fallback/site/sitecustomize.py   points PyPI ymir-exc 1.x, which hard-codes
                                          /in/env.yaml, at the mapped one (_sitecustomize.py)

After the job the paths it wrote back (``result.tsv``'s first column, ``infer-result.json``'s
image keys) are mapped back to the container's, and the real in dir and the mapped copies are
compared with a snapshot from before the job: any change fails the run, as the read-only ``/in``
of the container would have. It is found after the fact (the write itself succeeded), and a file
opened for writing but left unchanged goes unseen.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from live_code import contract, util
from live_code.errors import JobError

#: in-dir files copied with their paths mapped; everything else at the top is linked
_MAPPED_SUFFIXES = (".yaml", ".yml", ".tsv")
#: changed paths named in the error (the others are counted)
_SHOWN = 5
#: a container root in YAML text, as a whole path component at the start of a value or list item
_YAML_ROOT = re.compile(r"(?<![^\s'\"\[{,])(/in|/out)(?=[/\s'\",\]}]|$)")
#: a snapshot entry: what kind of file, and what tells a change (mode, size, mtime or link target)
Entry = tuple[Any, ...]


class View(NamedTuple):
    """Where a job without a sandbox finds the task (see the module's docstring)."""

    in_dir: Path
    out_dir: Path
    #: WORK/fallback
    root: Path
    #: the merged config handed to the job (a mapped copy of the one in the out dir)
    config_file: Path
    #: host path prefixes that stand for a container path, longest first
    back: tuple[tuple[str, str], ...]

    @property
    def mapped_in(self) -> Path:
        return self.root / "in"

    @property
    def env_file(self) -> Path:
        return self.mapped_in / "env.yaml"

    @property
    def site_dir(self) -> Path:
        return self.root / "site"

    def to_container(self, path: str) -> str:
        """``path`` as the container names it, when it is a host path of the task's in dir."""
        for host, container in self.back:
            if path == host or path.startswith(host + "/"):
                return container + path[len(host) :]
        return path


def prepare(in_dir: Path, out_dir: Path, work: Path, merged_config: Path) -> View:
    """Write the mapped view of the task into ``work/fallback`` (``in_dir`` and ``out_dir`` absolute)."""
    root = work / "fallback"
    mapped = root / "in"
    mapped.mkdir(parents=True)
    roots = {contract.IN_DIR: str(mapped), contract.OUT_DIR: str(out_dir)}
    back = {
        str(mapped): contract.IN_DIR,
        os.path.realpath(mapped): contract.IN_DIR,
        str(in_dir): contract.IN_DIR,
        os.path.realpath(in_dir): contract.IN_DIR,
    }
    with os.scandir(in_dir) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            target = mapped / entry.name
            real = os.path.realpath(entry.path)
            if real != os.path.join(os.path.realpath(in_dir), entry.name):
                back.setdefault(real, f"{contract.IN_DIR}/{entry.name}")  # in/assets as a link (YMIR's cache)
            if entry.name.endswith(_MAPPED_SUFFIXES) and entry.is_file():
                text = Path(entry.path).read_bytes().decode("utf-8", "surrogateescape")
                mapped_text = map_tsv(text, roots) if entry.name.endswith(".tsv") else map_yaml(text, roots)
                target.write_bytes(mapped_text.encode("utf-8", "surrogateescape"))
                target.chmod(0o444)
            else:
                target.symlink_to(entry.path)
    mapped.chmod(0o555)  # /in is read-only; root ignores modes, so the snapshot is what holds
    config = root / merged_config.name
    config.write_text(map_yaml(merged_config.read_text(), roots))  # /out is writable: its mode stays
    (root / "site").mkdir()
    shutil.copyfile(Path(__file__).with_name("_sitecustomize.py"), root / "site" / "sitecustomize.py")
    ordered = tuple(sorted(back.items(), key=lambda kv: len(kv[0]), reverse=True))
    return View(in_dir, out_dir, root, config, ordered)


def job_env(view: View, env: Mapping[str, str]) -> dict[str, str]:
    """The job's environment ``env`` pointed at the view: the SDK's variables, ymir-exc 2.x's
    (``DEFAULT_ENV_FILE_PATH``/``DEFAULT_CONFIG_FILE_PATH``) and, first on ``PYTHONPATH``, the
    directory whose ``sitecustomize`` points ymir-exc 1.x at the mapped env.yaml."""
    out = dict(env)
    out[contract.ENV_FILE_VAR] = str(view.env_file)
    out[contract.CONFIG_FILE_VAR] = str(view.config_file)
    out["DEFAULT_ENV_FILE_PATH"] = str(view.env_file)
    out["DEFAULT_CONFIG_FILE_PATH"] = str(view.mapped_in / os.path.basename(contract.CONFIG_FILE))
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(view.site_dir), env.get("PYTHONPATH", "")) if p)
    return out


# -- mapping paths -------------------------------------------------------------------------------


def map_path(path: str, roots: Mapping[str, str]) -> str:
    """``/in/...`` or ``/out/...`` (whole components) under its host root; any other text as it is."""
    for root, host in roots.items():
        if path == root or path.startswith(root + "/"):
            return host + path[len(root) :]
    return path


def map_tsv(text: str, roots: Mapping[str, str]) -> str:
    """An index file with each container path among its TAB-separated fields mapped."""
    lines = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        lines.append("\t".join(map_path(f, roots) for f in body.split("\t")) + line[len(body) :])
    return "".join(lines)


def map_yaml(text: str, roots: Mapping[str, str]) -> str:
    """A YAML file with its container paths mapped: the text itself where replacing the paths in
    it gives the same data as mapping the loaded values (comments and spelling kept), else the
    mapped data dumped again (a host path that needs quoting in YAML)."""
    replaced = _YAML_ROOT.sub(lambda m: roots[m.group(1)], text)
    try:
        wanted = _map_values(yaml.safe_load(text), roots)
    except yaml.YAMLError:
        return replaced  # not YAML to the job either: the text, mapped
    try:
        if yaml.safe_load(replaced) == wanted:
            return replaced
    except yaml.YAMLError:
        pass
    return yaml.safe_dump(wanted, sort_keys=False, allow_unicode=True)


def _map_values(data: Any, roots: Mapping[str, str]) -> Any:
    if isinstance(data, str):
        return map_path(data, roots)
    if isinstance(data, list):
        return [_map_values(v, roots) for v in data]
    if isinstance(data, dict):
        return {_map_values(k, roots): _map_values(v, roots) for k, v in data.items()}
    return data


def unmap_outputs(view: View) -> list[str]:
    """Map the host paths the job wrote into ``result.tsv`` (column 1) and ``infer-result.json``
    (detection keys, COCO ``file_name``) back to ``/in/...``; container paths and basenames stay.
    Returns the container names of the files rewritten (atomically). Files the output gate will
    refuse anyway (not regular, not strict JSON, two keys for one image) are left as they are."""
    fixed = []
    for name, unmap in ((contract.MINING_RESULT_FILE, _unmap_tsv), (contract.INFER_RESULT_FILE, _unmap_infer)):
        path = view.out_dir / os.path.relpath(name, contract.OUT_DIR)
        text = _read_regular(path)
        new = None if text is None else unmap(text, view)
        if new is not None and new != text:
            util.atomic_write(path, new.encode("utf-8", "surrogateescape"))
            fixed.append(name)
    return fixed


def _read_regular(path: Path) -> str | None:
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None  # a FIFO would block the read; a link may lead anywhere
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def _unmap_tsv(text: str, view: View) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        first, tab, rest = line.partition("\t")
        body = first.rstrip("\r\n")
        lines.append(view.to_container(body) + first[len(body) :] + tab + rest)
    return "".join(lines)


def _unmap_infer(text: str, view: View) -> str | None:
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    changed = False
    detection = data.get("detection")
    if isinstance(detection, dict):
        keys = {view.to_container(k): k for k in detection}
        if len(keys) != len(detection):
            return None
        if any(new != old for new, old in keys.items()):
            data["detection"] = {new: detection[old] for new, old in keys.items()}
            changed = True
    images = data.get("images")
    for image in images if isinstance(images, list) else ():
        name = image.get("file_name") if isinstance(image, dict) else None
        if isinstance(name, str) and view.to_container(name) != name:
            image["file_name"] = view.to_container(name)
            changed = True
    return json.dumps(data) if changed else None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("duplicate key")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# -- writes into /in -----------------------------------------------------------------------------


def snapshot(view: View) -> dict[tuple[str, str], Entry]:
    """What the job may not change: the real in dir (its top-level links followed: YMIR links
    ``assets`` and ``models`` to a cache) and the top of the mapped dir, one scandir walk each."""
    skip = {str(view.out_dir), str(view.root)}
    found = _scan(view.in_dir, "real", skip, follow_top=True)
    found.update(_scan(view.mapped_in, "mapped", skip, follow_top=False, depth=1))
    return found


def _scan(top: Path, tag: str, skip: set[str], *, follow_top: bool, depth: int = -1) -> dict[tuple[str, str], Entry]:
    found: dict[tuple[str, str], Entry] = {}
    seen: set[tuple[int, int]] = set()
    try:
        st = os.stat(top)
        found[(tag, "")] = ("dir", st.st_mode, st.st_mtime_ns)
    except OSError as e:
        found[(tag, "")] = ("unreadable", e.errno)
        return found
    stack = [("", str(top), 0)]
    while stack:
        rel, path, level = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError as e:
            found[(tag, rel)] = ("unreadable", e.errno)
            continue
        for entry in entries:
            key = (tag, f"{rel}/{entry.name}" if rel else entry.name)
            if entry.path in skip:
                continue
            try:
                link = os.readlink(entry.path) if entry.is_symlink() else None
                st = entry.stat(follow_symlinks=follow_top and level == 0)
            except OSError as e:
                found[key] = ("broken", link, e.errno)
                continue
            if stat.S_ISLNK(st.st_mode):
                found[key] = ("link", link)
            elif stat.S_ISDIR(st.st_mode):
                found[key] = ("dir", link, st.st_mode, st.st_mtime_ns)  # a file made and removed moves mtime
                if (depth < 0 or level + 1 < depth) and (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    stack.append((key[1], entry.path, level + 1))
            else:
                found[key] = (stat.S_IFMT(st.st_mode), link, st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def changed_paths(before: Mapping[tuple[str, str], Entry], after: Mapping[tuple[str, str], Entry]) -> list[str]:
    """The container paths that differ between two snapshots, each with what happened to it."""
    changes: dict[str, str] = {}
    for key in before.keys() | after.keys():
        if before.get(key) == after.get(key):
            continue
        what = "new" if key not in before else "removed" if key not in after else "changed"
        path = f"{contract.IN_DIR}/{key[1]}" if key[1] else contract.IN_DIR
        changes.setdefault(path, what)
    # a directory "changed" because an entry in it did: the entry says more
    below = {p.rpartition("/")[0] or contract.IN_DIR for p in changes if p != contract.IN_DIR}
    return [f"{path} ({what})" for path, what in sorted(changes.items()) if not (what == "changed" and path in below)]


def refused_write(view: View, tail: Sequence[str]) -> JobError | None:
    """The error of a failed job whose last lines show a write refused in the mapped in dir (its
    read-only modes stop a uid other than root at once, as the sandbox's read-only /in would)."""
    mapped = str(view.mapped_in)
    for line in reversed(tail):
        if mapped in line and "Permission denied" in line:
            msg = (
                f"the job wrote into {contract.IN_DIR}, which is read-only in YMIR: "
                f"{line.strip().replace(mapped, contract.IN_DIR)}"
            )
            return JobError(msg, hint="write caches and temporary files under /out or /tmp ($TMPDIR), never /in")
    return None


def wrote_into_in(changes: Sequence[str]) -> JobError:
    """The error of a job that changed the in dir (``changes`` from :func:`changed_paths`)."""
    shown = ", ".join(changes[:_SHOWN]) + (f" and {len(changes) - _SHOWN} more" if len(changes) > _SHOWN else "")
    msg = (
        f"the job wrote into {contract.IN_DIR}, which is read-only in YMIR: {shown} "
        f"(found after the job: without a sandbox the write itself succeeded)"
    )
    return JobError(
        msg,
        value=list(changes[:_SHOWN]),
        hint="write caches and temporary files under /out or /tmp ($TMPDIR), never /in",
    )


__all__: Sequence[str] = (
    "View",
    "changed_paths",
    "job_env",
    "map_path",
    "map_tsv",
    "map_yaml",
    "prepare",
    "refused_write",
    "snapshot",
    "unmap_outputs",
    "wrote_into_in",
)
