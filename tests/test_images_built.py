"""The images built and run (issue 20): the torch, mxnet and prefetch Dockerfiles built with buildah
on stand-in bases made from Debian packages (tests/helpers/images.py), and each image's CMD run as YMIR
runs it (ymir-contract.md 0): a fresh container per task, uid 1000 with no passwd entry, ``/in``
read-only, ``/out`` writable, the image's ENV. What a test adds to that ENV is named where it does:

- ``LIVE_CODE_ALLOW_LOCAL_REPOS=1``: the repositories are folders mounted into the container
  (there is no git host here; GitHub is out of reach), which the operator must allow;
- ``SSL_CERT_FILE``: this site's CA bundle (its TLS-inspecting proxy), mounted into the container,
  for the tasks whose requirements come from the registry: the setting this issue documents for
  such sites (tests/test_site_ca.py), and what an operator here would give (on a machine without
  such a proxy nothing is added).

The prefetched image's task gets nothing at all, and no network.

Each image is built once per machine and build inputs (the key), and reused by every test here and
by later runs; tests/run.sh builds them before the tests (``python -m tests.helpers.images build``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml

from live_code import contract
from live_code.commands import sample
from live_code.contract import TaskKind
from live_code.task import legacy
from tests.helpers import dockerfiles
from tests.helpers import images as _images
from tests.helpers import site as _site
from tests.helpers import template_runs as runs
from tests.helpers.repos import git, write_tree
from tests.helpers.site import PROBE, probe_index, site_job_repo

REPO = Path(__file__).resolve().parent.parent
USER_REPOS = REPO / "tests" / "resources" / "user_repos"
TRAINING = frozenset({TaskKind.TRAINING})
MINING_INFER = runs.MINING_INFER
ALLOW_LOCAL = {"LIVE_CODE_ALLOW_LOCAL_REPOS": "1"}
#: where a test's repositories are mounted in the container (git_url)
REPOS_INSIDE = "/srv/repos"
#: where this site's CA bundle is mounted in the container (SSL_CERT_FILE)
SITE_CA_INSIDE = "/etc/live-code-site/ca-bundle.pem"
#: the files YMIR reads from /img-man (ymir-contract.md 1.1), by what they tell it
YMIR_FILES = (
    "manifest.yaml",
    "training-template.yaml",
    "mining-template.yaml",
    "infer-template.yaml",
    "code-access.yaml",
)
#: a fixed date for the test commits, so a repository's commit (a prefetch build input) is the same
#: in every session
COMMIT_DATE = "2026-01-01T00:00:00+00:00"

_REASON = _images.unavailable_reason()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.registry,
    pytest.mark.timeout(3600),  # a session that builds the images does it in its first test
    pytest.mark.skipif(_REASON is not None, reason=str(_REASON)),
]


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images() -> dict[str, _images.Image]:
    return {name: _images.ensure_image(name) for name in ("torch", "mxnet")}


def commit_repo(files: Path | Mapping[str, str], dest: Path, *, mounted: bool = True) -> tuple[Path, str]:
    """A folder (or files) committed and tagged v1 at ``dest``; when it is to be ``mounted`` into a
    container, owned by the run uid (git refuses a repository another user owns). (path, commit)."""
    if isinstance(files, Path):
        shutil.copytree(files, dest, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        write_tree(dest, files)
    dated = {"GIT_AUTHOR_DATE": COMMIT_DATE, "GIT_COMMITTER_DATE": COMMIT_DATE}
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", dest.name, cwd=dest, env=dated)
    git("tag", "v1", cwd=dest, env=dated)
    commit = git("rev-parse", "HEAD", cwd=dest)
    if mounted:
        give_to_run_uid(dest)
    return dest, commit


def give_to_run_uid(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        os.lchown(path, _images.RUN_UID, _images.RUN_UID)


def new_task(
    shared_root: Path,
    kinds: frozenset[TaskKind],
    *,
    fmt: str = "voc",
    protocol: str = contract.PROTOCOL_1_1_0,
    images: int = 24,
    **values: object,
) -> Path:
    task = Path(tempfile.mkdtemp(dir=shared_root))
    os.chmod(task, 0o755)
    sample.write_sample_dataset(task, kinds=kinds, fmt=fmt, protocol=protocol, images=images)
    runs.configure(task, **values)
    for path in [task / "out", *(task / "out").rglob("*")]:
        os.chmod(path, 0o777)  # what YMIR does to /out before the start
    return task


def site_ca() -> tuple[list[_images.Bind], dict[str, str]]:
    """This site's CA bundle as the operator would give it to the image (module docstring)."""
    bundle = _images.site_bundle()
    if bundle is None:
        return [], {}
    return [_images.Bind(str(bundle), SITE_CA_INSIDE)], {"SSL_CERT_FILE": SITE_CA_INSIDE}


