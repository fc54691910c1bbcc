#!/usr/bin/env bash
# Install the container tooling the container tests use (Debian/Ubuntu hosts).
# Installs only what is missing, so a prepared machine pays nothing.
set -euo pipefail

packages=(
    podman buildah runc catatonit docker-compose debootstrap curl
    golang-github-containernetworking-plugin-dnsname
)
missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "[setup-host] apt-get install ${missing[*]}" >&2
if ! { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
    tail -30 "$log" >&2
    exit 1
fi
