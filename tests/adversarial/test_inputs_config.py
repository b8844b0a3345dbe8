"""Bad ``/in/config.yaml`` (security-research.md section 3, "config.yaml — syntax and size" and
"types and keys"; threats 29-30): each stops ``live-code run`` before any network or disk work
with a config error naming the problem, and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from live_code import errors
from tests.helpers.adversarial import CANARIES, Harness


def _base(harness: Harness) -> str:
    """The sample task's config pointing at a good repository, as YAML text."""
    harness.use(harness.repo({}))
    return yaml.safe_dump(harness.config(), sort_keys=False)


def _write(harness: Harness, data: bytes) -> None:
    (harness.in_dir / "config.yaml").write_bytes(data)


# name -> (config.yaml bytes made from the good config text, words of the message)
SYNTAX = {
    "empty file": (lambda good: b"", ["no git_url"]),
    "only comments": (lambda good: b"# nothing here\n# at all\n", ["no git_url"]),
    "a bare scalar": (lambda good: b"just some text\n", ["must be a YAML mapping", "a string of 14 characters"]),
    "a list at top level": (lambda good: b"- a\n- b\n", ["must be a YAML mapping", "a list"]),
    "several YAML documents": (
        lambda good: good.encode() + b"---\nother: doc\n",
        ["not valid YAML", "single document"],
    ),
    "not UTF-8": (lambda good: good.encode() + b"note: caf\xe9\n", ["not UTF-8"]),
    "UTF-16 with BOM": (lambda good: good.encode("utf-16"), ["UTF-16"]),
    "a NUL byte": (lambda good: good.encode() + b"note: a\x00b\n", ["character 0x0000"]),
    "tabs for indentation": (
        lambda good: good.encode() + b"nested:\n\tkey: 1\n",
        ["not valid YAML", "found character '\\t'"],
    ),
    "10^5-deep nesting": (lambda good: good.encode() + b"deep: " + b"[" * 100_000 + b"\n", ["nests deeper"]),
    "billion laughs": (
        lambda good: (
            good.encode()
            + b"".join(
                b"l%d: &l%d [%s]\n" % (i, i, b",".join([b"*l%d" % (i - 1)] * 9 if i else [b"'lol'"])) for i in range(10)
            )
        ),
        ["anchor or alias"],
    ),
    "anchor referenced in a cycle": (lambda good: good.encode() + b"a: &x [*x]\n", ["anchor or alias"]),
    "python tag": (
        lambda good: good.encode() + b"x: !!python/object/apply:os.system ['touch /tmp/lc-pwned-tag']\n",
        ["tag"],
    ),
    "duplicate key": (lambda good: good.encode() + b"git_url: https://example.com/other/repo\n", ["'git_url' twice"]),
    "keys read as booleans": (lambda good: good.encode() + b"on: yes\n", ["boolean"]),
}


@pytest.mark.parametrize("name", list(SYNTAX))
def test_config_syntax_and_size_traps_are_config_errors(harness: Harness, name: str) -> None:
    make, words = SYNTAX[name]
    _write(harness, make(_base(harness)))
    out = harness.run(timeout=60)
    harness.expect_failure(out, errors.ConfigError, *words)
    assert "environment" not in harness.provenance() and "source" not in harness.provenance()  # nothing fetched
    assert not Path("/tmp/lc-pwned-tag").exists()


@pytest.mark.parametrize("size", [100 << 20, 1 << 30], ids=["100MB", "1GB"])
def test_huge_config_is_refused_without_reading_it(harness: Harness, size: int) -> None:
    good = _base(harness).encode()
    path = harness.in_dir / "config.yaml"
    path.write_bytes(good)
    os.truncate(path, size)  # sparse: the size without the disk
    harness.expect_failure(harness.run(timeout=60), errors.ConfigError, "larger than 1024 KiB")


def test_config_with_windows_line_endings_runs(harness: Harness) -> None:
    """Documented success: CRLF is fine."""
    _write(harness, _base(harness).replace("\n", "\r\n").encode())
    harness.expect_success(harness.run())


