#!/bin/sh
# Installs Debian's nginx-light for the benchmark's nginx phase when no nginx is
# there, as root with apt-get; anywhere else it only says why it did not, and the
# phase reports nginx as not measured. Never fails the benchmark.
#
# The package's own nginx service is not left running: a policy-rc.d refusing
# service starts is in place during the install (unless one already exists), and
# a system nginx that was started anyway is stopped again. The benchmark runs
# nginx itself, on loopback ports of its own.
set -u

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench: nginx is not installed and there is no apt-get: the nginx phase is skipped"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "bench: nginx is not installed (apt-get needs root): the nginx phase is skipped"
    exit 0
fi

policy=/usr/sbin/policy-rc.d
added=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added=1
fi
log=$(mktemp)
cleanup() {
    if [ -n "$added" ]; then rm -f "$policy"; fi
    rm -f "$log"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

export DEBIAN_FRONTEND=noninteractive
install_nginx() {
    apt-get install -y -q -o Dpkg::Use-Pty=0 nginx-light >>"$log" 2>&1
}
echo "bench: installing nginx-light (apt-get) for the nginx phase"
if ! install_nginx; then
    # The package lists may be missing or stale: refresh them, then try once more.
    apt-get update -q >>"$log" 2>&1
    if ! install_nginx; then
        tail -n 5 "$log"
        echo "bench: nginx-light could not be installed: the nginx phase is skipped"
        exit 0
    fi
fi

# A system nginx the install started anyway (no policy-rc.d honoured): stop it.
if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    /usr/sbin/nginx -s stop >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
fi
exit 0
