"""Start real ``python -m runtime`` processes for integration, chaos and interop tests.

A process is ready when it prints its ``ready`` line; the harness parses the addresses from it.
Nothing here sleeps for synchronisation: it waits on the process's output with a deadline.
"""

from __future__ import annotations

import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO

REPO = pathlib.Path(__file__).resolve().parent.parent


class RuntimeProcess:
    """One ``python -m runtime`` subprocess with its stdout/stderr collected line by line."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: pathlib.Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        """``preexec_fn`` runs in the child before ``exec`` (e.g. to lower a resource limit)."""
        self.args = [sys.executable, "-m", "runtime", *args]
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            self.args,
            cwd=cwd or REPO,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            preexec_fn=preexec_fn,
        )
        self.stdout_lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        self.addresses: dict[str, str] = {}
        self.ready_line: str | None = None
        threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True).start()

    def _pump(self, stream: TextIO, is_stdout: bool) -> None:
        for line in stream:
            if is_stdout:
                self.stdout_lines.put(line.rstrip("\n"))
            else:
                self.stderr.append(line.rstrip("\n"))
        if is_stdout:
            self.stdout_lines.put(None)

    def wait_ready(self, timeout: float = 20.0) -> dict[str, str]:
        """Wait for the ready line; return {name: address}. Raises with stderr on failure."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no ready line in {timeout}s; stderr:\n{self.stderr_text()}")
            try:
                line = self.stdout_lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait(timeout=5)
                raise RuntimeError(f"exited {code} before ready; stderr:\n{self.stderr_text()}")
            if line.startswith("ready"):
                self.ready_line = line
                for token in line.split()[1:]:
                    key, _, value = token.partition("=")
                    self.addresses[key] = value
                return self.addresses

    def stderr_text(self) -> str:
        return "\n".join(self.stderr[-200:])

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> RuntimeProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.kill()
