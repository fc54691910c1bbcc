#!/usr/bin/env bash
# Make sure the base images the Dockerfile and docker-compose.yml name exist
# in podman's image store. Each one is pulled; only when the pull fails (no
# registry reachable) is a local stand-in built from Debian bookworm, whose
# python3 is 3.11:
#   python:3.11-slim  debootstrap minbase + python3, python3-venv, python3-pip
#   nginx:<tag>       that image + Debian's nginx-light
# Images already present are kept, so only the first run pays for this.
#
# Usage: tools/container/base-images.sh [PYTHON_IMAGE [NGINX_IMAGE]]
set -euo pipefail

PYTHON_IMAGE=${1:-docker.io/library/python:3.11-slim}
NGINX_IMAGE=${2:-docker.io/library/nginx:1.27}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Inherited by every image built on a stand-in, which is worth knowing.
STANDIN_LABEL="org.segserve.base-stand-in=built from Debian $SUITE, not pulled"

log() { printf '[base-images] %s\n' "$*" >&2; }

ROOTFS=
trap 'if [ -n "$ROOTFS" ]; then rm -rf "$ROOTFS" "$ROOTFS.log"; fi' EXIT

pull() {
    timeout 120 podman pull --quiet "$1" >/dev/null 2>&1
}

python_standin() {
    ROOTFS=$(mktemp -d /var/tmp/segserve-rootfs.XXXXXX)
    local rootfs=$ROOTFS
    log "debootstrap $SUITE into $rootfs"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 \
        || { tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; return 1; }
    rm -f "$rootfs.log"
    # The layout of the official image: the interpreter on PATH at /usr/local/bin,
    # pip usable without a venv (no PEP 668 marker).
    for name in python python3 pip pip3; do
        target=/usr/bin/$name
        [ "$name" = python ] && target=/usr/bin/python3
        [ "$name" = pip ] && target=/usr/bin/pip3
        ln -sf "$target" "$rootfs/usr/local/bin/$name"
    done
    rm -f "$rootfs"/usr/lib/python3.*/EXTERNALLY-MANAGED
    # Builds reach the package registry by the same route as this host, so they
    # must trust the same locally added certificate authorities.
    if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
        cp -a /usr/local/share/ca-certificates/. "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    log "import $PYTHON_IMAGE"
    tar -C "$rootfs" -c . | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change "LABEL $STANDIN_LABEL" \
        --change 'CMD ["python3"]' \
        - "$PYTHON_IMAGE" >/dev/null
}

nginx_standin() {
    log "build $NGINX_IMAGE from $PYTHON_IMAGE + nginx-light"
    local context log
    context=$(mktemp -d)
    log=$context.log
    podman build --quiet --format docker --tag "$NGINX_IMAGE" \
        --build-arg "BASE=$PYTHON_IMAGE" --label "$STANDIN_LABEL" \
        -f - "$context" >"$log" 2>&1 <<'CONTAINERFILE' || { tail -20 "$log" >&2; rm -rf "$context" "$log"; return 1; }
ARG BASE
FROM $BASE
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
CONTAINERFILE
    rm -rf "$context" "$log"
}

ensure() {  # ensure IMAGE BUILDER
    if podman image exists "$1"; then
        log "$1: present"
    elif pull "$1"; then
        log "$1: pulled"
    else
        log "$1: pull failed, building a local stand-in"
        "$2"
    fi
}

ensure "$PYTHON_IMAGE" python_standin
ensure "$NGINX_IMAGE" nginx_standin
