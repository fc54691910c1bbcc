#!/bin/sh
# Installs Debian's chromium for the browser tests when /usr/bin/chromium is
# missing, as root with apt-get (CI runs on a fresh machine). Where it cannot
# (no apt-get, not root) it says why and exits 0: the browser tests then skip,
# naming the missing browser. Playwright's own browser download is never used.
set -u

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser: $CHROMIUM is missing and there is no apt-get: the browser tests skip"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "browser: $CHROMIUM is missing (apt-get needs root): the browser tests skip"
    exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
trap 'exit 1' INT TERM
export DEBIAN_FRONTEND=noninteractive
install_chromium() {
    # Another apt-get may hold the lock (a parallel install): wait for it.
    apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 \
        -o DPkg::Lock::Timeout=600 chromium fonts-dejavu-core >>"$log" 2>&1
}
echo "browser: installing Debian's chromium (apt-get) for the browser tests"
if ! install_chromium; then
    # The package lists may be missing or stale: refresh them, then try once more.
    apt-get update -q -o DPkg::Lock::Timeout=600 >>"$log" 2>&1
    if ! install_chromium; then
        tail -n 5 "$log"
        echo "browser: chromium could not be installed: the browser tests skip"
        exit 0
    fi
fi
exit 0
