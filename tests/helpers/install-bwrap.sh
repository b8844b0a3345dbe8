# Sourced by tests/run.sh and bench/run: bubblewrap gives jobs a read-only /in and a writable /out
# without docker (Debian package). Installs it as root where apt-get exists; says what is lost otherwise.
#   LOST=what goes without it (e.g. "tests that need it will be skipped with that reason")
if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing bubblewrap"
        (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
            || echo "warning: could not install bubblewrap; $LOST"
    else
        echo "warning: bubblewrap (bwrap) is not installed; $LOST"
    fi
fi
