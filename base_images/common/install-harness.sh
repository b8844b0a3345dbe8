#!/usr/bin/env bash
# Install the live-code harness into its own venv: the RUN step of base_images/*/Dockerfile, and what
# tests/test_base_images.py runs (with LIVE_CODE_HOME under a temp dir).
#
#   install-harness.sh SOURCE_DIR
#
# SOURCE_DIR holds pyproject.toml, README.md and live_code/ (what the Dockerfile copies in). The
# settings come from the image's ENV:
#   LIVE_CODE_HOME         the harness venv to create (the image: /opt/live-code)
#   LIVE_CODE_BASE_PYTHON  the framework interpreter job envs are layered over; it also creates the
#                          harness venv, which does not see its packages (no system site-packages),
#                          so the harness's dependencies (PyYAML, uv, ...) never reach a job
#   LIVE_CODE_FRAMEWORK    torch or mxnet: the build fails unless the harness sees it in the base
#   LIVE_CODE_CACHE        the cache directory, created writable for any uid (YMIR runs --user uid:gid)
# Pip settings (PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX, ...) pass through, for mirrors and
# wheelhouses.
set -euo pipefail

src=${1:?usage: install-harness.sh SOURCE_DIR (holding pyproject.toml and live_code/)}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
home=${LIVE_CODE_HOME:?set LIVE_CODE_HOME to the harness venv to create, e.g. /opt/live-code}
base=${LIVE_CODE_BASE_PYTHON:?set LIVE_CODE_BASE_PYTHON to the image framework python, e.g. /opt/conda/bin/python}
framework=${LIVE_CODE_FRAMEWORK:-}
cache=${LIVE_CODE_CACHE:?set LIVE_CODE_CACHE to the cache directory, e.g. /var/cache/live-code}
constraints="$here/harness-constraints.txt"

die() { echo "install-harness: $*" >&2; exit 1; }

[ -f "$src/pyproject.toml" ] && [ -d "$src/live_code" ] || die "$src holds no pyproject.toml and live_code/"
[ -x "$base" ] || die "LIVE_CODE_BASE_PYTHON=$base is not an executable interpreter"
"$base" -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
    || die "$base is older than Python 3.9, which live-code needs"

echo "install-harness: creating $home with $("$base" --version 2>&1) ($base)"
"$base" -m venv "$home"
pip=("$home/bin/python" -m pip install --no-cache-dir --disable-pip-version-check --no-warn-script-location -c "$constraints")
"${pip[@]}" pip setuptools
# no build isolation: the build backend is the pinned setuptools just installed, not the index's newest
"${pip[@]}" --no-build-isolation "$src"
"$home/bin/python" "$here/check-pins.py" --ignore=live-code "$constraints"
"$home/bin/live-code" --version

# What the harness sees in the base: its protected frameworks and fingerprint come from there.
"$home/bin/python" - "$base" "$framework" <<'PY'
import sys

from live_code.envs import builder as envs

base, framework = sys.argv[1], sys.argv[2]
info = envs.base_fingerprint(base)
protected = ", ".join(f"{n} {v}" for n, v in sorted(info.protected.items())) or "none"
print(f"install-harness: base {info.executable} (python {info.python_version}, {len(info.dists)} distributions); "
      f"protected frameworks: {protected}; fingerprint {info.fingerprint()[:16]}")
if framework and not any(n == framework or n.startswith(framework + "-") for n in info.protected):
    sys.exit(f"install-harness: LIVE_CODE_FRAMEWORK={framework} but the base {base} has no {framework} "
             "distribution: install the framework first, or point LIVE_CODE_BASE_PYTHON at its python")
PY

mkdir -p "$cache"
chmod 0777 "$cache"  # not 1777: a baked cache's files are replaced by whichever uid runs the task
echo "install-harness: harness in $home, cache $cache"
