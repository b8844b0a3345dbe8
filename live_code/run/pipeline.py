"""One run, end to end: task -> source -> environment -> merged config -> run -> outputs -> report.

The only module that knows every step (design.md, "The flow of one run"). :func:`run` calls the
steps in order: read_task, fetch, check_manifest (fetch_submodules), configure,
prepare_environment, environment, run_job (check_job per command), check_outputs. Each is a method
of :class:`_Run`, which keeps what was done so that failure handling (:func:`_fail`) can report it.

Each step is timed; ``monitor.txt`` shows life during fetch and install, is left to the job while
it runs, and gets the error state with a code and a one-line reason on any failure; a provenance
record is written next to the outputs (and inside ``/out/models`` for training, so it travels with
the model). The steps' helpers have homes of their own: ``settings`` (the operator's side), ``job``
(what the job sees), ``records`` (monitor.txt, the merged config file and the provenance) and
``signals`` (SIGTERM before the job runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from live_code import __version__, _yaml, contract, util
from live_code.contract import MonitorState, TaskKind
from live_code.envs import builder as envs
from live_code.envs import lock as envlock
from live_code.errors import ConfigError, LiveCodeError
from live_code.record import record, replace
from live_code.run import fallback, job, records, sandbox, supervisor
from live_code.run.job import JOB_PASS_ENV
from live_code.run.records import CONFIG_NAME, PROVENANCE_NAME
from live_code.run.settings import Settings, check_dirs
from live_code.run.signals import Stopped

# under their old names: the signal tests reach them here
from live_code.run.signals import check_stopped as _check_stopped
from live_code.run.signals import restore_signals as _restore_signals
from live_code.run.signals import stop_on_signals as _stop_on_signals
from live_code.source import checkouts, git, pins, urls
from live_code.source.store import Pin, SourceProvenance, Store
from live_code.task import config as config_mod
from live_code.task import manifest as manifest_mod
from live_code.task.config import Task

log = logging.getLogger(__name__)

#: monitor percent while live-code prepares the run (YMIR shows life; the job takes it from here)
_PERCENT = {"task": 0.01, "source": 0.02, "environment": 0.04}


@record(frozen=False)
class RunResult:
    ok: bool
    provenance: dict[str, Any]
    error: LiveCodeError | None = None


Runner = Callable[[supervisor.RunRequest], supervisor.RunOutcome]


class _Run:
    """State of one run; the steps are methods so that failure handling sees what was done."""

    def __init__(self, settings: Settings, store: Store, runner: Runner) -> None:
        self.s = settings
        self.store = store
        self.runner = runner
        self.task: Task | None = None
        self.task_id = "unknown"
        self.timings: dict[str, float] = {}
        self.base_ahead: envs.BaseAhead | None = None  # the base and installer, read during the fetch
        self.ahead: job.RunAhead | None = None  # the sandbox probe and the SDK shim, made during the fetch
        self.keeping = checkouts.Later()  # the copy of a fresh checkout kept for later runs
        self.finishing: envs.Finishing  # the env's bytecode compile and lock, while the job runs
        self.gpus = records.GpuQuery()  # asked now, read for the provenance
        self.record: dict[str, Any] = {
            "live_code": {"version": __version__, "python": sys.version.split()[0], "platform": util.platform_name()},
        }
        #: the env's lock (pylock.toml), written next to the provenance
        self.lock_text: str | None = None
        self.secrets: list[str] = [settings.token] if settings.token else []
        self.percent = 0.0
        self.job_code: int | None = None
        self.src_root = Path()

    # -- helpers -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - start, 3)

    def out(self, container_path: str) -> Path:
        """A container path under /out, on this machine."""
        return self.s.out_dir / os.path.relpath(container_path, contract.OUT_DIR)

    def monitor(self, percent: float, state: MonitorState, code: int = 0, message: str = "") -> None:
        self.percent = percent
        record = contract.MonitorRecord(
            self.task_id, time.time(), percent, state, code, util.redact(message, self.secrets)
        )
        records.write_monitor(self.s.out_dir, record)

    # -- steps ---------------------------------------------------------------------------------

    def read_task(self) -> Task:
        with self.step("task"):
            self.task_id = config_mod.peek_task_id(self.s.in_dir) or self.task_id
            task = config_mod.load_task(self.s.in_dir, out_dir=self.s.out_dir)
            self.task, self.task_id = task, task.task_id
            self.record["task"] = {
                "task_id": task.task_id,
                "protocol": task.protocol,
                "kinds": [k.value for k in task.ordered_kinds],
            }
            if task.source is None:
                raise ConfigError(
                    "config.yaml has no git_url: live-code needs the repository to run",
                    hint="set git_url and git_commit (or git_tag) in the task's config",
                )
            self.secrets += [s for s in git.normalise_url(task.source.url, allow_local=True).secrets if s]
            self.monitor(_PERCENT["task"], MonitorState.RUNNING, message="reading the task")
            return task

    def start_ahead(self, work: Path) -> None:
        """Start what needs no repository (the base, the installer, the sandbox probe, the SDK shim)
        once: as the fetch's first network call starts (before, it would slow the step that starts
        it), or after the fetch."""
        if self.ahead is None:
            root = self.store.root
            self.ahead = job.RunAhead(self.s.in_dir, self.s.out_dir, self.s.sandbox, work, root)
            self.base_ahead = envs.BaseAhead(self.s.base_python, root / "base-info", root / "installer-cache")

    def join_background(self) -> None:
        """Wait for the copy kept of the checkout (the job may change it) and what :meth:`start_ahead`
        started: the shim whole, the probe done, no uv of theirs running."""
        self.keeping.join()
        if self.ahead is not None and self.base_ahead is not None:
            self.ahead.join()
            self.base_ahead.join(30)

    def fetch(self, task: Task, work: Path) -> Path:
        assert task.source is not None
        src = work / "src"
        self.src_root = src
        pin = pins.from_config(task.source)
        self.monitor(_PERCENT["task"], MonitorState.RUNNING, message="fetching the source")
        with self.step("fetch"):
            prov = self._fetch_source(
                task.source.url,
                pin,
                src,
                allow_branch=task.config.options.allow_branch,
                allow_moved_tag=task.config.options.allow_moved_tag,
                on_network=lambda: self.start_ahead(work),
                later=self.keeping,
            )
            self.start_ahead(work)
        self.record["source"] = prov.as_dict()
        self.monitor(_PERCENT["source"], MonitorState.RUNNING, message="source fetched")
        return src

    def _fetch_source(self, url: str, pin: Pin, dest: Path, **more: Any) -> SourceProvenance:
        """``Store.fetch_source`` with the operator's settings (``more``: its other arguments)."""
        s = self.s
        return self.store.fetch_source(
            url, pin, dest, allow_local=s.allow_local, token=s.token, deadline=s.fetch_deadline, **more
        )

    def fetch_submodules(self, task: Task, src: Path, parent_url: str | None = None, depth: int = 0) -> None:
        """``submodules: true``: each submodule at the commit its parent records, through the
        same mirror cache and URL checks as the repository itself (nested ones too)."""
        assert task.source is not None
        parent = parent_url or task.source.url
        self.keeping.join()  # the copy kept of the checkout is made before submodules go into it
        if depth > 5:
            raise ConfigError("submodules nest more than 5 levels deep", hint="flatten the repository's submodules")
        with self.step("fetch"):
            for sub in git.submodules(src):
                url = git.resolve_submodule_url(parent, sub.url)
                prov = self._fetch_source(url, Pin("commit", sub.sha), src / sub.path)
                self.record["source"].setdefault("submodules", []).append(
                    {
                        "path": str((src / sub.path).relative_to(self.src_root)),
                        "url": prov.url,
                        "commit": prov.commit,
                        **({"mirror": prov.mirror} if prov.mirror else {}),
                    }
                )
                self.fetch_submodules(task, src / sub.path, url, depth + 1)

    def configure(self, task: Task, src: Path, manifest: manifest_mod.Manifest) -> Path:
        """Merge manifest defaults < code_config < config.yaml, check the schema, write the file."""
        with self.step("configure"):
            merged, code_config_rel = manifest_mod.merged_config(manifest, task, src)
            # the job and the platform read this file: no credential of git_url or an index URL in it
            text = util.redact(_yaml.dump(merged, sort_keys=True), self.secrets)
            path = records.write_config(self.s.out_dir, text)
            self.record["config"] = {
                "file": f"{contract.OUT_DIR}/{CONFIG_NAME}",
                "code_config": code_config_rel,
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
            }
            return path

    def prepare_environment(self, task: Task, src: Path, manifest: manifest_mod.Manifest) -> envs.EnvSpec:
        """Check the requirements against the base (a refused line stops here, before any install)."""
        self.monitor(_PERCENT["source"], MonitorState.RUNNING, message="preparing the environment")
        with self.step("environment"):
            pkg = task.config.package_index
            index = envs.IndexSettings(
                index_url=pkg.index_url,
                extra_index_urls=pkg.extra_index_urls,
                find_links=pkg.find_links,
                offline=pkg.offline,
            )
            self.secrets += [s for u in (pkg.index_url or "", *pkg.extra_index_urls) for s in urls.url_secrets(u)]
            assert self.base_ahead is not None
            base, installer = self.base_ahead.result()
            lock, as_of = envlock.task_env_lock(task, src, self.s.lock_file, self.record["source"].get("commit_time"))
            spec = envs.prepare_env(
                src,
                manifest.requirements,
                base_python=self.s.base_python,
                index=index,
                strict_pins=task.config.options.strict_pins,
                legacy_layout=manifest.legacy,
                sdk_option=task.config.options.ymir_exc,
                no_build_isolation=manifest.no_build_isolation,
                lock=lock,
                as_of=as_of,
                base=base,
                installer=installer,
            )
            log.info("requirements: %s", spec.requirements.reason)
            for line in spec.satisfied_by_base:
                log.info("framework requirement satisfied by the base (nothing installed): %s", line)
            for line in spec.unpinned:
                log.warning("unpinned requirement (recorded): %s", line)
            if manifest.legacy:  # per run: an env reused by another repo was implied by that repo's code
                self.record["legacy"] = spec.implied.as_dict()
                log.info(
                    "legacy layout: the repository root is on PYTHONPATH; executor SDK: %s (%s)",
                    spec.implied.sdk.requirement or "none",
                    spec.implied.sdk.reason,
                )
                for req, why in spec.implied.requirements:
                    log.info("legacy layout: %s (%s)", req, why)
            return spec

    def environment(self, spec: envs.EnvSpec) -> envs.EnvResult:
        """The cached env for ``spec``, built if needed (call it holding ``store.using``)."""
        start = time.monotonic()
        if spec.lock is not None or any(r.kind != "name" for r in spec.requirements.lines):
            self.keeping.join()  # a path or VCS line (or one locked) may be built in the checkout: copy it first
        env = envs.ensure_env(
            self.store,
            spec,
            installer_cache=self.store.root / "installer-cache",
            timeout=self.s.install_timeout,
            reporter=logging.getLogger("live_code.envs.builder").info,
            lock_later=True,  # written while the job runs (envs.Finishing)
        )
        self.lock_text = envlock.env_lock_text(env.path)
        self.timings["environment"] = round(self.timings.get("environment", 0.0) + time.monotonic() - start, 3)
        # why this file is the run's (another repo with the same bytes may have reused the env)
        # built: False when nothing was installed (a cached env: an earlier run's, or one baked into the image)
        own = {"requirements_reason": spec.requirements.reason, "built": env.built}
        self.record["environment"] = {**env.provenance, **own}
        self.monitor(_PERCENT["environment"], MonitorState.RUNNING, message="environment ready")
        return env

    def after_job(self, env_path: Path, compile_wait: float | None = None) -> None:
        """The SDK shim cached for later runs (now: off the job's start), and the env's bytecode
        and lock, made while the job ran (recorded when this run wrote the lock)."""
        job.publish_shims()
        summary = self.finishing.finish(_COMPILE_WAIT, compile_wait)
        if summary is not None:
            self.record["environment"]["lock"] = summary
            self.lock_text = envlock.env_lock_text(env_path)

    def run_job(
        self, task: Task, src: Path, work: Path, env: envs.EnvResult, manifest: manifest_mod.Manifest, config_file: Path
    ) -> None:
        self.join_background()
        mode, reason = job.sandbox_mode(self.s.in_dir, self.s.out_dir, self.s.sandbox, self.store.root / "probes")
        self.record["sandbox"] = {"mode": mode, **({"reason": reason} if reason else {})}
        view = self._fallback_view(reason, work, config_file) if mode == "fallback" else None
        job_env = self._job_env(work, env, src if manifest.legacy else None)
        if view is not None:
            job_env = fallback.job_env(view, job_env)
        in_before = fallback.snapshot(view) if view is not None else {}
        with self.step("run"):
            deadline = time.monotonic() + task.config.options.timeout if task.config.options.timeout else None
            for kinds, argv in job.entries(task, manifest, env, task.config.gpu_count):
                remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
                run_env = {**job_env, **({"LIVE_CODE_TASK": kinds[0].value} if len(kinds) == 1 else {})}
                full: Sequence[str] = argv
                if mode == "bwrap":
                    mounts = sandbox.Mounts(self.s.in_dir, self.s.out_dir, read_only=(self.store.root,))
                    full = sandbox.wrap(argv, mounts, cwd=src)
                log.info("running %s for %s", " ".join(argv), "+".join(k.value for k in kinds))
                self.finishing.started()  # its processes are older than the job's (the supervisor keeps those)
                outcome = self.runner(
                    supervisor.RunRequest(
                        full, src, run_env, timeout=remaining, grace=self.s.grace, secrets=tuple(self.secrets)
                    )
                )
                self.check_job(kinds, argv, outcome, view, in_before)
            if view is not None:
                for name in fallback.unmap_outputs(view):
                    log.info("%s: host paths of the task mapped back to /in", name)

    def _fallback_view(self, reason: str | None, work: Path, config_file: Path) -> fallback.View:
        """No sandbox: the task's files rewritten for the job to see them at mapped paths."""
        log.warning(
            "not faithful to the container: %s; the job sees the task at mapped paths on this "
            "machine, so code that hard-codes /in or /out fails, and a write into /in is found "
            "only after the job",
            reason,
        )
        return fallback.prepare(self.s.in_dir, self.s.out_dir, work, config_file)

    def check_job(
        self,
        kinds: tuple[TaskKind, ...],
        argv: tuple[str, ...],
        outcome: supervisor.RunOutcome,
        view: fallback.View | None,
        in_before: Mapping[tuple[str, str], fallback.Entry],
    ) -> None:
        """Record one command's outcome; raise for a stop, a write into /in or a failed job."""
        self.record.setdefault("job", []).append(job.outcome_record(kinds, argv, outcome))
        job.check_stop_and_in(outcome, view, in_before, self.record["sandbox"])
        if not outcome.ok:
            reported = records.job_error(self.s.out_dir)
            self.job_code = reported[0] if reported else None
            hint = envlock.job_hint(outcome.tail, self.record.get("environment", {}))
            raise job.failure(outcome, view, hint, reason=reported[1] if reported else None)

    def _job_env(self, work: Path, env: envs.EnvResult, legacy_root: Path | None = None) -> dict[str, str]:
        """The job's whole environment (``job.job_env``), with the operator's extra variable names."""
        return job.job_env(work, env, (*JOB_PASS_ENV, *self.s.job_env), legacy_root, self.store.root / "sdk")

    def check_outputs(self, task: Task) -> None:
        # imported here: the output gate (and msgspec) is needed only after the job, and importing
        # it costs about 7 ms of the warm start before the job's first line
        from live_code.run import outputs

        with self.step("outputs"):
            index = task.env.input.candidate_index_file
            use = index and task.kinds & {TaskKind.MINING, TaskKind.INFER}
            candidates = outputs.read_candidates(task.host_path(index)) if use else None
            problems = outputs.validate_outputs(
                task.kinds, self.s.out_dir, task.protocol, task.config.class_names, candidates
            )
            warned = outputs.log_warnings(problems)  # what YMIR accepts: kept in the provenance, not refused
            if warned:
                self.record["warnings"] = [str(p) for p in warned]
            outputs.raise_for_problems(problems)
            if TaskKind.TRAINING in task.kinds and self.lock_text is not None:
                models = self.out(contract.ENV_OUTPUT_DEFAULTS["models_dir"])
                lock_text, stage_dirs = (
                    util.redact(self.lock_text, self.secrets),
                    contract.allows_stage_dirs(task.protocol),
                )
                if records.attach_lock(models, lock_text, stage_dirs=stage_dirs):
                    self.record.setdefault("environment", {})["lock_in_model_stages"] = True

    def write_provenance(self, outcome: dict[str, Any]) -> None:
        self.record["timings"] = dict(self.timings)
        self.record["outcome"] = outcome
        targets = [self.s.out_dir / PROVENANCE_NAME]
        if self.task is not None and TaskKind.TRAINING in self.task.kinds:
            targets.append(self.out(contract.ENV_OUTPUT_DEFAULTS["models_dir"]) / PROVENANCE_NAME)
        records.write_provenance(self.record, targets, self.secrets, lock_text=self.lock_text, gpus=self.gpus)

    def check_manifest(self, manifest: manifest_mod.Manifest) -> None:
        """Record the repository's layout; refuse what live-code does not do (git LFS)."""
        self.record["manifest"] = {
            "layout": "legacy" if manifest.legacy else "live-code.yaml",
            "framework": manifest.framework,
            "launcher": manifest.launcher,
        }
        if manifest.lfs:
            raise ConfigError(
                "live-code.yaml asks for git LFS files (lfs: true), which live-code does not fetch",
                hint="commit the files, or download them in the job from a pinned URL with a checksum",
            )


