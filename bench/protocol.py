"""Long-lived measuring processes driven one JSON line at a time.

The parent starts ``python -m <module>``; the child answers a first line (its
``hello``: what loading took) and then one line per command. The child's
real standard output is kept for these lines; anything else it prints (the
chapter prints "read N examples") goes to its standard error, the log file.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

Message = dict[str, Any]
Handler = Callable[[Message], Message]


class ProbeError(RuntimeError):
    """A measuring process failed, died or did not answer in time."""


class Probe:
    """A child process that runs measurements on command (see the module docstring)."""

    def __init__(
        self, module: str, args: Sequence[str], log: Path, *, timeout: float = 900.0
    ) -> None:
        self.module = module
        self.log = log
        self._timeout = timeout
        self._log_file = log.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            start_new_session=True,
        )
        self.pid = self._process.pid
        try:
            self.hello = self._receive()
        except ProbeError:
            self.close()
            raise

    def call(self, op: str, **fields: Any) -> Message:
        """Send command ``op`` with ``fields``; the child's answer."""
        stdin = self._process.stdin
        if stdin is None:
            raise ProbeError(f"{self.module}: no stdin")
        try:
            stdin.write(json.dumps({"op": op, **fields}) + "\n")
            stdin.flush()
        except BrokenPipeError:
            raise ProbeError(self._failure("exited")) from None
        return self._receive()

    def _receive(self) -> Message:
        stdout = self._process.stdout
        if stdout is None:
            raise ProbeError(f"{self.module}: no stdout")
        ready, _, _ = select.select([stdout], [], [], self._timeout)
        line = stdout.readline() if ready else ""
        if not line:
            raise ProbeError(self._failure("gave no answer" if not ready else "exited"))
        message: Message = json.loads(line)
        if "error" in message:
            raise ProbeError(f"{self.module}: {message['error']} (log: {self.log})")
        return message

    def _failure(self, what: str) -> str:
        return f"{self.module} {what} (exit code {self._process.poll()}); see {self.log}"

    def close(self) -> None:
        """Ask the child to quit; terminate, then kill it if it does not."""
        try:
            if self._process.stdin is not None:
                self._process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self._process.stdin.close()
        except BrokenPipeError:
            pass
        stop_process(self._process, grace=10.0)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log_file.close()

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_process(process: subprocess.Popen[Any], *, grace: float = 10.0) -> None:
    """Terminate ``process`` and wait; kill it (and its own process group) after ``grace``."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)
    # Children of a process started in its own session share its group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def serve(hello: Callable[[], Message], handlers: Mapping[str, Handler]) -> None:
    """The child's side: answer ``hello()``, then each command line, until ``quit``."""
    answers = _private_stdout()
    _answer(answers, _guarded(lambda _: hello(), {}))
    for line in sys.stdin:
        command: Message = json.loads(line)
        op = command.pop("op")
        if op == "quit":
            return
        handler = handlers.get(op)
        if handler is None:
            _answer(answers, {"error": f"unknown command {op!r}"})
            continue
        _answer(answers, _guarded(handler, command))


def _private_stdout() -> IO[str]:
    """A text stream on the original stdout; fd 1 (and ``sys.stdout``) now write to stderr."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return answers


def _guarded(handler: Handler, command: Message) -> Message:
    try:
        return handler(command)
    except Exception as error:  # reported to the parent, which stops the run
        import traceback

        traceback.print_exc()
        return {"error": f"{type(error).__name__}: {error}"}


def _answer(stream: IO[str], message: Message) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def stamps_since(start: float, stamps: Sequence[float]) -> list[float]:
    """Times of ``stamps`` in seconds after ``start``."""
    return [round(stamp - start, 6) for stamp in stamps]


def now() -> float:
    """The benchmark's clock."""
    return time.perf_counter()
