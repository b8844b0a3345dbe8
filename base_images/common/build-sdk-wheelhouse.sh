#!/usr/bin/env bash
# Build the SDK wheelhouse (live_code/task/legacy.py): the executor SDKs ymir-exc 1.x and 2.x, loguru,
# opencv-python-headless and every dependency, as wheels for one Python, checked to install with no
# index. The images run it with their framework interpreter and set LIVE_CODE_SDK_WHEELHOUSE to
# DEST; tests/run.sh runs it once per machine with the 2.x source from ../shared/sources.
#
#   build-sdk-wheelhouse.sh DEST [SDK2_SOURCE]
#
# DEST         the folder to create (replaced only once the new one is complete and checked)
# SDK2_SOURCE  where the 2.x executor SDK comes from (the images' build argument YMIR_EXC_SDK2_SOURCE):
#              a pip requirement of it (default, also when empty: the GitHub repository at the pinned
#              commit; a mirror: `ymir-exc @ git+URL@COMMIT`), the path or URL of its wheel, or a
#              local git clone holding that commit (the commit's tree is built, whatever is checked
#              out; the clone may be read-only and owned by anyone)
# PYTHON       the interpreter the wheels are for (default python3; the images: the framework's)
# PIP_PYTHON   the interpreter whose pip does the work (default PYTHON; the images: the harness's, as
#              a framework interpreter need not carry pip)
# Pip settings (PIP_INDEX_URL, PIP_FIND_LINKS, ...) pass through, for mirrors. DEST is made readable
# by any uid (YMIR runs tasks as an arbitrary uid).
set -euo pipefail

dest=${1:?usage: build-sdk-wheelhouse.sh DEST [SDK2_SOURCE]}
sdk2_commit=8bfd7311a28437a29a7ab8d3f308a1fa2250c2ce
sdk2_version=2.1.1.215
sdk2=${2:-ymir-exc @ git+https://github.com/modelai/ymir-executor-sdk.git@$sdk2_commit}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=${PYTHON:-python3}
pip_py=${PIP_PYTHON:-$py}
pins="$here/sdk-wheelhouse.txt"
partial="$dest.partial"

die() { echo "build-sdk-wheelhouse: $*" >&2; exit 1; }
pip() { "$pip_py" -m pip --disable-pip-version-check --no-input "$@"; }

version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || die "$py does not run"
# wheels for the target interpreter, whichever pip fetches them
target=(--only-binary=:all: --python-version "$version" --implementation cp)
rm -rf "$partial"
mkdir -p "$partial"
trap 'rm -rf "$partial"' EXIT  # a failed build leaves nothing behind (after the mv there is nothing)
echo "build-sdk-wheelhouse: the 2.x executor SDK from ${sdk2}"
if [ -d "$sdk2" ]; then
    # Build the pinned commit's tree, not the working tree (edits, other checkouts, build leftovers);
    # an export also spares a read-only clone the build's writes. Any owner: the build only reads it.
    clone=(git -c safe.directory='*' -C "$sdk2")
    "${clone[@]}" cat-file -e "$sdk2_commit^{commit}" 2>/dev/null \
        || die "$sdk2 is not a git clone holding the pinned commit $sdk2_commit: clone or fetch modelai/ymir-executor-sdk there"
    mkdir "$partial/.src"
    "${clone[@]}" archive --format=tar "$sdk2_commit" | tar -x -C "$partial/.src"
    sdk2="$partial/.src"
fi
# The build backend: the pip interpreter's own setuptools when it builds wheels (>= 70.1; the images'
# harness venv pins it), so the build needs no index; else an isolated build (pip fetches setuptools).
if "$pip_py" -c 'import setuptools.command.bdist_wheel' >/dev/null 2>&1; then
    backend=(--no-build-isolation)
    echo "build-sdk-wheelhouse: built with $("$pip_py" -m pip --version | cut -d' ' -f1-2) and the setuptools beside it"
else
    backend=(--use-pep517)
    echo "build-sdk-wheelhouse: built with $("$pip_py" -m pip --version | cut -d' ' -f1-2) in an isolated build env"
fi
pip wheel -q --no-deps "${backend[@]}" -w "$partial" "$sdk2"
ls "$partial"/ymir_exc-"$sdk2_version"-py3-none-any.whl >/dev/null 2>&1 \
    || die "the 2.x SDK built as $(ls "$partial"), not ymir_exc-$sdk2_version"
echo "build-sdk-wheelhouse: downloading the pinned wheels for Python $version"
pip download -q --no-deps "${target[@]}" -d "$partial" -r "$pins"

# Each SDK with the extras must install for that Python from the folder alone (every dependency there).
for sdk in "ymir-exc==1.1.0.523" "ymir-exc==$sdk2_version"; do
    pip install -q --dry-run --target "$partial/.check" --no-index --find-links "$partial" "${target[@]}" \
        "$sdk" loguru==0.7.3 opencv-python-headless==4.10.0.84 \
        || die "$sdk does not install for Python $version from the wheelhouse alone: a pin is missing in $pins"
done

rm -rf "$dest" "$partial/.check" "$partial/.src"
chmod -R a+rX "$partial"
mv "$partial" "$dest"
echo "build-sdk-wheelhouse: $dest: $(ls "$dest" | wc -l) wheels, $(du -sh "$dest" | cut -f1)"
