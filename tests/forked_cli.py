"""Run ``python -m runtime <args>`` commands (``admin ...`` mostly) without paying the
interpreter start and the imports each time.

A ``python -m runtime admin ...`` process spends ~0.4 s of its ~0.45 s starting Python,
monkey-patching with gevent and importing ``runtime.cli`` / ``runtime.admin`` / ``actors.client``;
the integration tests run about seventy of them. A zygote process does that once: it patches
and imports as ``runtime/__main__.py`` does, then forks one child per command. The child is
still a process of its own with ``sys.argv`` as ``python -m runtime`` sets it, stdin on
/dev/null, stdout and stderr in files, and leaves as ``python -m runtime`` does
(``sys.exit(main())``: the same exit code, tracebacks and flushing), so the tests see the same
``returncode``, ``stdout`` and ``stderr``. Where ``os.fork`` is missing it falls back to
``subprocess.run``.

    run(["admin", "topicList", "-n", namesrv], timeout=60) -> subprocess.CompletedProcess[str]
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

from tests.harness import REPO

# The zygote: patch first (as runtime/__main__.py), import what every admin command needs,
# then serve one JSON request per stdin line, answering {"pid"} at the fork and {"status"}
# once the child is reaped. The child never returns to the loop: it exits like the real one.
_ZYGOTE = r"""
from gevent import monkey

monkey.patch_all()

import json, os, sys

import runtime.__main__ as entry
import runtime.admin  # noqa: F401
import runtime.cli  # noqa: F401

MAIN = os.path.join(os.path.dirname(os.path.abspath(entry.__file__)), "__main__.py")

def child(req):
    for fd, path, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, req["out"], os.O_WRONLY | os.O_TRUNC),
        (2, req["err"], os.O_WRONLY | os.O_TRUNC),
    ):
        new = os.open(path, flags)
        os.dup2(new, fd)
        os.close(new)
    sys.argv = [MAIN, *req["argv"]]
    sys.exit(entry.main(req["argv"]))

reply = sys.stdout
for line in sys.stdin:
    req = json.loads(line)
    reply.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        child(req)
    reply.write(json.dumps({"pid": pid}) + "\n")
    reply.flush()
    _, status = os.waitpid(pid, 0)
    reply.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}) + "\n")
    reply.flush()
"""


class _Zygote:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.buffer = ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _line(self, deadline: float) -> dict[str, int] | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while "\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096).decode()
            if not chunk:
                raise RuntimeError(f"the CLI zygote exited ({self.proc.wait()})")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition("\n")
        return json.loads(line)

    def run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        assert self.proc.stdin is not None
        with tempfile.TemporaryDirectory(prefix="forked-cli-") as tmp:
            out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            for path in (out, err):
                open(path, "w").close()
            self.proc.stdin.write(json.dumps({"argv": args, "out": out, "err": err}) + "\n")
            self.proc.stdin.flush()
            deadline = time.monotonic() + timeout
            started = self._line(deadline + 30)
            assert started is not None and "pid" in started, started
            done = self._line(deadline)
            if done is None:
                os.kill(started["pid"], signal.SIGKILL)
                self._line(time.monotonic() + 30)
                raise subprocess.TimeoutExpired(_command(args), timeout)
            with open(out) as o, open(err) as e:
                stdout, stderr = o.read(), e.read()
        return subprocess.CompletedProcess(_command(args), done["status"], stdout, stderr)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_lock = threading.Lock()
_zygote: _Zygote | None = None


def _command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "runtime", *args]


def _close() -> None:
    if _zygote is not None:
        _zygote.close()


def run(args: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([python, -m, runtime, *args], cwd=REPO, capture_output=True,
    text=True, timeout=timeout)``, by a fork of a process that already imported runtime."""
    global _zygote
    if not hasattr(os, "fork"):
        return subprocess.run(
            _command(args), cwd=REPO, capture_output=True, text=True, timeout=timeout
        )
    with _lock:
        if _zygote is None or not _zygote.alive():
            if _zygote is None:
                atexit.register(_close)
            _zygote = _Zygote()
        return _zygote.run(list(args), timeout)
