"""The whole benchmark of issues 11 and 24 (``bench/run`` calls this); bench/README.md explains each number.

    bench/run [--runs 3] [--burn-seconds 5] [--images 100000] [--work .bench] [--no-mlflow] [--profile]

Rounds run the cases round-robin (the machine's speed drifts, perf-baselines.md 0): in each round
baseline A (always cold), live-code cold, ``uv pip install`` of the same wheels alone, live-code
warm (the same cache again), the bare entry, MLflow cold then warm with ``--env-manager
virtualenv`` (MLflow's default for python_env) and with ``--env-manager uv``. Then the burn job,
bare and under live-code, round-robin, and the validation of a 100k-image infer-result.json.
Prints the table of medians and ratios, and where a warm run's time goes step by step, and
writes every raw number to ``<work>/run-<stamp>/results.json``.

``--profile`` runs only live-code (one cold run to fill the cache, then warm runs and the bare
entry, round-robin) and prints the warm run's steps: a quick look at the harness's own cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import benchrepo  # noqa: E402 (after the sys.path line above)
import cases  # noqa: E402 (after the sys.path line above)
import gitserve  # noqa: E402 (after the sys.path line above)
import report  # noqa: E402 (after the sys.path line above)
import validate_infer  # noqa: E402 (after the sys.path line above)
import warmsteps  # noqa: E402 (after the sys.path line above)
import workdir  # noqa: E402 (after the sys.path line above)
from timing import Timed, disk_usage  # noqa: E402 (after the sys.path line above)

MB_PER_S = 50
BLOCK_BYTES = 500_000


class Results:
    """Raw samples per case (seconds unless named otherwise) and extra records."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.extra: dict[str, Any] = {"runs": []}

    def add(self, case: str, value: float) -> None:
        self.samples.setdefault(case, []).append(value)

    def med(self, case: str) -> float | None:
        values = self.samples.get(case)
        return statistics.median(values) if values else None

    def n(self, case: str) -> int:
        return len(self.samples.get(case, []))


def _check(timed: Timed, what: str) -> Timed:
    if not timed.ok:
        raise SystemExit(f"bench: {what} failed: {timed.describe()}")
    return timed


def _record(res: Results, case: str, timed: Timed, **more: Any) -> None:
    res.extra["runs"].append(
        {
            "case": case,
            "returncode": timed.returncode,
            "first_line": timed.first_line,
            "total": timed.total,
            "log": timed.log,
            **more,
        }
    )