def _special(kind: str, path: Path, harness: Harness) -> None:
    path.unlink()
    if kind == "directory":
        path.mkdir()
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "symlink to /proc/self/environ":
        path.symlink_to("/proc/self/environ")
    elif kind == "symlink to a host file":
        secret = harness.root / "host-secret"
        secret.write_text(f"root:x:0:0:{CANARIES[0]}:/root:/bin/bash\n")
        path.symlink_to(secret)


SPECIAL = {
    "missing": ["does not exist"],
    "directory": ["is not a regular file"],
    "FIFO": ["is not a regular file"],
    "symlink to /proc/self/environ": ["character 0x0000"],
    "symlink to a host file": ["must be a YAML mapping", "a string of"],
}


@pytest.mark.parametrize("kind", list(SPECIAL))
def test_config_that_is_not_a_plain_file_is_refused_without_showing_its_content(harness: Harness, kind: str) -> None:
    """The harness's own /proc/self/environ holds the canaries: refused without echoing them."""
    _base(harness)
    path = harness.in_dir / "config.yaml"
    if kind != "missing":
        _special(kind, path, harness)
    else:
        path.unlink()
    harness.expect_failure(harness.run(timeout=60), errors.ConfigError, *SPECIAL[kind])


# key: value lines replacing or added to the good config -> words
TYPES = {
    "no git_url": ({"git_url": None}, ["git_commit", "git_url"]),
    "no pin": ({"git_commit": None}, ["git_url", "git_commit"]),
    "typo comit": ({"git_commit": None, "git_comit": "0" * 40}, ["git_comit", "git_commit"]),
    "prefixed key in another case": ({"Live_Code_Timeout": 5}, ["Live_Code_Timeout"]),
    "null url": ({"git_url": "~"}, ["git_url"]),
    "empty url": ({"git_url": "''"}, ["git_url"]),
    "url as a list": ({"git_url": "[https://example.com/o/r]"}, ["git_url", "a list"]),
    "commit as a mapping": ({"git_commit": "{sha: abc}"}, ["git_commit", "a mapping"]),
    "commit as a boolean": ({"git_commit": "true"}, ["git_commit", "boolean"]),
    "commit as a number": ({"git_commit": "1234567"}, ["git_commit", "1234567"]),
    "octal commit": ({"git_commit": "0123456"}, ["git_commit", "42798"]),
    "hex commit": ({"git_commit": "0x1f"}, ["git_commit", "31"]),
    "tag 1.10": ({"git_commit": None, "git_tag": "1.10"}, ["git_tag", "1.1"]),
    "tag no": ({"git_commit": None, "git_tag": "no"}, ["git_tag", "boolean"]),
    "sexagesimal tag": ({"git_commit": None, "git_tag": "190:20:30"}, ["git_tag", "685230"]),
    "date tag": ({"git_commit": None, "git_tag": "2024-01-01"}, ["git_tag", "date"]),
    "negative timeout": ({"live_code_timeout": "-1"}, ["live_code_timeout"]),
    "zero timeout": ({"live_code_timeout": "0"}, ["live_code_timeout"]),
    "huge timeout": ({"live_code_timeout": "1e308"}, ["live_code_timeout"]),
    "NaN timeout": ({"live_code_timeout": ".nan"}, ["live_code_timeout"]),
    "string for a boolean option": ({"live_code_allow_branch": "maybe"}, ["live_code_allow_branch", "true or false"]),
    "code_config out of the repo": ({"code_config": "../../in/config.yaml"}, ["code_config"]),
    "code_config absolute": ({"code_config": "/etc/passwd"}, ["code_config"]),
    "code_config in home": ({"code_config": "~/x.yaml"}, ["code_config"]),
    "gpu_count negative": ({"gpu_count": "-1"}, ["gpu_count"]),
}


@pytest.mark.parametrize("name", list(TYPES))
def test_config_type_and_key_traps_are_config_errors(harness: Harness, name: str) -> None:
    changes, words = TYPES[name]
    lines = [ln for ln in _base(harness).splitlines() if ln.split(":")[0] not in changes]
    lines += [f"{k}: {v}" for k, v in changes.items() if v is not None]
    _write(harness, ("\n".join(lines) + "\n").encode())
    harness.expect_failure(harness.run(timeout=60), errors.ConfigError, *words)