def run(settings: Settings, *, store: Store | None = None, runner: Runner = supervisor.run) -> RunResult:
    """Run the task in ``settings.in_dir``; raises the LiveCodeError (or Stopped) that ended it,
    after writing the error state and the provenance."""
    settings = replace(settings, in_dir=settings.in_dir.resolve(), out_dir=settings.out_dir.resolve())
    check_dirs(settings)
    r = _Run(settings, store or Store(), runner)
    supervisor.hide_from_children()  # a job of the same uid cannot read our environment or memory
    work = Path(tempfile.mkdtemp(prefix="live-code-run-", dir=settings.work_root))
    previous = _stop_on_signals()
    try:
        task = r.read_task()
        src = r.fetch(task, work)
        _check_stopped()
        manifest = manifest_mod.load(src)
        r.check_manifest(manifest)
        if manifest.submodules:
            r.fetch_submodules(task, src)
        config_file = r.configure(task, src, manifest)  # a schema error stops the run before any install
        spec = r.prepare_environment(task, src, manifest)
        with r.store.using("envs", spec.key):  # from before the build: gc never removes an env in use
            env = r.environment(spec)
            # the env's bytecode and lock, while the job runs (both done once per env)
            r.finishing = envs.Finishing(env.path, spec, r.store.root / "installer-cache")
            try:
                _check_stopped()
                r.run_job(task, src, work, env, manifest, config_file)
            except Exception:  # a failed job's provenance records the lock too; a stop does not wait
                r.after_job(env.path, compile_wait=0.0)
                raise
            except BaseException:
                r.finishing.abort()
                raise
            r.after_job(env.path)
        _check_stopped()
        r.check_outputs(task)
        _check_stopped()
    except BaseException as e:
        instead = _fail(r, e)
        if instead is not None:
            raise instead from None
        raise
    finally:
        r.join_background()
        _restore_signals(previous)
        if not settings.keep_work:
            util.rmtree(work)
    r.monitor(1.0, MonitorState.RUNNING, message="done")
    r.write_provenance({"ok": True, "exit_code": 0})
    log.info("done: outputs valid; provenance in %s", settings.out_dir / PROVENANCE_NAME)
    return RunResult(True, r.record)


