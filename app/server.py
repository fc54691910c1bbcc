"""Running the app: one process, or N workers forked from a parent that paid the imports once.

Start-up is import-bound once the modules are compiled (``make venv`` and the
image compile them; with ``PYTHONDONTWRITEBYTECODE`` nothing else would):
FastAPI, pydantic, pydantic-settings, numpy and building the routes are most
of the 0.4-0.5 s of a warm start on the development machine, opening the cache
0.01-0.07 s. uvicorn's own ``workers=N`` starts each worker as a fresh
interpreter that imports all of it again, so N workers took N times as long to
come up. Here the parent imports the app, builds or checks the decoded cache,
binds the listening socket, and then forks: each worker inherits the imported
modules (copy-on-write) and the socket, creates its app and serves; the kernel
hands each new connection to one of the workers accepting on it.

The parent supervises: SIGTERM or SIGINT is passed on to every worker, which
shuts down as uvicorn does on that signal (the app's drain included), and the
parent exits when they have; a worker that dies otherwise is replaced, and
workers get SIGTERM from the kernel when the parent itself is killed.

The CLI imports this module with garbage collection paused, and freezes what
the imports created (``gc.freeze``): those objects live as long as the
process, so collections would only walk them again and again, and forked
workers would write to -- and so copy -- their pages doing it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Final

import uvicorn
from prometheus_client import multiprocess

from app.drain import SHUTDOWN_GRACE
from app.logs import log_config
from app.main import create_app
from app.metrics import MULTIPROCESS_ENV
from app.state import load_dataset
from service.config import Settings

logger = logging.getLogger("segserve.server")

# Trainers pause between epochs (validation, checkpoints); keep their
# connections open as long as nginx keeps its own (deploy/nginx.conf).
KEEP_ALIVE_SECONDS: Final = 75
# A worker that dies sooner than this after its start is replaced only after
# this long: a worker that cannot start must not become a fork loop.
RESTART_PAUSE_SECONDS: Final = 1.0
_FORWARDED: Final = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG: Final = 1  # linux/prctl.h


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for ``settings``: the app factory, address, logging, shutdown."""
    return uvicorn.Config(
        create_app,
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # The app drains on SIGTERM first (app.drain); what is left to uvicorn's
        # own shutdown is sending the last bytes, within the drain period.
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE),
        ws="none",  # no WebSocket route: spares importing a WebSocket library
    )


def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT: in this process, or in ``settings.workers`` forked workers."""
    config = uvicorn_config(settings)
    if settings.workers == 1:
        uvicorn.Server(config).run()
        return
    if not os.environ.get(MULTIPROCESS_ENV):
        raise RuntimeError(f"{MULTIPROCESS_ENV} must be set before the app is imported")
    load_dataset(settings)  # build or check the cache once, here, not once per worker
    sock = config.bind_socket()
    Supervisor(lambda: _worker(config, sock), settings.workers).run()
    sock.close()


def _worker(config: uvicorn.Config, sock: socket.socket) -> None:
    """The body of a forked worker: its own app and event loop on the inherited socket."""
    uvicorn.Server(config).run(sockets=[sock])


def _die_with(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when ``parent`` dies (Linux).

    A parent that is killed outright (SIGKILL, the OOM killer) cannot pass a
    signal on; without this its workers would go on serving, orphaned.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if os.getppid() != parent:  # it died before prctl took effect
        raise SystemExit(0)


class Supervisor:
    """Forks ``count`` workers running ``body``, passes signals on, replaces dead workers."""

    def __init__(self, body: Callable[[], None], count: int) -> None:
        self.body = body
        self.count = count
        self.workers: dict[int, float] = {}  # pid -> when it started
        self.stopping = False

    def run(self) -> None:
        """Start the workers and wait for them; returns when all have exited after a signal."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _FORWARDED}
        try:
            for _ in range(self.count):
                self._fork()
            while self.workers:
                self._reap(os.wait())
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _fork(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            code = 0
            try:
                for sig in _FORWARDED:
                    signal.signal(sig, signal.SIG_DFL)
                _die_with(parent)
                self.body()
            except BaseException:
                logger.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        self.workers[pid] = time.monotonic()
        logger.info("started worker %d", pid)

    def _reap(self, waited: tuple[int, int]) -> None:
        pid, status = waited
        started = self.workers.pop(pid, None)
        if started is None:
            return
        if os.environ.get(MULTIPROCESS_ENV):
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        if self.stopping:
            return
        logger.warning("worker %d exited (status %d); starting another", pid, status)
        if time.monotonic() - started < RESTART_PAUSE_SECONDS:
            time.sleep(RESTART_PAUSE_SECONDS)
        self._fork()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):  # exited, not yet reaped
                os.kill(pid, signum)
