#!/usr/bin/env bash
# Build the SDK wheelhouse (live_code/legacy.py): the executor SDKs ymir-exc 1.x and 2.x, loguru,
# opencv-python-headless and every dependency, as wheels for one Python, checked to install with no
# index. The images run it with their framework interpreter and set LIVE_CODE_SDK_WHEELHOUSE to
# DEST; tests/run.sh runs it once per machine with the 2.x source from ../shared/sources.
#
#   build-sdk-wheelhouse.sh DEST [SDK2_SOURCE]
#
# DEST         the folder to create (replaced only once the new one is complete and checked)
# SDK2_SOURCE  where the 2.x executor SDK's source comes from: a pip requirement of it (default: the
#              GitHub repository at the pinned commit) or a local checkout of that commit
# PYTHON       the interpreter the wheels are for (default python3; the images: the framework's)
# PIP_PYTHON   the interpreter whose pip does the work (default PYTHON; the images: the harness's, as
#              a framework interpreter need not carry pip)
# Pip settings (PIP_INDEX_URL, PIP_FIND_LINKS, ...) pass through, for mirrors.
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
echo "build-sdk-wheelhouse: the 2.x executor SDK from ${sdk2}"
if [ -d "$sdk2" ]; then
    actual=$(git -C "$sdk2" rev-parse HEAD 2>/dev/null || true)
    [ "$actual" = "$sdk2_commit" ] || die "$sdk2 is at commit ${actual:-?}, not the pinned $sdk2_commit"
fi
pip wheel -q --no-deps -w "$partial" "$sdk2"
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

rm -rf "$dest" "$partial/.check"
mv "$partial" "$dest"
echo "build-sdk-wheelhouse: $dest: $(ls "$dest" | wc -l) wheels, $(du -sh "$dest" | cut -f1)"
