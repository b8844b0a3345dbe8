"""Exact audits (issue 22): a lock in every provenance, installing a model's or a repo's lock,
``live-code replay`` from the recorded lock, resolution as of a date, and ``live-code lock``.

Everything comes from a PEP 691 JSON index with upload times, made in the test and served on
127.0.0.1 (tests/_jsonindex.py): ``lc-core`` 1.0 (2021) has ``bool8``, 2.0 (2024, or published
during a test) dropped it, the way numpy 2 dropped ``numpy.bool8`` under an unpinned ``nptyping``;
``lc-user`` (2021) reads ``lc_core.bool8`` when imported. Jobs run through ``live-code local``
(bubblewrap where available), as the other end-to-end tests run them.
"""

from __future__ import annotations

import io
import shutil
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from live_code.commands import local, replay
from live_code.contract import TaskKind
from live_code.envs import builder as envs
from live_code.envs import lock as envlock
from live_code.run import outputs
from live_code.source.store import Store
from live_code.task import config as config_mod
from tests.helpers.jobs import LOCAL_JOB as GOOD_JOB
from tests.helpers.jobs import cli_env
from tests.helpers.jobs import run_researcher_cli as run_cli
from tests.helpers.jsonindex import JsonIndex
from tests.helpers.repos import git, write_tree

TRAINING = frozenset({TaskKind.TRAINING})
MINING = frozenset({TaskKind.MINING})
CORE_1, CORE_2 = "bool8 = bool\nVERSION = 1\n", "VERSION = 2\n"
#: the job: imports what the repo requires, then writes valid outputs
JOB = "import lc_core\nprint('lc_core', lc_core.VERSION)\n" + GOOD_JOB
USER_JOB = "import lc_user\n" + JOB
COMMIT_DATE = "2022-01-01T00:00:00+00:00"
MANIFEST = "framework: none\nentry: python start.py\n"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[JsonIndex]:
    with JsonIndex(tmp_path / "index") as ix:
        ix.publish("lc-core", "1.0", CORE_1, "2021-06-01")
        ix.publish("lc-user", "1.0", "import lc_core\nBOOL = lc_core.bool8\n", "2021-06-01")
        yield ix


