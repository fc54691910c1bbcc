# segserve in a container.
#
#   docker build -t segserve .
#   docker run --rm -p 8000:8000 segserve                                # demo dataset
#   docker run --rm -p 8000:8000 -v /path/to/VOC2012:/data:ro segserve   # a VOC folder
#
# The builder stage installs the locked dependencies and the project into a
# venv at /opt/venv; the runtime stage copies only that venv onto a fresh
# python:3.11-slim and runs it as an unprivileged user.

FROM python:3.11-slim AS builder
LABEL org.opencontainers.image.title="segserve"

ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_SYSTEM_CERTS=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv

RUN python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /src
# Dependencies first, so that this layer is rebuilt only when the lockfile changes.
# The client is a workspace member: its pyproject is part of the resolution.
COPY pyproject.toml uv.lock ./
COPY client/pyproject.toml client/README.md ./client/
RUN /opt/uv/bin/uv sync --frozen --no-dev --extra server --no-install-workspace \
        --no-editable --no-cache --python python3
COPY README.md ./
COPY service ./service
COPY client ./client
COPY app ./app
RUN /opt/uv/bin/uv sync --frozen --no-dev --extra server --no-editable --no-cache --python python3


FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="segserve" \
      org.opencontainers.image.description="Pascal VOC2012 segmentation batches over HTTP" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SEGSERVE_HOST=0.0.0.0 \
    SEGSERVE_PORT=8000 \
    SEGSERVE_CACHE_DIR=/cache \
    SEGSERVE_DRAIN_SECONDS=25

# The base image's standard library comes without bytecode (its build deletes
# every .pyc), and PYTHONDONTWRITEBYTECODE and the unprivileged user keep Python
# from writing any: each start compiled every standard module the server imports
# again (about 0.6 s of CPU). Compiled once here; the venv is, in the builder.
RUN python3 -m compileall -q -j 0 -x '/(idlelib|tkinter|turtledemo|lib2to3|ensurepip)/' \
        "$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"

RUN groupadd --system --gid 10001 segserve \
 && useradd --system --uid 10001 --gid segserve --no-create-home \
        --home-dir /cache --shell /usr/sbin/nologin segserve \
 && mkdir -p /cache /data \
 && chown segserve:segserve /cache

COPY --from=builder /opt/venv /opt/venv
COPY deploy/entrypoint.sh /usr/local/bin/segserve-entrypoint

USER 10001:10001
WORKDIR /cache
# The decoded cache (and the generated demo dataset): share one volume between
# replicas so that the dataset is decoded once.
VOLUME ["/cache"]
EXPOSE 8000

# /healthz answers while the process lives; /readyz tells when the dataset is served.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SEGSERVE_PORT', '8000'), timeout=4)"]

# On SIGTERM segserve drains: readiness 503, no new work, in-flight work finished,
# streams ended after a whole frame, exit within SEGSERVE_DRAIN_SECONDS. Give the
# container a longer grace period than that (compose stop_grace_period: 30s,
# Kubernetes terminationGracePeriodSeconds: 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh", "/usr/local/bin/segserve-entrypoint"]
CMD ["segserve", "serve"]
