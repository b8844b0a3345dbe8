#!/usr/bin/env bash
# The mxnet image's framework: a venv at PREFIX holding MXNet and its pinned dependencies. The RUN
# step of base_images/mxnet/Dockerfile, and how tests/run.sh makes .venv-mx (the CPU wheel).
#
#   install-mxnet.sh PREFIX
#
# Environment:
#   PYTHON          the interpreter that creates the venv (default python3; the image: python3.9)
#   MXNET_PACKAGE   mxnet-cu112 (CUDA 11.2 build, the image's default) or mxnet (CPU only)
#   MXNET_VERSION   default 1.9.1, the last MXNet 1.x release
# Pip settings (PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX, ...) pass through.
set -euo pipefail

prefix=${1:?usage: install-mxnet.sh PREFIX}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-python3}
package=${MXNET_PACKAGE:-mxnet-cu112}
version=${MXNET_VERSION:-1.9.1}

"$python" -m venv "$prefix"
pip=("$prefix/bin/python" -m pip install --no-cache-dir --disable-pip-version-check --no-warn-script-location)
"${pip[@]}" -c "$here/requirements.txt" pip
"${pip[@]}" -r "$here/requirements.txt" "$package==$version"
# setuptools is the one the venv came with (older Pythons), unused at run time; MXNet is pinned above
"$prefix/bin/python" "$here/../common/check-pins.py" --ignore=setuptools,"$package" "$here/requirements.txt"
echo "install-mxnet: $package $version in $prefix"
