"""Through nginx: segserve replicas behind the deployed ``deploy/nginx.conf``.

Two ``segserve serve`` replicas (1 uvicorn worker each) share the run's warm
decoded cache. Two nginx processes run a configuration rendered from
``deploy/nginx.conf`` itself, so that the tuning measured is the deployed one:
one lists the first replica, the other both. Only what cannot apply here is
changed: the upstream's server lines (one per replica, on loopback ports), the
listen address, the pid, log and temp paths (into the run's work folder), and
``access_log off``. The client is also given both replicas' URLs directly, for
comparison. Every configuration runs once per round (whole epochs for at
least the preset's ``min_seconds``), the rounds interleaving them as in
:mod:`bench.throughput`.

Without an nginx binary the phase records why it measured nothing; it never
fails the run for that.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from bench.netns import LOOPBACK, Link
from bench.presets import Preset
from bench.protocol import Probe, stop_process
from bench.results import NginxRun
from bench.server import Server, free_port, is_ready
from bench.throughput import READY_TIMEOUT, Config, delivery_config, run_rounds
from bench.workspace import BenchError, Workspace, say

CONFIG = Path("deploy/nginx.conf")
NOT_INSTALLED = "not measured: nginx is not installed"
NGINX_READY_TIMEOUT = 30.0
REPLICAS = 2
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def find_nginx() -> str | None:
    """The nginx binary on ``PATH``, else ``/usr/sbin/nginx``; None when there is none."""
    found = shutil.which("nginx")
    if found:
        return found
    fallback = "/usr/sbin/nginx"
    return fallback if os.access(fallback, os.X_OK) else None


def nginx_build(binary: str) -> str:
    """What ``nginx -V`` says (version and configure arguments; nginx writes it to stderr)."""
    done = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False)
    return done.stderr + done.stdout


def _substitute(text: str, pattern: str, replacement: str, what: str) -> str:
    """``text`` with the one line matching ``pattern`` replaced (keeping its indentation)."""
    regex = re.compile(rf"^([ \t]*){pattern}[ \t]*$", re.MULTILINE)
    if len(regex.findall(text)) != 1:
        raise BenchError(f"{CONFIG}: expected exactly one {what} line to replace")
    return regex.sub(lambda m: "\n".join(m[1] + line for line in replacement.split("\n")), text)


def render_config(
    template: str, upstreams: list[str], listen: str, prefix: Path, build: str = ""
) -> str:
    """The deployed configuration ``template``, run from ``prefix`` on ``listen``
    (``host:port``), with ``upstreams`` (``host:port``) as its replicas and no access log."""
    servers = "\n".join(f"server {address} max_fails=0;" for address in upstreams)
    text = _substitute(template, r"server\s+segserve:8000\s+max_fails=0;", servers, "upstream")
    text = _substitute(text, r"listen\s+80;", f"listen {listen};", "listen")
    text = _substitute(text, r"pid\s+\S+;", f"pid {prefix / 'nginx.pid'};", "pid")
    text = _substitute(
        text, r"error_log\s+\S+(\s+\w+)?;", f"error_log {prefix / 'error.log'} warn;", "error_log"
    )
    text = _substitute(text, r"access_log\s+\S+;", "access_log off;", "access_log")
    return _substitute(
        text, r"http\s*\{", "http {\n    " + "\n    ".join(temp_paths(prefix, build)), "http {"
    )


def temp_paths(prefix: Path, build: str) -> list[str]:
    """The temp folder directives of the modules compiled in (their defaults lie outside
    the prefix)."""
    return [
        f"{name}_temp_path {prefix / 'temp' / name};"
        for name in _TEMP_PATHS
        if name == "client_body" or f"--without-http_{name}_module" not in build
    ]


def static_config(folder: Path, listen: str, prefix: Path, build: str) -> str:
    """nginx serving the files of ``folder`` on ``listen``, as a static file server is set
    up for WebDataset shards: sendfile, keep-alive, no access log, ``/readyz`` for the poll."""
    temps = "\n    ".join(temp_paths(prefix, build))
    return f"""worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
    {temps}
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75s;
    types {{ application/x-tar tar; }}
    server {{
        listen {listen};
        root {folder.resolve()};
        location = /readyz {{ return 200 "ok"; }}
    }}
}}
"""


Render = Callable[[str, Path, str], str]
"""Gives an nginx configuration for (listen address ``host:port``, prefix, ``nginx -V``)."""


class Nginx:
    """``nginx -g 'daemon off;'`` in the foreground on the configuration ``render`` gives,
    written into ``prefix``; ``url`` is where it listens (where ``link`` says)."""

    def __init__(
        self, binary: str, render: Render, prefix: Path, log: Path, link: Link = LOOPBACK
    ) -> None:
        prefix = prefix.resolve()  # nginx takes relative paths as relative to the prefix
        shutil.rmtree(prefix, ignore_errors=True)
        for name in _TEMP_PATHS:
            (prefix / "temp" / name).mkdir(parents=True)
        self.port = free_port()
        self.host = link.host
        self.url = f"http://{self.host}:{self.port}"
        self.log = log
        self.config = prefix / "nginx.conf"
        build = nginx_build(binary)
        self.config.write_text(render(f"{self.host}:{self.port}", prefix, build))
        command = [binary, "-p", f"{prefix}/", "-c", str(self.config)]
        command += ["-e", str(prefix / "error.log"), "-g", "daemon off;"]
        self._log_file = log.open("ab")
        checked = subprocess.run(
            link.command([*command, "-t"]),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            check=False,
        )
        if checked.returncode != 0:
            self._log_file.close()
            raise BenchError(f"nginx -t rejected {self.config}; see {log}")
        self._started = time.perf_counter()
        self.process = subprocess.Popen(
            link.command(command),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float) -> None:
        """Poll ``/readyz`` through nginx until a replica answers 200."""
        deadline = self._started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"nginx exited with {self.process.returncode}; see {self.log}")
            if is_ready(self.port, self.host):
                return
            time.sleep(0.05)
        raise BenchError(f"no /readyz 200 through nginx after {timeout:.0f} s; see {self.log}")

    def stop(self) -> None:
        """Terminate nginx (fast shutdown) and its workers, then close the log."""
        stop_process(self.process, grace=10.0)
        self._log_file.close()

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _version(build: str) -> str:
    found = re.search(r"nginx version: nginx/(\S+)", build)
    return found[1] if found else "unknown"


def measure_nginx(
    space: Workspace, preset: Preset, root: Path, cache: Path, client: Probe
) -> NginxRun:
    """Epochs through nginx (1 and 2 replicas) and straight to both replicas, interleaved."""
    binary = find_nginx()
    if binary is None:
        say(f"nginx: {NOT_INSTALLED}")
        return NginxRun(status=NOT_INSTALLED, config=str(CONFIG))
    template = (Path(__file__).resolve().parent.parent / CONFIG).read_text(encoding="utf-8")
    started = time.perf_counter()
    with ExitStack() as stack:
        say(f"nginx: {REPLICAS} replicas, 1 uvicorn worker each")
        replicas = [
            stack.enter_context(Server(root, cache, 1, space.log(f"replica-{i + 1}")))
            for i in range(REPLICAS)
        ]
        for replica in replicas:
            replica.wait_ready(READY_TIMEOUT)
        proxies = []
        for count in (1, REPLICAS):
            upstreams = [f"127.0.0.1:{r.port}" for r in replicas[:count]]
            prefix = space.root / "nginx" / f"{count}r"
            log = space.log(f"nginx-{count}r")
            render = partial(render_config, template, upstreams)
            proxies.append(stack.enter_context(Nginx(binary, render, prefix, log)))
        for proxy in proxies:
            proxy.wait_ready(NGINX_READY_TIMEOUT)
        direct = [r.url for r in replicas]
        configs: list[Config] = []
        for mode in preset.nginx_modes:
            places = [
                ("nginx-1r", [proxies[0].url]),
                (f"nginx-{REPLICAS}r", [proxies[1].url]),
                (f"direct-{REPLICAS}r", direct),
            ]
            configs += [
                delivery_config(client, urls, mode, preset, kind=kind, workers=1)
                for kind, urls in places
            ]
        run_rounds(configs, preset.rounds, preset.min_seconds)
        client.call("close")
    say(f"nginx: phase done in {time.perf_counter() - started:.0f} s")
    return NginxRun(
        status="measured",
        version=_version(nginx_build(binary)),
        config=str(CONFIG),
        series=[config.series for config in configs],
    )
