#!/bin/sh
# Start nginx in front of the segserve replicas and keep its upstream list
# current. nginx resolves `server segserve:8000` once, when it (re)loads its
# configuration; a replica that restarts or is added by scaling comes back
# with a new address. This loop polls the name and reloads nginx (gracefully:
# streams in progress finish on the old workers) whenever the address set
# changes, so no stale address lingers and new replicas get traffic.
set -eu

name=${SEGSERVE_UPSTREAM_NAME:-segserve}
interval=${NGINX_RESOLVE_INTERVAL:-5}

addresses() {
    getent ahostsv4 "$name" 2>/dev/null | awk '{print $1}' | sort -u | tr '\n' ' '
}

# nginx refuses to start while the name does not resolve; give the replicas'
# containers up to a minute to appear.
tries=0
while [ -z "$(addresses)" ] && [ "$tries" -lt 120 ]; do
    sleep 0.5
    tries=$((tries + 1))
done

(
    # Empty at first: the first poll reloads once, which settles any replica
    # that registered between nginx's own lookup and this loop's.
    last=
    while sleep "$interval"; do
        now=$(addresses)
        if [ -n "$now" ] && [ "$now" != "$last" ]; then
            echo "nginx-run: $name is now $now- reloading" >&2
            nginx -s reload && last=$now
        fi
    done
) &

exec nginx -g 'daemon off;'