def _start_server(root: Path, cert: Path, key: Path, python: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [python, str(HERE / "gitserve.py"), str(root), str(cert), str(key)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise SystemExit("bench: the https git server did not start")
    return proc, int(line)


def _stop_server(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _startup_round(b: cases.Bench, res: Results, r: int, with_mlflow: bool, managers: list[str]) -> None:
    t = _check(b.baseline_a(), "baseline A")
    res.add("a_cold", t.first_line)  # type: ignore[arg-type]  # _check returned, so the first line was seen
    _record(res, "a_cold", t)

    cache = b.run_dir / "caches" / f"live-code-{r}"
    floor = b.run_dir / "caches" / f"uv-alone-{r}"
    t = b.tools
    # live-code's cold run and uv alone take turns going first, and nothing is removed between
    # them: on this VM the install right after A ran up to 4x slower (bench/README.md). Each is
    # also recorded by its place (lc_cold_1st, uv_cold_2nd, ...), and the row against uv alone
    # compares the two in the same place
    for place, case in enumerate(("cold", "uv") if r % 2 == 0 else ("uv", "cold")):
        key = f"{'lc' if case == 'cold' else 'uv'}_cold_{('1st', '2nd')[place]}"
        if case == "cold":
            _live_code(b, res, cache, "cold")
            res.add(key, res.samples["lc_cold"][-1])
        else:
            res.add("uv_cold", warmsteps.uv_alone(t.uv, t.base_python, t.requirements, t.wheelhouse, floor, _env(b)))
            res.add(key, res.samples["uv_cold"][-1])
    _warm_and_bare(b, res, cache)
    res.add("lc_cache_bytes", disk_usage(cache))
    res.add("git_fetch", warmsteps.git_fetch_alone(b.url, b.commit, b.run_dir / "caches" / f"git-alone-{r}", _env(b)))

    if with_mlflow:
        for manager in managers:
            state = b.run_dir / "caches" / f"mlflow-{manager}-{r}"
            for phase in ("cold", "warm"):
                t = _check(b.mlflow(state, manager), f"mlflow run --env-manager {manager} ({phase})")
                res.add(f"b_{manager}_{phase}", t.first_line)  # type: ignore[arg-type]  # _check returned, so the first line was seen
                _record(res, f"b_{manager}_{phase}", t)
            res.add(f"b_{manager}_cache_bytes", disk_usage(state / "envs", state / "pip-cache", state / "uv-cache"))


#: what one start-up round leaves on disk at most (A's copy and install, live-code's cache, uv alone,
#: both MLflow states: about 2.7 GiB for the detector set), kept until the last round ends
_ROUND_BYTES = 3 * 2**30


def _settle(b: cases.Bench, started: float) -> None:
    """One untimed uv install before the first round (kept until the rounds end), so that what
    an earlier removal left the filesystem to do (see :func:`_sections`) is not charged to the first
    case: on this machine the first install after one took 3.3 s, the next two 1.0 s."""
    print(f"==> an untimed install first, to settle the filesystem ({time.monotonic() - started:.0f} s)", flush=True)
    t = b.tools
    seconds = warmsteps.uv_alone(
        t.uv, t.base_python, t.requirements, t.wheelhouse, b.run_dir / "caches" / "settle", _env(b)
    )
    print(f"    ({seconds:.2f} s)", flush=True)


def _live_code(b: cases.Bench, res: Results, cache: Path, phase: str) -> None:
    t, prov = b.live_code(cache)
    _check(t, f"live-code {phase}")
    res.add(f"lc_{phase}", t.first_line)  # type: ignore[arg-type]  # _check returned, so the first line was seen
    _record(res, f"lc_{phase}", t, provenance=prov)


def _warm_and_bare(b: cases.Bench, res: Results, cache: Path) -> None:
    """A warm run, the bare entry, and the harness interpreter's start and CLI import (for the profile)."""
    _live_code(b, res, cache, "warm")
    t = _check(b.bare(cases.job_python(cache)), "bare entry")
    res.add("bare_start", t.first_line)  # type: ignore[arg-type]  # _check returned, so the first line was seen
    _record(res, "bare_start", t)
    python, env = b.tools.harness.parent / "python", _env(b)
    res.add("py_start", warmsteps.interpreter_seconds(python, env))
    seconds, biggest = warmsteps.import_seconds(python, env)
    res.add("cli_import", seconds)
    res.extra["cli_import_biggest"] = biggest


def _env(b: cases.Bench) -> dict[str, str]:
    """The environment the bench gives every command (as ``cases.Bench`` does)."""
    return workdir.clean_env(b.run_dir / "home", GIT_SSL_CAINFO=str(b.cert), TMPDIR=str(b.tmp))


def _profile_rounds(b: cases.Bench, res: Results, runs: int, started: float) -> None:
    """``--profile``: one cold run to fill a cache, then warm runs and the bare entry, round-robin."""
    cache = b.run_dir / "caches" / "live-code-profile"
    print(f"==> profile: a cold run to fill the cache ({time.monotonic() - started:.0f} s)", flush=True)
    _live_code(b, res, cache, "cold")
    for r in range(runs):
        print(f"==> profile round {r + 1}/{runs} ({time.monotonic() - started:.0f} s)", flush=True)
        _warm_and_bare(b, res, cache)
    shutil.rmtree(cache, ignore_errors=True)


def _burn_case(res: Results, case: str, t: Timed, **more: Any) -> float:
    """The burn job's run ``t`` recorded as ``case``: seconds after the marker, the job's own wall
    time (``CASE_job``) and the whole run; returns the job's own CPU seconds."""
    wall, cpu = _job_seconds(Path(t.log), t.stdout_tail)
    res.add(case, t.after_marker())
    res.add(f"{case}_job", wall)
    timing = {"after_marker": t.after_marker(), "stdout_bytes": t.stdout_bytes, "cpu": t.cpu}
    _record(res, case, t, **timing, job_wall=wall, job_cpu=cpu, **more)
    return cpu


def _burn_round(b: cases.Bench, res: Results, cache: Path) -> None:
    """The burn job bare, under live-code, and under live-code with no work (the harness's fixed
    CPU cost, subtracted to get what it spends while the job runs)."""
    t = _check(b.bare(cases.job_python(cache), burn=True), "bare burn job")
    res.add("burn_bare_job_cpu", _burn_case(res, "burn_bare", t))
    t, prov = b.live_code(cache, burn=True)
    _check(t, "burn job under live-code")
    cpu = _burn_case(res, "burn_lc", t, provenance=prov)
    idle, _ = b.live_code(cache, burn=True, idle=True)
    _check(idle, "idle burn job under live-code")
    _, idle_cpu = _job_seconds(Path(idle.log), idle.stdout_tail)
    _record(res, "burn_lc_idle", idle, cpu=idle.cpu, job_cpu=idle_cpu)
    res.add("burn_lc_harness_cpu", (t.cpu - cpu) - (idle.cpu - idle_cpu))


def _job_seconds(log: Path, tail: str) -> tuple[float, float]:
    """The burn job's own wall and CPU seconds ("burn done in X s, cpu Y s", on stderr or merged
    into stdout)."""
    text = tail + "\n" + (log.read_text(errors="replace")[-4096:] if log.exists() else "")
    found = re.findall(r"burn done in ([0-9.]+) s, cpu ([0-9.]+) s", text)
    return (float(found[-1][0]), float(found[-1][1])) if found else (float("nan"), float("nan"))


def _validation(b: cases.Bench, res: Results, images: int, repeat: int, large: int) -> None:
    with tempfile.TemporaryDirectory(dir=b.tmp) as tmp:
        path = os.path.join(tmp, "infer-result.json")
        candidates = validate_infer.make_file(path, images, 3)
        got = validate_infer.measure(path, candidates, repeat)
        for case in ("validate", "json_load", "json_load_nogc", "msgspec_decode_nogc"):
            for v in got[case]:  # type: ignore[union-attr]  # these cases are lists of seconds
                res.add(case, v)
        res.extra["validation_bytes"] = got["bytes"]
        res.extra["validation_profile"] = validate_infer.profile(path, candidates)
        if b.tools.orjson_python is not None:
            out = subprocess.run(
                [
                    str(b.tools.orjson_python),
                    str(HERE / "validate_infer.py"),
                    "--parse-only",
                    path,
                    "--repeat",
                    str(repeat),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            parsed = json.loads(out)
            for v in parsed["seconds"]:
                res.add("orjson_loads", v)
            for v in parsed["seconds_nogc"]:
                res.add("orjson_loads_nogc", v)
            for v in parsed["seconds_walk_nogc"]:
                res.add("orjson_walk_nogc", v)
            res.extra["fast_parser"] = parsed["parser"]
    if large:
        with tempfile.TemporaryDirectory(dir=b.tmp) as tmp:
            got_large = validate_infer.measure_large(os.path.join(tmp, "infer-result.json"), large)
        for key, value in got_large.items():
            res.add(f"large_{key}", value)


def _loads(values: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--runs",
        type=int,
        default=4,
        help="rounds (each: one cold and one warm run per runner); even, so that live-code cold and uv alone "
        "go first equally often",
    )
    p.add_argument("--burn-seconds", type=float, default=5.0, help="CPU seconds of the burn job")
    p.add_argument("--images", type=int, default=100_000, help="images in the validated infer-result.json")
    p.add_argument(
        "--large-images",
        type=int,
        default=1_000_000,
        help="images in the large file, validated once for its time and peak memory (0: skip)",
    )
    p.add_argument("--work", type=Path, default=ROOT / ".bench", help="bench work dir (default: .bench)")
    p.add_argument("--python", type=Path, default=Path(sys.executable), help="the interpreter for every venv")
    p.add_argument("--no-mlflow", action="store_true", help="skip baseline B (no MLflow venv is made)")
    p.add_argument("--managers", default="virtualenv,uv", help="MLflow env managers to run (default: %(default)s)")
    p.add_argument(
        "--requirements", default="detector", help="requirement set: detector (default), small, or a requirements file"
    )
    p.add_argument(
        "--harness",
        type=Path,
        help="the live-code command measured (default: this checkout installed as the images install "
        "it, in <work>/harness)",
    )
    p.add_argument("--only", default="startup,running,validation", help="sections to run (default: %(default)s)")
    p.add_argument("--keep", action="store_true", help="keep this run's caches and logs (default: logs only)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="only live-code warm runs and the bare entry: where a warm run's time goes",
    )
    args = p.parse_args()
    args.no_mlflow = args.no_mlflow or args.profile
    started = time.monotonic()
    managers = [x for x in args.managers.split(",") if x]
    work = args.work.resolve()
    print(f"==> bench setup in {work}", flush=True)
    tools = workdir.prepare(work, args.python, ROOT, args.requirements, with_mlflow=not args.no_mlflow)
    if args.harness is not None:
        tools = dataclasses.replace(tools, harness=args.harness.absolute())
    run_dir = work / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)

    repo = benchrepo.build(run_dir / "server" / "bench.git", tools.requirements, tools.python_version)
    cert, key = gitserve.make_certificate(work / "tls")
    server, port = _start_server(run_dir / "server", cert, key, sys.executable)
    url = f"https://127.0.0.1:{port}/bench.git"
    try:
        return _bench(args, tools, run_dir, repo, url, cert, managers, started)
    finally:
        _stop_server(server)
        if not args.keep:
            for sub in ("caches", "a", "out", "tmp", "checkout", "home"):
                shutil.rmtree(run_dir / sub, ignore_errors=True)


def _bench(
    args: argparse.Namespace,
    tools: workdir.Tools,
    run_dir: Path,
    repo: benchrepo.BenchRepo,
    url: str,
    cert: Path,
    managers: list[str],
    started: float,
) -> int:
    res = Results()
    b = _cases(args, tools, run_dir, repo, url, cert)
    with_mlflow = not args.no_mlflow
    res.extra["load_average_start"] = os.getloadavg()
    if args.profile:
        _profile_rounds(b, res, args.runs, started)
    else:
        _sections(args, b, res, with_mlflow, managers, started)
    res.extra["load_average_end"] = os.getloadavg()
    _report(args, b, repo, res, managers if with_mlflow else [], started)
    return 0


def _cases(
    args: argparse.Namespace, tools: workdir.Tools, run_dir: Path, repo: benchrepo.BenchRepo, url: str, cert: Path
) -> cases.Bench:
    checkout = run_dir / "checkout"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(repo.git_dir), str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "checkout", "-q", repo.commit], check=True)
    index = {"pip_find_links": [str(tools.wheelhouse)], "pip_offline": True}
    source = {"git_url": url, "git_commit": repo.commit}
    infer = cases.make_task(tools.harness, run_dir / "tasks" / "infer", "infer", {**source, **index})
    mining = cases.make_task(tools.harness, run_dir / "tasks" / "mining", "mining", {**source, **index})
    a_config = {"git_url": url, "git_branch": repo.commit}  # the original image's keys
    a_task = cases.make_task(tools.harness, run_dir / "tasks" / "a", "infer", a_config)
    blocks = int(round(args.burn_seconds * MB_PER_S * 1e6 / BLOCK_BYTES))
    loops = cases.calibrate_loops(tools.base_python, args.burn_seconds, blocks)
    burn_env = {"BENCH_BURN_BLOCKS": str(blocks), "BENCH_BURN_LOOPS": str(loops)}
    return cases.Bench(tools, run_dir, url, repo.commit, cert, checkout, infer, mining, a_task / "in", burn_env)


def _sections(
    args: argparse.Namespace, b: cases.Bench, res: Results, with_mlflow: bool, managers: list[str], started: float
) -> None:
    only = set(args.only.split(","))
    if "startup" in only:
        need = args.runs * _ROUND_BYTES
        free = shutil.disk_usage(b.run_dir).free
        if free < need:
            raise SystemExit(
                f"bench: {args.runs} start-up rounds keep about {need / 2**30:.0f} GiB until the last one ends, and "
                f"{b.run_dir} has {free / 2**30:.1f} GiB free: free some space, or pass fewer --runs"
            )
        _settle(b, started)
        for r in range(args.runs):
            print(f"==> start-up round {r + 1}/{args.runs} ({time.monotonic() - started:.0f} s)", flush=True)
            _startup_round(b, res, r, with_mlflow, managers)
        # only now: on this machine's root filesystem (ext4 without a journal) files created within
        # minutes of a large removal cost up to 8x more (bench/README.md, "Reading the results")
        for done in (b.run_dir / "caches", b.run_dir / "a"):
            shutil.rmtree(done, ignore_errors=True)
    if "running" in only:
        burn_cache = b.run_dir / "caches" / "live-code-burn"
        _check(b.live_code(burn_cache)[0], "live-code run to warm the burn cache")
        for r in range(args.runs):
            print(f"==> running-overhead round {r + 1}/{args.runs} ({time.monotonic() - started:.0f} s)", flush=True)
            _burn_round(b, res, burn_cache)
    if "validation" in only:
        print(
            f"==> validation of a {args.images}-image infer-result.json ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
        _validation(b, res, args.images, max(3, args.runs), args.large_images)


def _report(
    args: argparse.Namespace,
    b: cases.Bench,
    repo: benchrepo.BenchRepo,
    res: Results,
    managers: list[str],
    started: float,
) -> None:
    tools, run_dir = b.tools, b.run_dir
    table, verdicts = report.table(res.med, res.n, managers, args.images, args.large_images)
    profile = warmsteps.profile_table(res.med, res.extra["runs"], res.extra.get("cli_import_biggest", []))
    elapsed = time.monotonic() - started
    wheels = sorted(p.name for p in tools.wheelhouse.glob("*.whl") if not p.name.startswith("pip-"))
    blocks, loops = b.burn_env["BENCH_BURN_BLOCKS"], b.burn_env["BENCH_BURN_LOOPS"]
    header = [
        f"live-code bench, {time.strftime('%Y-%m-%d %H:%M')}: {os.cpu_count()} CPUs, python {tools.python_version}, "
        f"{platform.platform()}",
        f"repo: {repo.commits} commits, {repo.files} files, {repo.pack_bytes / 2**20:.1f} MiB pack, served over https "
        f"on 127.0.0.1 (git http-backend); commit {repo.commit[:12]}",
        f"requirements ({args.requirements}): {', '.join(tools.requirements.split())}; {len(wheels)} wheels "
        f"({disk_usage(tools.wheelhouse) / 2**20:.0f} MiB) from a local wheelhouse, no index",
        f"MLflow {workdir.MLFLOW_VERSION}; harness {tools.harness}; burn job: {blocks} x {BLOCK_BYTES / 1e6:.1f} MB "
        f"of output, {loops} loop turns per block",
        "start-up = seconds from command start to the entry's first line; medians; ratio = ours/baseline; "
        f"load average (1/5/15 min) at start {_loads(res.extra['load_average_start'])}, "
        f"at end {_loads(res.extra['load_average_end'])}",
    ]
    sandbox = _sandbox_line(res.extra["runs"])
    if sandbox:
        header.append(sandbox)
    text = (
        "\n".join(header)
        + "\n\n"
        + table
        + "\n\nwhere a warm run's time goes (medians):\n"
        + profile
        + "\n\nwhere a cold run's time goes (medians):\n"
        + warmsteps.cold_table(res.med, res.extra["runs"])
        + f"\n\nbench finished in {elapsed:.0f} s; raw results in {run_dir / 'results.json'}"
    )
    record = {
        "samples": res.samples,
        "extra": res.extra,
        "verdicts": verdicts,
        "header": header,
        "table": table,
        "profile": profile,
        "elapsed_s": elapsed,
        "repo": {"commit": repo.commit, "pack_bytes": repo.pack_bytes, "files": repo.files, "commits": repo.commits},
        "burn": {"blocks": int(blocks), "block_bytes": BLOCK_BYTES, "loops": int(loops)},
        "wheels": wheels,
        "mlflow": workdir.MLFLOW_VERSION,
        "argv": sys.argv,
    }
    (run_dir / "results.json").write_text(json.dumps(record, indent=1, default=str))
    print("\n" + text)
    if "validation_profile" in res.extra:
        print("\nvalidation profile (cProfile of one validate_infer_result, by own time):")
        print(res.extra["validation_profile"])


def _sandbox_line(runs: list[dict[str, Any]]) -> str:
    """How live-code's jobs ran (the provenance's sandbox mode): the targets assume bubblewrap, and
    a run without it starts the job with less work, so its numbers do not compare. Empty when no
    live-code job ran (``--only validation``)."""
    modes = sorted({str(r["provenance"].get("sandbox")) for r in runs if r.get("provenance")})
    if not modes:
        return ""
    if modes == ["bwrap"]:
        return "live-code's jobs ran under bubblewrap (sandbox mode bwrap), as in production"
    return (
        f"WARNING: live-code's jobs did not all run under bubblewrap (sandbox modes: {', '.join(modes)}): "
        "install bubblewrap (bench/run does as root with apt-get); these start-up numbers do not compare"
    )


if __name__ == "__main__":
    sys.exit(main())
