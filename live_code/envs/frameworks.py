"""The verdict on a requirement naming a protected framework (torch, mxnet, ...), and the check
after an install that the base's frameworks were neither shadowed nor changed.

Private to ``envs`` (``builder`` re-exports :func:`framework_verdict` and :func:`check_protected`).
"""

from __future__ import annotations

from collections.abc import Mapping

from live_code.envs.base import BaseInfo, base_fingerprint, is_protected, normal_version
from live_code.envs.requirements import RequirementLine, Requirements
from live_code.errors import EnvironmentBuildError, RequirementError
from live_code.record import record


@record
class FrameworkVerdict:
    """What becomes of a requirement line on a protected framework (torch, mxnet, ...)."""

    #: ``base``: the base's version satisfies it (nothing installed); ``refused``: it would replace
    #: the base's version; ``install``: the base lacks the package, so it is installed
    status: str
    message: str
    hint: str = ""
    #: the base's version, when it has the package
    base_version: str | None = None


def framework_verdict(line: RequirementLine, base: BaseInfo) -> FrameworkVerdict | None:
    """The one verdict on a requirement line naming a protected framework, for ``live-code check``
    and ``live-code run`` alike; None for any other line."""
    if line.name is None or not is_protected(line.name):
        return None
    have = base.protected.get(line.name)
    if have is None:
        return FrameworkVerdict(
            "install",
            f"{line.origin}: {line.text!r}: the base has no {line.name}, so it is "
            "installed into the job env (a compiled one must match the base's frameworks)",
            "better: use an image whose base has it",
        )
    from packaging.specifiers import SpecifierSet  # here, not above: util.canonical_name says why

    parsed = normal_version(have)
    if line.kind == "name" and (
        SpecifierSet(line.specifier).contains(parsed, prereleases=True) if parsed else not line.specifier
    ):
        return FrameworkVerdict(
            "base", f"{line.origin}: {line.text!r} is satisfied by the base's {line.name} {have}", base_version=have
        )
    what = "another version" if line.kind == "name" else f"a {line.kind} form of it"
    return FrameworkVerdict(
        "refused",
        f"{line.origin}: {line.text!r} would replace the base image's {line.name} {have} ({what})",
        f"remove the line or pin {line.name}=={have}: the image's frameworks are never reinstalled "
        f"(another {line.name} needs another image)",
        have,
    )


def check_protected(requirements: Requirements, base: BaseInfo) -> None:
    """Refuse, before anything is installed, a requirement that would replace a protected
    framework of the base: another version, or any URL, VCS or path form of it."""
    for line in requirements.lines:
        verdict = framework_verdict(line, base)
        if verdict is not None and verdict.status == "refused":
            raise RequirementError(verdict.message, value=f"{line.origin}: {line.text}", hint=verdict.hint)


def verify_base_kept(before: BaseInfo, added: Mapping[str, str]) -> None:
    protected = before.protected
    for name in sorted(set(protected) & set(added)):
        msg = (
            f"the install put {name} {added[name]} into the job env, shadowing the base image's "
            f"{name} {protected[name]}"
        )
        raise EnvironmentBuildError(msg, value=name, hint="report this as a live-code bug; the env was removed")
    if not protected:
        return
    after = {d.name: d for d in base_fingerprint(before.executable, signatures_for=protected).dists}
    for d in before.dists:
        if d.name in protected and after.get(d.name) != d:
            msg = f"the install changed the base image's {d.name} {d.version} (its files differ)"
            raise EnvironmentBuildError(msg, value=d.name, hint="the base image is damaged: rebuild or restore it")
