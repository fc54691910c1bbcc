#!/usr/bin/env bash
# The Docker API for docker-compose, served by podman on a private socket.
#
#   tools/container/podman-service.sh start DIR   # socket DIR/podman.sock, pid in DIR/podman.pid
#   tools/container/podman-service.sh stop DIR
#
# After start: export DOCKER_HOST=unix://DIR/podman.sock
set -euo pipefail

action=${1:?start or stop}
dir=${2:?state directory}
sock=$dir/podman.sock
pidfile=$dir/podman.pid

case $action in
start)
    mkdir -p "$dir"
    podman system service --time=0 "unix://$sock" >"$dir/podman-service.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
        if curl -fsS --max-time 2 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
            exit 0
        fi
        kill -0 "$(cat "$pidfile")" 2>/dev/null || break
        sleep 0.1
    done
    echo "podman system service did not answer on $sock:" >&2
    tail -20 "$dir/podman-service.log" >&2
    exit 1
    ;;
stop)
    if [ -f "$pidfile" ]; then
        pid=$(cat "$pidfile")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile" "$sock"
    fi
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