def _fail(r: _Run, e: BaseException) -> LiveCodeError | None:
    """The error state in monitor.txt and the provenance for what ended the run. Returns the error
    to raise instead of ``e`` (a full disk, classified), or None to raise ``e`` itself."""
    if isinstance(e, LiveCodeError):
        _record_error(r, e, r.job_code or e.ymir_code)
        return None
    if isinstance(e, Stopped):
        reason = f"stopped by {signal.Signals(e.signum).name}"
        r.monitor(r.percent, MonitorState.ERROR, contract.ReturnCode.CONTAINER_ERROR, reason)
        r.write_provenance({"ok": False, "exit_code": 128 + e.signum, "error": reason})
        return None
    if isinstance(e, KeyboardInterrupt):
        r.monitor(r.percent, MonitorState.ERROR, contract.ReturnCode.CONTAINER_ERROR, "interrupted")
        r.write_provenance({"ok": False, "exit_code": 130, "error": "interrupted"})
        return None
    full = records.disk_full(e, r.s.out_dir, r.store.root)  # a bug otherwise: still leave a monitor line YMIR can show
    if full is not None:
        _record_error(r, full, full.ymir_code)
        return full
    r.monitor(1.0, MonitorState.ERROR, contract.ReturnCode.CONTAINER_ERROR, f"live-code internal error: {e!r}")
    r.write_provenance({"ok": False, "exit_code": 70, "error": f"internal error: {e!r}"})
    return None


def _record_error(r: _Run, e: LiveCodeError, code: int) -> None:
    r.monitor(1.0, MonitorState.ERROR, code, e.one_line())
    r.write_provenance({"ok": False, "exit_code": e.exit_code, "error": e.one_line(), "return_code": code})


# -- helpers ---------------------------------------------------------------------------------


#: how long a run whose job is done waits for the env's bytecode compile and lock to end (then they are killed
#: and the next run starts them again)
_COMPILE_WAIT = 600.0


__all__: Sequence[str] = (
    "CONFIG_NAME",
    "JOB_PASS_ENV",
    "PROVENANCE_NAME",
    "RunResult",
    "Settings",
    "Stopped",
    "run",
)
