#!/bin/sh
# Serve the VOC folder mounted at /data (the folder itself, or one holding
# VOC2012/ or VOCdevkit/VOC2012/ as `segserve download` leaves it); with
# nothing mounted there, segserve serves its built-in demo dataset.
# An explicit SEGSERVE_DATA_ROOT always wins.
set -eu

if [ -z "${SEGSERVE_DATA_ROOT:-}" ]; then
    for root in /data /data/VOC2012 /data/VOCdevkit/VOC2012; do
        if [ -d "$root/ImageSets/Segmentation" ]; then
            SEGSERVE_DATA_ROOT=$root
            export SEGSERVE_DATA_ROOT
            break
        fi
    done
fi

exec "$@"
