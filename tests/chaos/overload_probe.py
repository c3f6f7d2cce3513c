"""R23's responsiveness probe, as a subprocess: is the broker still serving other clients?

Every ``--interval`` seconds it opens a fresh connection and asks the broker GET_MAX_OFFSET of
one queue, then opens another and sends one small message (SEND_MESSAGE_V2) to a topic of its
own, and prints one JSON line per request: ``{"t": "probe", "what": "max-offset" | "send",
"m": <monotonic at the invoke>, "lat": <seconds>, "ok": <bool>, "code": <response code or
null>, "error": <text or null>, "lag": <s>}``, flushed. ``lag`` is how late this process
woke from its previous pause between probes: its own wait for a CPU, which the latency of
its next requests may include too (the broker, the test process and this one share the
machine). A fresh connection each time: the accept, the session's reader and the request's
greenlet are all measured, not only the request.

A subprocess, not a thread of the test: the test process runs the producers' and the
consumer's client hubs, and a thread there would measure its own waits for the GIL as well as
the broker. It stops when its stdin closes (the parent's ``stop``) or at ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from runtime.remoting.codes import RequestCode, ResponseCode
from tests.chaos import admin
from tests.wire import send_v2_header


def probe_once(
    broker: str, topic: str, probe_topic: str, counter: int, timeout: float, lag: float
) -> None:
    for what in ("max-offset", "send"):
        start = time.monotonic()
        code: int | None = None
        error: str | None = None
        try:
            if what == "max-offset":
                ext = {"topic": topic, "queueId": 0}
                cmd = admin.call(broker, RequestCode.GET_MAX_OFFSET, ext, timeout=timeout)
            else:
                ext = send_v2_header(probe_topic, group="chaos-probe", queue_id=0)
                body = f"probe-{counter}".encode()
                cmd = admin.call(broker, RequestCode.SEND_MESSAGE_V2, ext, body, timeout=timeout)
            code = cmd.code
            ok = code == ResponseCode.SUCCESS
        except admin.AdminError as exc:
            ok = False
            error = str(exc)[:200]
        took = time.monotonic() - start
        line = {"t": "probe", "what": what, "m": start, "lat": took, "ok": ok, "lag": lag}
        line.update(code=code, error=error)
        sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", required=True, help="a topic whose queue 0 to ask about")
    parser.add_argument("--probe-topic", required=True, help="the topic the probe sends to")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def stop_on_eof() -> None:  # the parent closes our stdin to stop us
        sys.stdin.read()
        stop.set()

    threading.Thread(target=stop_on_eof, daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    end = time.monotonic() + args.max_seconds
    counter = 0
    lag = 0.0
    while not stop.is_set() and time.monotonic() < end:
        probe_once(args.broker, args.topic, args.probe_topic, counter, args.timeout, lag)
        counter += 1
        start = time.monotonic()
        stop.wait(args.interval)  # the probing rate, not synchronisation
        lag = max(0.0, time.monotonic() - start - args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