def _repo(root: Path, files: dict[str, str], tag: str = "v1", date: str = COMMIT_DATE) -> Path:
    """A git repo whose commits are dated ``date`` (committer and author), tagged ``tag``."""
    if not (root / ".git").exists():
        root.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=root)
    write_tree(root, {"live-code.yaml": MANIFEST, **files})
    dated = {"GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date}
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", f"at {tag}", cwd=root, env=dated)
    git("tag", tag, cwd=root)
    return root


def _run(
    repo: Path, tag: str, kinds: frozenset[TaskKind], work: Path, ix: JsonIndex, **keys: object
) -> local.LocalResult:
    model = keys.pop("model", None)
    req = local.LocalRequest(
        repo=f"{repo}@{tag}",
        kinds=kinds,
        dataset="sample",
        work=work,
        sample_images=4,
        model=model if isinstance(model, Path) else None,
        overrides={"pip_index_url": ix.url(), **keys},
    )
    return local.run(req)


def _first_run(
    tmp_path: Path, index: JsonIndex, kinds: frozenset[TaskKind], name: str
) -> tuple[Path, local.LocalResult]:
    """A repo whose job needs ``lc-core>=1.0`` (either version works), run once: it gets 1.0."""
    repo = _repo(tmp_path / "repo", {"start.py": JOB, "requirements.txt": "lc-core>=1.0\n"})
    result = _run(repo, "v1", kinds, tmp_path / name, index)
    assert result.ok, result.error
    return repo, result


def _lock(path: Path) -> envlock.Lock:
    return envlock.read_lock(path, str(path))


def _env(result: local.LocalResult) -> dict:
    return (yaml.safe_load(result.provenance.read_text()) or {})["environment"]


def _versions(lock: envlock.Lock) -> dict[str, str]:
    return {p.name: p.version for p in lock.packages}


# -- acceptance 1: resolution as of the commit's date ---------------------------------------------


def test_unpinned_requirements_break_today_and_resolve_as_of_the_commit(tmp_path: Path, index: JsonIndex) -> None:
    index.publish("lc-core", "2.0", CORE_2, "2024-06-01")
    repo = _repo(tmp_path / "repo", {"start.py": USER_JOB, "requirements.txt": "lc-user\nlc-core>=1.0\n"})

    today = _run(repo, "v1", MINING, tmp_path / "today", index)
    assert not today.ok
    assert "bool8" in today.error.message and "site-packages" in today.error.message
    assert "live_code_resolve_as_of" in today.error.hint and "live-code lock" in today.error.hint
    assert _versions(_lock(today.out_dir / "pylock.toml"))["lc-core"] == "2.0"

    then = _run(repo, "v1", MINING, tmp_path / "then", index, live_code_resolve_as_of="commit")
    assert then.ok, then.error
    env = _env(then)
    assert env["resolved_as_of"]["asked"] == "2022-01-01T00:00:00Z"
    assert env["resolved_as_of"]["used"] == "2022-01-01T00:00:00Z"
    lock = _lock(then.out_dir / "pylock.toml")
    assert _versions(lock) == {"lc-core": "1.0", "lc-user": "1.0"}
    assert lock.tool["resolved-as-of"] == "2022-01-01T00:00:00Z"
    assert env["lock"]["sha256"] == lock.digest and env["lock"]["installed"] is False
    assert "lc_core 1" in then.job_log.read_text()


def test_a_date_without_wheels_steps_forward_to_the_first_with_them(tmp_path: Path, index: JsonIndex) -> None:
    """As of 2022-01-01 lc-old has only an sdist (0.5) and lc-tag only a wheel for Python 2: the
    resolution steps forward to the day lc-old 0.6's wheel was published, and says so."""
    _sdist(index, "lc-old", "0.5", "2021-01-10")
    index.publish("lc-old", "0.6", "X = 6\n", "2022-06-10")
    index.publish("lc-tag", "0.5", "X = 5\n", "2021-01-10", tag="py2-none-any")
    index.publish("lc-tag", "0.6", "X = 6\n", "2022-03-01")
    repo = _repo(tmp_path / "repo", {"requirements.txt": "lc-old\nlc-tag\n"})
    ix = envs.IndexSettings(index_url=index.url())
    spec = envs.prepare_env(repo, index=ix, as_of=envlock.as_of_date("2022-01-01", None))
    assert spec.as_of == "2022-01-02T00:00:00Z"  # a date means the whole day
    env = envs.ensure_env(Store(), spec)
    used = env.provenance["resolved_as_of"]["used"]
    assert "2022-06-10T12:00:00Z" <= used < "2022-06-11T12:00:00Z", env.provenance["resolved_as_of"]
    assert "stepped forward" in env.provenance["resolved_as_of"]["note"]
    assert set(env.provenance["added"]) == {"lc-old==0.6", "lc-tag==0.6"}
    assert _versions(_lock(env.path / "pylock.toml")) == {"lc-old": "0.6", "lc-tag": "0.6"}
    other = envs.prepare_env(repo, index=ix, as_of=envlock.as_of_date("2022-07-01", None))
    assert other.key != spec.key, "the date is part of the env key"


def _sdist(index: JsonIndex, name: str, version: str, uploaded: str) -> None:
    """An sdist of ``name`` (never built here: the resolution steps past it)."""
    top = f"{name.replace('-', '_')}-{version}"
    path = index.folder / "files" / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        data = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        info = tarfile.TarInfo(f"{top}/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    index.add_file(path, uploaded)


# -- acceptance 2 and 3: the model's lock, and replay ---------------------------------------------


def test_mining_with_the_models_lock_gets_the_training_env_and_replay_installs_the_recorded_lock(
    tmp_path: Path, index: JsonIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, train = _first_run(tmp_path, index, TRAINING, "train")
    trained = _lock(train.out_dir / "models" / "pylock.toml")
    assert _versions(trained) == {"lc-core": "1.0"}
    assert trained.digest == _lock(train.out_dir / "pylock.toml").digest == _env(train)["lock"]["sha256"]
    assert trained.tool["base-fingerprint"] == _env(train)["base_fingerprint"]

    # the lock is a file of every model stage: YMIR packs only those, and delivers the chosen stage
    result = yaml.safe_load((train.out_dir / "models" / "result.yaml").read_text())
    assert all("pylock.toml" in stage["files"] for stage in result["model_stages"].values()), result
    assert _env(train)["lock_in_model_stages"] is True
    protocol = config_mod.load_task(train.work / "in").protocol
    assert outputs.validate_training_result(train.out_dir / "models" / "result.yaml", protocol) == []

    index.publish("lc-core", "2.0", CORE_2, "2026-01-01")
    models = train.out_dir / "models"
    mined = _run(repo, "v1", MINING, tmp_path / "mined", index, live_code_lock="model", model=models)
    assert mined.ok, mined.error
    again = _lock(mined.out_dir / "pylock.toml")
    assert [(p.name, p.version, p.hashes) for p in again.packages] == [
        (p.name, p.version, p.hashes) for p in trained.packages
    ]
    assert _env(mined)["lock"]["installed"] is True and "model package" in _env(mined)["lock"]["origin"]
    assert "lc_core 1" in mined.job_log.read_text()
    reused = _run(repo, "v1", MINING, tmp_path / "reused", index, live_code_lock="model", model=models)
    assert reused.ok and _env(reused)["built"] is False, "an env made from a lock is reused like any other"
    # a run without the key on a machine whose cache does not hold the training env resolves today
    monkeypatch.setenv("LIVE_CODE_CACHE", str(tmp_path / "another-cache"))
    fresh = _run(repo, "v1", MINING, tmp_path / "fresh", index, model=models)
    assert fresh.ok, fresh.error
    assert _versions(_lock(fresh.out_dir / "pylock.toml")) == {"lc-core": "2.0"}

    result = replay.replay(train.work)
    assert result.error is None, result.error
    assert result.environment.startswith("identical"), result.render()
    assert "environment: identical" in result.render()
    assert _versions(_lock(result.out_dir / "pylock.toml")) == {"lc-core": "1.0"}
    afresh = replay.replay(train.work, resolve=True)
    assert afresh.environment.startswith("DIFFERENT"), afresh.render()


# -- acceptance 4: a hash that no longer matches ----------------------------------------------------


def test_a_lock_whose_hash_no_longer_matches_fails_naming_the_package_and_leaves_no_env(
    tmp_path: Path, index: JsonIndex
) -> None:
    repo, train = _first_run(tmp_path, index, TRAINING, "train")
    index.publish("lc-core", "1.0", "bool8 = bool\nVERSION = 'other bytes'\n", "2021-06-01")  # same name, new bytes
    store = Store()
    envs_dir = store.root / "envs"
    before = _entries(envs_dir)
    shutil.rmtree(store.root / "installer-cache")  # the audit runs elsewhere: no cache holds the original file
    mined = _run(repo, "v1", MINING, tmp_path / "mined", index, live_code_lock="model", model=train.out_dir / "models")
    assert not mined.ok
    assert "lc-core 1.0" in mined.error.message and "a hash differs" in mined.error.message
    assert "127.0.0.1" in mined.error.message, "the message names where the file comes from"
    assert _entries(envs_dir) == before, "nothing half-built remains in the cache"
    assert not list(store.root.rglob("*.build")), "no scratch dir is left"


def _entries(envs_dir: Path) -> list[str]:
    """The envs in the cache (``<key>.used`` is only a stamp of when one was used)."""
    return sorted(p.name for p in envs_dir.iterdir() if not p.name.endswith(".used"))


# -- acceptance 5: live-code lock ------------------------------------------------------------------------


def test_live_code_lock_output_installs_the_runs_env_and_check_finds_a_stale_lock(
    tmp_path: Path, index: JsonIndex
) -> None:
    repo, run = _first_run(tmp_path, index, MINING, "run")
    out = tmp_path / "pylock.toml"
    env = cli_env(allow_local_repos=False)
    proc = run_cli("lock", f"{repo}@v1", "--index-url", index.url(), "-o", str(out), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    made = _lock(out)
    assert made.digest == _lock(run.out_dir / "pylock.toml").digest
    pinned = run_cli("lock", f"{repo}@v1", "--index-url", index.url(), "-o", str(tmp_path / "req.txt"), cwd=tmp_path)
    assert pinned.returncode == 0, pinned.stderr
    assert "lc-core==1.0 \\\n    --hash=sha256:" in (tmp_path / "req.txt").read_text()

    _repo(repo, {"pylock.toml": out.read_text()}, tag="v2")
    index.publish("lc-core", "2.0", CORE_2, "2026-01-01")
    locked = _run(repo, "v2", MINING, tmp_path / "locked", index, live_code_lock="pylock.toml")
    assert locked.ok, locked.error
    assert _lock(locked.out_dir / "pylock.toml").digest == made.digest
    assert _env(locked)["lock"]["origin"] == "the repository's pylock.toml"

    check = run_cli("lock", f"{repo}@v2", "--check", "--index-url", index.url(), cwd=tmp_path, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "up to date" in check.stdout
    _repo(repo, {"requirements.txt": "lc-core>=1.0\nlc-user\n"}, tag="v3")
    stale = run_cli("lock", f"{repo}@v3", "--check", "--index-url", index.url(), cwd=tmp_path, env=env)
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "stale" in stale.stdout and "made from other requirements" in stale.stdout


def test_task_keys_are_checked(tmp_path: Path) -> None:
    from live_code.errors import ConfigError
    from live_code.task import config

    opts = config.parse_config({"live_code_resolve_as_of": "2022-07-08"}).options
    assert opts.resolve_as_of == "2022-07-08"
    assert config.parse_config({"live_code_lock": "model"}).options.lock == "model"
    with pytest.raises(ConfigError, match="live_code_resolve_as_of"):
        config.parse_config({"live_code_resolve_as_of": "last tuesday"})
    with pytest.raises(ConfigError, match="both set"):
        config.parse_config({"live_code_lock": "model", "live_code_resolve_as_of": "commit"})
    with pytest.raises(ConfigError, match="inside the repository"):
        config.parse_config({"live_code_lock": "../x.toml"})


def test_a_lock_may_fetch_only_over_https_or_from_the_tasks_index(tmp_path: Path) -> None:
    from live_code.errors import ConfigError

    text = (
        'lock-version = "1.0"\n\n[[packages]]\nname = "x"\nversion = "1"\n'
        'wheels = [{{ url = "{url}", hashes = {{ sha256 = "00" }} }}]\n'
    )
    base = envs.base_fingerprint(sys.executable)
    index = envs.IndexSettings(index_url="http://127.0.0.1:9/simple", find_links=(str(tmp_path / "wheels"),))
    for url in ("https://files.example/x-1-py3-none-any.whl", "http://127.0.0.1:9/files/x-1-py3-none-any.whl"):
        envlock.check_lock(envlock.parse_lock(text.format(url=url), "a lock"), base, index)
    (tmp_path / "wheels").mkdir()
    envlock.check_lock(
        envlock.parse_lock(text.format(url=(tmp_path / "wheels" / "x.whl").as_uri()), "a lock"), base, index
    )
    for url in ("http://elsewhere.example/x.whl", "file:///etc/x.whl", "http://127.0.0.1:10/x.whl"):
        with pytest.raises(ConfigError, match="neither https nor the task's index"):
            envlock.check_lock(envlock.parse_lock(text.format(url=url), "a lock"), base, index)