def run_task(
    ref: str,
    task: Path,
    *,
    repo: Path | None = None,
    env: Mapping[str, str] = (),
    binds: Sequence[_images.Bind] = (),
    network: bool = True,
    inspect: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``docker run --user 1000:1000 -v task/in:/in:ro -v task/out:/out IMAGE`` (its CMD), the
    repository mounted at /srv/repos/<name> when given; ``inspect``: a path in the container whose
    listing after the run goes into the result's ``listing`` (the container is gone afterwards)."""
    cmd = _images.config(ref)["Cmd"]
    assert isinstance(cmd, list)
    mounts = [
        _images.Bind(str(task / "in"), contract.IN_DIR),
        _images.Bind(str(task / "out"), contract.OUT_DIR, False),
        *binds,
    ]
    if repo is not None:
        mounts.append(_images.Bind(str(repo), f"{REPOS_INSIDE}/{repo.name}"))
    with _images.Container(ref) as container:
        res = container.run(cmd, binds=mounts, env=env, network=network)
        res.listing = sorted(p.name for p in container.path(inspect).iterdir()) if inspect else []  # type: ignore[attr-defined]  # the listing, added to the run's result
    with (task / "out" / "ymir-executor-out.log").open("a") as log:  # what the platform does with them
        log.write(res.stdout + res.stderr)
    return res


def output(res: subprocess.CompletedProcess[str]) -> str:
    return (res.stdout + res.stderr)[-6000:]


# -- the builds --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["torch", "mxnet"])
def test_image_builds_from_its_dockerfile_on_the_stand_in_base(images: dict[str, _images.Image], name: str) -> None:
    """FROM is the stand-in tagged with the real base's name (its layers are the image's first);
    the image's config is the Dockerfile's: CMD the harness, no ENTRYPOINT, no USER, its ENV over
    the base's; in the image, the harness finds the framework in the base, and the SDK wheelhouse is
    there."""
    image = images[name]
    dockerfile = dockerfiles.DOCKERFILES[name]
    base = _images.STANDINS[name].image
    base_layers = _images.layers(base)
    assert _images.layers(image.ref)[: len(base_layers)] == base_layers
    cfg = _images.config(image.ref)
    assert cfg["Cmd"] == dockerfiles.dockerfile_cmd(name)
    assert not cfg.get("Entrypoint") and not cfg.get("User")
    env = _images.image_env(image.ref)
    for key, value in dockerfiles.env_of(dockerfile).items():
        assert env[key] == value, key
    assert env["PATH"] == _images.image_env(base)["PATH"], "the base's PATH, inherited"
    probe = (
        "from live_code.envs import base; import os, sys; "
        "print(base.base_fingerprint(os.environ['LIVE_CODE_BASE_PYTHON']).protected); "
        "print(len(os.listdir(os.environ['LIVE_CODE_SDK_WHEELHOUSE'])))"
    )
    with _images.Container(image.ref) as container:
        res = container.run([f"{env['LIVE_CODE_HOME']}/bin/python", "-c", probe])
    assert res.returncode == 0, res.stderr
    protected, wheels = res.stdout.splitlines()
    assert protected == str({"torch": "2.13.0+cpu"} if name == "torch" else {"mxnet": "1.9.1"})
    assert wheels == "18"
    log = _images.build_log(image)  # kept when this machine's cache built it
    if log:
        assert f"FROM {dockerfiles.base_image(dockerfile)}" in log
    print(
        f"{name}: {image.ref}, {'reused' if image.reused else 'built'}"
        f"{f', built in {image.seconds:.0f} s' if image.seconds else ''}, {_images.size(image.ref)}"
    )


@pytest.mark.parametrize("name", ["torch", "mxnet"])
def test_stand_in_base_has_no_gl_and_no_compiler_as_the_real_runtime_bases(
    images: dict[str, _images.Image], name: str
) -> None:
    """What the cv2 and C-extension test below needs comes from the Dockerfile, not the stand-in."""
    probe = (
        "for f in /usr/lib/x86_64-linux-gnu/libGL.so.1 /usr/lib/x86_64-linux-gnu/libgthread-2.0.so.0; do "
        "test -e $f && echo has $f; done; for c in gcc g++ cc make; do command -v $c && echo has $c; done; true"
    )
    with _images.Container(_images.STANDINS[name].image) as base:
        res = base.run(["/bin/sh", "-c", probe])
    assert res.returncode == 0 and "has" not in res.stdout, res.stdout + res.stderr
    with _images.Container(images[name].ref) as built:
        res = built.run(["/bin/sh", "-c", probe])
    assert res.stdout.count("has ") == 6, res.stdout + res.stderr


def _read_img_man(ref: str, folder: Path) -> dict[str, object]:
    """What YMIR does when the image is added: ``docker run --rm IMAGE cat /img-man/<file>``, each."""
    folder.mkdir()
    read = {}
    with _images.Container(ref) as container:
        listing = container.run(["ls", "/img-man"])
        assert listing.returncode == 0, listing.stderr
        assert sorted(listing.stdout.split()) == sorted(YMIR_FILES)
        for name in YMIR_FILES:
            res = container.run(["cat", f"/img-man/{name}"])
            assert res.returncode == 0, res.stderr
            (folder / name).write_text(res.stdout)
            read[name] = yaml.safe_load(res.stdout)
    return read


@pytest.mark.parametrize("name", ["torch", "mxnet", "prefetch"])
def test_img_man_read_with_cat_as_ymir_reads_it(
    images: dict[str, _images.Image], prefetched: _images.Image, shared_root: Path, name: str
) -> None:
    ref = prefetched.ref if name == "prefetch" else images[name].ref
    folder = Path(tempfile.mkdtemp(dir=shared_root)) / "img-man"
    read = _read_img_man(ref, folder)
    manifest = read["manifest.yaml"]
    assert isinstance(manifest, dict)
    # YMIR >= 2.1: a live-code detection image; 2.0: code-access.yaml's presence says live-code
    assert manifest["object_type"] == int(contract.ObjectType.DETECTION)
    assert manifest["enable_livecode"] is True and manifest["is_official"] is False
    assert set(read["code-access.yaml"]) == {"git_url", "git_branch", "code_config"}
    # which tasks the image offers = which templates exist; each a flat mapping of hyper-parameters
    for kind in ("training", "mining", "infer"):
        template = read[f"{kind}-template.yaml"]
        assert isinstance(template, dict) and template, kind
        assert not any(isinstance(v, dict) for v in template.values()), kind
        assert {"git_url", "git_commit", "gpu_id", "task_id"} <= set(template), kind
    assert dockerfiles.img_man_problems(folder) == []  # the contract's checks, on the files as read


# -- acceptance 2: the templates, trained and then mined + inferred with their model -----------------


@pytest.mark.parametrize(("name", "template"), [("torch", "minimal"), ("mxnet", "mxnet")])
def test_template_trains_then_mines_and_infers_with_its_model(
    images: dict[str, _images.Image], shared_root: Path, name: str, template: str
) -> None:
    ref = images[name].ref
    repo, commit = commit_repo(REPO / "remote_templates" / template, shared_root / template)
    ca_binds, ca_env = site_ca()
    source = {"git_url": f"{REPOS_INSIDE}/{template}", "git_commit": commit}
    trained = new_task(shared_root, TRAINING, **source)
    res = run_task(ref, trained, repo=repo, env={**ALLOW_LOCAL, **ca_env}, binds=ca_binds)
    assert res.returncode == 0, output(res)
    assert runs.validate(trained) == []
    prov = runs.provenance(trained)
    assert prov["source"]["commit"] == commit  # type: ignore[index]  # provenance read from YAML is dict[str, object]
    assert prov["sandbox"]["mode"] == "container"  # type: ignore[index]  # /in and /out at their places
    environment = prov["environment"]
    assert environment["base_python"] == _images.image_env(ref)["LIVE_CODE_BASE_PYTHON"]
    assert environment["protected"] == ({"torch": "2.13.0+cpu"} if name == "torch" else {"mxnet": "1.9.1"})
    assert environment["built"] is True
    model = trained / "out" / "models" / "result.yaml"
    assert model.stat().st_uid == _images.RUN_UID, "written by the run uid, as YMIR's --user"
    best, files = runs.best_stage(trained)
    assert files and all((trained / "out" / "models" / best / f).is_file() for f in files)

    mined = Path(tempfile.mkdtemp(dir=shared_root))
    os.chmod(mined, 0o755)
    runs.mining_task(mined, trained, **source)
    for path in [mined / "out", *(mined / "out").rglob("*")]:
        os.chmod(path, 0o777)
    res = run_task(ref, mined, repo=repo, env={**ALLOW_LOCAL, **ca_env}, binds=ca_binds)
    assert res.returncode == 0, output(res)
    assert runs.validate(mined) == []
    assert len((mined / "out" / "result.tsv").read_text().splitlines()) == 24
    detection = json.loads((mined / "out" / "infer-result.json").read_text())["detection"]
    assert len(detection) == 24 and any(entry["boxes"] for entry in detection.values())


# -- acceptance 3: what CV repositories need from the image -------------------------------------------

CV_JOB = {
    "live-code.yaml": "framework: {framework}\nentry: python start.py\nrequirements: requirements.txt\n",
    # the non-headless build, which yolov5-era repositories pin; the probe has no wheel anywhere
    "requirements.txt": f"opencv-python==4.10.0.84\n{_site.CEXT_NAME}=={_site.CEXT_VERSION}\n",
    "start.py": """\
import os
from importlib.metadata import version

import cv2
import lc_cext_probe
from live_code import sdk

env = sdk.read_env()
with open(env.input.training_index_file) as f:
    first = f.readline().split("\\t")[0].strip()
image = cv2.imread(first)
assert image is not None and image.ndim == 3, first
assert lc_cext_probe.add(2, 3) == 5
os.makedirs(env.output.models_dir, exist_ok=True)
with open(os.path.join(env.output.models_dir, "model.txt"), "w") as f:
    f.write(f"{image.shape}\\n")
sdk.write_model_stage("epoch_1", ["model.txt"], 0.5)
print(f"cv job: opencv-python {version('opencv-python')} cv2 {cv2.__version__} image {image.shape}; "
      f"C: 2 + 3 = {lc_cext_probe.add(2, 3)}; C++: {lc_cext_probe.compiler()}")
""",
}


@pytest.mark.parametrize("name", ["torch", "mxnet"])
def test_cv_repo_imports_opencv_and_builds_a_c_and_cpp_extension_from_source(
    images: dict[str, _images.Image], shared_root: Path, name: str
) -> None:
    """opencv-python (not -headless) needs libGL and glib at import; the sdist builds only with a
    C and a C++ compiler and the job Python's headers: the job env gets both, and the job runs."""
    ref = images[name].ref
    framework = "torch" if name == "torch" else "mxnet"
    files = {k: v.format(framework=framework) if k == "live-code.yaml" else v for k, v in CV_JOB.items()}
    repo, commit = commit_repo(files, shared_root / f"cv-{name}")
    wheels = shared_root / f"sdists-{name}"
    _site.make_cext_sdist(wheels)
    ca_binds, ca_env = site_ca()
    task = new_task(
        shared_root,
        TRAINING,
        images=4,
        git_url=f"{REPOS_INSIDE}/{repo.name}",
        git_commit=commit,
        pip_find_links=["/srv/sdists"],
    )
    res = run_task(
        ref, task, repo=repo, env={**ALLOW_LOCAL, **ca_env}, binds=[*ca_binds, _images.Bind(str(wheels), "/srv/sdists")]
    )
    out = output(res)
    assert res.returncode == 0, out
    assert "cv job: opencv-python 4.10.0.84 cv2 4.10.0 image (" in out
    assert "C: 2 + 3 = 5; C++: g++ " in out
    assert runs.validate(task) == []
    added = runs.provenance(task)["environment"]["added"]  # type: ignore[index]  # provenance read from YAML is dict[str, object]
    assert "opencv-python==4.10.0.84" in added and f"{_site.CEXT_NAME}=={_site.CEXT_VERSION}" in added
    assert not any(a.startswith("opencv-python-headless") for a in added)


# -- acceptance 4: the prefetched image, offline -------------------------------------------------------


@pytest.fixture(scope="module")
def prefetched(images: dict[str, _images.Image], shared_root: Path) -> _images.Image:
    """prefetch/Dockerfile over the torch image: the 1.x legacy fixture repo served over https
    (a git server with a CA of the test's; the build's git trusts it through the site bundle
    mounted into the build) at a fixed commit, its mirror and env baked in for uid 1000. Reused
    while the torch image and the repository's commit are the same (the image keeps the URL)."""
    repo, commit = commit_repo(USER_REPOS / "ymir_exc1", shared_root / "prefetch-src" / "ymir_exc1", mounted=False)
    label = f"ymir_exc1 {commit}"
    if _images.prefetch_built(images["torch"], commit, label):
        return _images.ensure_prefetch(images["torch"], "", commit, extra_ca=b"", label=label)
    ca = _site.SiteCA(shared_root / "prefetch-ca")
    served = shared_root / "prefetch-served"
    served.mkdir()
    git("clone", "-q", "--bare", str(repo), str(served / "ymir_exc1.git"), cwd=shared_root)
    with _site.HttpsGitServer(served, ca) as server:
        return _images.ensure_prefetch(
            images["torch"], server.url("ymir_exc1.git"), commit, extra_ca=ca.cert.read_bytes(), label=label
        )


def test_prefetched_image_runs_its_task_with_no_network_no_fetch_and_no_install(
    prefetched: _images.Image, shared_root: Path
) -> None:
    url = _images.prefetched_url(prefetched)
    commit = git("rev-parse", "HEAD", cwd=shared_root / "prefetch-src" / "ymir_exc1")
    task = new_task(
        shared_root, TRAINING, fmt="ark", images=8, git_url=url, git_commit=commit, code_config="configs/default.yaml"
    )
    cache = _images.image_env(prefetched.ref)["LIVE_CODE_CACHE"]
    res = run_task(prefetched.ref, task, network=False, inspect=f"{cache}/envs")
    assert res.returncode == 0, output(res)
    assert runs.validate(task) == []
    prov = runs.provenance(task)
    source, environment = prov["source"], prov["environment"]
    assert source["url"] == url and source["commit"] == commit and source["fetched"] is False
    assert environment["built"] is False, "the env baked into the image, nothing installed"
    envs = {entry.split(".")[0] for entry in res.listing}  # type: ignore[attr-defined]  # KEY, KEY.done, KEY.used
    assert envs == {environment["key"]}, "the env baked in, and no other made"
    assert "reusing env" in output(res)
    assert prov["legacy"]["ymir_exc"]["sdk"] == f"{legacy.SDK_NAME}=={legacy.SDK1_VERSION}"  # type: ignore[index]  # provenance read from YAML is dict[str, object]


# -- acceptance 5: legacy repositories of both SDK lineages, offline ------------------------------------


@pytest.mark.parametrize(("fixture", "fmt"), [("ymir_exc1", "ark"), ("ymir_exc2", "voc")])
def test_legacy_repo_trains_then_mines_and_infers_in_the_torch_image_offline(
    images: dict[str, _images.Image], shared_root: Path, fixture: str, fmt: str
) -> None:
    """A repository of the original image that lists nothing: its SDK, loguru and cv2 come from the
    image's SDK wheelhouse, with the network unshared during each run."""
    ref = images["torch"].ref
    repo, commit = commit_repo(USER_REPOS / fixture, shared_root / fixture)
    sdk = f"{legacy.SDK_NAME}=={legacy.SDK1_VERSION if fixture == 'ymir_exc1' else legacy.SDK2_VERSION}"
    # the original image's keys: git_branch (a tag here) and the code_config its web form asks for
    source = {
        "git_url": f"{REPOS_INSIDE}/{fixture}",
        "git_branch": "v1",
        "code_config": "configs/default.yaml",
        "export_format": f"{fmt}:raw",
    }
    trained = new_task(shared_root, TRAINING, fmt=fmt, images=8, **source)
    res = run_task(ref, trained, repo=repo, env=ALLOW_LOCAL, network=False)
    assert res.returncode == 0, output(res)
    assert runs.validate(trained) == []
    prov = runs.provenance(trained)
    assert prov["source"]["commit"] == commit  # type: ignore[index]  # provenance read from YAML is dict[str, object]
    environment, implied = prov["environment"], prov["legacy"]
    wheelhouse = _images.image_env(ref)[legacy.WHEELHOUSE_VAR]
    assert environment["index"] == {
        "index_url": None,
        "extra_index_urls": [],
        "offline": True,
        "find_links": [wheelhouse],
    }
    assert implied["ymir_exc"]["sdk"] == sdk and implied["wheelhouse"] == wheelhouse
    assert {sdk, *legacy.EXTRAS.values()} <= set(environment["added"])

    stage, files = runs.model_files(trained)
    mined = new_task(
        shared_root,
        MINING_INFER,
        fmt=fmt,
        images=8,
        **source,
        model_params_path=[f"/in/models/{stage + '/' if stage else ''}{f}" for f in files],
    )
    dest = mined / "in" / "models" / (stage or "")
    dest.mkdir(parents=True, exist_ok=True)
    models = trained / "out" / "models"
    for f in files:  # YMIR's packer looks in the stage's folder first, then in models/ itself
        shutil.copy2(models / (stage or "") / f if (models / (stage or "") / f).is_file() else models / f, dest / f)
    res = run_task(ref, mined, repo=repo, env=ALLOW_LOCAL, network=False)
    assert res.returncode == 0, output(res)
    assert runs.validate(mined) == []
    assert len((mined / "out" / "result.tsv").read_text().splitlines()) == 8


# -- acceptance 6: an index signed by the site's own CA, in the image ---------------------------------------


def test_index_of_a_site_ca_fails_without_ssl_cert_file_naming_it_and_works_with_it(
    images: dict[str, _images.Image], shared_root: Path
) -> None:
    """In the torch image: a task whose requirement only the site's https index has. The image's
    own CA store does not know the site's CA: the run fails saying to set SSL_CERT_FILE; with it
    (the CA alone, mounted) the same task passes."""
    ref = images["torch"].ref
    ca = _site.SiteCA(shared_root / "site-ca")
    index_root = probe_index(shared_root / "site-index")
    repo_dir = site_job_repo(shared_root / "site-job")
    commit = git("rev-parse", "HEAD", cwd=repo_dir)
    give_to_run_uid(repo_dir)
    with _site.HttpsStaticServer(index_root, ca) as index:
        values = {"git_url": f"{REPOS_INSIDE}/site-job", "git_commit": commit, "pip_index_url": index.url("simple")}
        denied = new_task(shared_root, TRAINING, images=4, **values)
        res = run_task(ref, denied, repo=repo_dir, env=ALLOW_LOCAL)
        out = output(res)
        assert res.returncode == 4, out  # EnvironmentBuildError
        assert "invalid peer certificate" in out, out
        assert "set SSL_CERT_FILE to the site's CA bundle" in out and "(SSL_CERT_FILE is not set)" in out, out

        allowed = new_task(shared_root, TRAINING, images=4, **values)
        res = run_task(
            ref,
            allowed,
            repo=repo_dir,
            env={**ALLOW_LOCAL, "SSL_CERT_FILE": SITE_CA_INSIDE},
            binds=[_images.Bind(str(ca.cert), SITE_CA_INSIDE)],
        )
        assert res.returncode == 0, output(res)
    assert "job ran with the site's own index" in res.stdout
    assert runs.validate(allowed) == []
    assert f"{PROBE}==1.0" in runs.provenance(allowed)["environment"]["added"]  # type: ignore[index]  # provenance read from YAML is dict[str, object]
