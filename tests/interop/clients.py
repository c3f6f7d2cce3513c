"""Run the real clients' scripts as subprocesses and wait on their JSON output lines.

Every script prints one JSON object per stdout line (``{"event": "sent", ...}``). A
``ClientProcess`` collects them in a thread; tests wait on predicates over the collected events
with a deadline. Nothing sleeps for synchronisation.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

from tests.interop.install import Client

Event = dict[str, Any]


class ClientProcess:
    """One client script run under its client's interpreter, with its own HOME."""

    def __init__(
        self,
        client: Client,
        script: str,
        args: Sequence[str],
        home: pathlib.Path,
        label: str,
        cond: threading.Condition | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.label = label
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.argv = client.command(script, *args)
        self.proc = subprocess.Popen(
            self.argv,
            cwd=home,
            env={**client.env(home), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        # Processes of one test may share a condition, so a test can wait on any of them.
        self._cond = cond or threading.Condition()
        self._events: list[Event] = []
        self._stdout_closed = False
        self.noise: list[str] = []  # stdout lines that are not JSON (a client printing itself)
        self.stderr: list[str] = []
        threading.Thread(target=self._pump_stdout, args=(self.proc.stdout,), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(self.proc.stderr,), daemon=True).start()

    # -- collection ----------------------------------------------------------------------------

    def _pump_stdout(self, stream: TextIO) -> None:
        # Also kept in HOME/stdout.jsonl for a look after the test (pytest keeps tmp_path).
        record = (self.home / "stdout.jsonl").open("a", buffering=1)
        for line in stream:
            record.write(line)
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            with self._cond:
                if isinstance(event, dict) and "event" in event:
                    event["_t"] = time.monotonic()
                    self._events.append(event)
                else:
                    self.noise.append(line)
                self._cond.notify_all()
        record.close()
        with self._cond:
            self._stdout_closed = True
            self._cond.notify_all()

    def _pump_stderr(self, stream: TextIO) -> None:
        record = (self.home / "stderr.log").open("a", buffering=1)
        for line in stream:
            record.write(line)
            with self._cond:
                self.stderr.append(line.rstrip("\n"))
        record.close()

    # -- queries -------------------------------------------------------------------------------

    def events(self, kind: str | None = None) -> list[Event]:
        with self._cond:
            return [e for e in self._events if kind is None or e["event"] == kind]

    def wait_until(self, predicate: Callable[[list[Event]], Any], timeout: float, what: str) -> Any:
        """Wait until ``predicate(events)`` is truthy; return its value. Fails with diagnostics."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(list(self._events))
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if self._stdout_closed:
                    # The process is gone: nothing more will arrive.
                    break
                self._cond.wait(min(remaining, 1.0))
        raise AssertionError(
            f"{self.label}: timed out after {timeout:.0f}s waiting for {what}\n"
            + self.diagnostics()
        )

    def wait_event(self, kind: str, timeout: float, **match: Any) -> Event:
        def find(events: list[Event]) -> Event | None:
            for event in events:
                if event["event"] == kind and all(event.get(k) == v for k, v in match.items()):
                    return event
            return None

        return self.wait_until(find, timeout, f"a {kind!r} line {match or ''}")

    def wait_exit(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.label}: did not exit within {timeout:.0f}s\n" + self.diagnostics()
            ) from None
        # Let the pump threads drain what was printed before the exit.
        with self._cond:
            self._cond.wait_for(lambda: self._stdout_closed, timeout=5)
        return code

    # -- control -------------------------------------------------------------------------------

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM (the scripts shut the client down cleanly), then kill after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def diagnostics(self, lines: int = 60) -> str:
        """What to show when an assertion fails: exit code, stderr, odd stdout, client logs."""
        with self._cond:
            stderr = self.stderr[-lines:]
            noise = self.noise[-lines:]
            events = self._events[-lines:]
        parts = [f"--- {self.label}: {' '.join(self.argv)}", f"exit code: {self.proc.poll()}"]
        parts.append("last events:\n" + "\n".join(_short(e) for e in events))
        if noise:
            parts.append("non-JSON stdout:\n" + "\n".join(noise))
        if stderr:
            parts.append("stderr:\n" + "\n".join(stderr))
        for log in sorted(self.home.glob("logs/**/*.log*"))[-2:]:
            try:
                tail = log.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"{log}:\n" + "\n".join(tail))
        return "\n".join(parts)

    def __enter__(self) -> ClientProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(AssertionError):
                self.terminate(timeout=15)
        self.kill()


def _short(event: Event) -> str:
    shown = {k: v for k, v in event.items() if k not in ("_t", "properties", "route")}
    return json.dumps(shown)[:400]


def run_to_end(process: ClientProcess, timeout: float) -> tuple[int, list[Event]]:
    """Wait for a script that ends by itself (producer, admin); return its code and events."""
    with process:
        code = process.wait_exit(timeout)
        return code, process.events()


def all_of(events: Iterable[Event], kind: str) -> list[Event]:
    return [e for e in events if e["event"] == kind]
