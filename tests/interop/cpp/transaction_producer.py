"""C++ client transaction producer for the interop tests (engine 2.1 only).

The binding (``rocketmq/client.py``, the same in both wheels) has no Python API for
transactions, but engine 2.1's ``librocketmq.so`` (``rocketmq-python-cvs==2.1.0.3``) exports the
C API of rocketmq-client-cpp 2.1 (``CProducer.h``)::

    CProducer* CreateTransactionProducer(const char* group, CLocalTransactionCheckerCallback,
                                         void* userData);
    int SendMessageTransaction(CProducer*, CMessage*, CLocalTransactionExecutorCallback,
                               void* userData, CSendResult*);
    typedef CTransactionStatus (*CLocalTransaction...Callback)(CProducer*, CMessage[Ext]*, void*);
    CTransactionStatus: E_COMMIT_TRANSACTION 0, E_ROLLBACK_TRANSACTION 1, E_UNKNOWN_TRANSACTION 2

so this script calls it through ctypes. Engine 1.x (``rocketmq==0.4.4``) lacks these symbols: the
script then prints ``unsupported`` and exits 4.

    .interop/cvs/bin/python tests/interop/cpp/transaction_producer.py --namesrv 127.0.0.1:9876 \
        --topic T --decisions commit,rollback,unknown --prefix tx --expect-checks 1

Message i has tag ``decisions[i]`` (what its local transaction answers), keys
``<prefix>-key-<i> <prefix>-k2-<i>`` and body ``<prefix> body <i>``. One ``sent`` line per
send (msgId, status, offset, tags, keys, body); one ``checked`` line per CHECK_TRANSACTION_STATE
the engine passes to the checker (keys, tags, msgId, answer: COMMIT for tag ``unknown``, else
ROLLBACK), ``checks_done`` once ``--expect-checks`` came. The producer stays up (the engine sends
END_TRANSACTION for a check after the checker returned) until SIGTERM: ``done``, exit 0; or
``deadline`` (exit 3).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pathlib
import signal
import sys
import threading

LOG_DIR = pathlib.Path.home() / "logs" / "rocketmq-cpp"
os.environ.setdefault("ROCKETMQ_CLIENT_LOG_DIR", f"{LOG_DIR}/")

from rocketmq.client import Message  # noqa: E402
from rocketmq.ffi import _CSendResult, dll  # noqa: E402
from script_io import emit, text, watchdog  # noqa: E402

COMMIT, ROLLBACK, UNKNOWN = 0, 1, 2
STATUS = {"commit": COMMIT, "rollback": ROLLBACK, "unknown": UNKNOWN}
CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
SEND_STATUS = {
    0: "SEND_OK",
    1: "FLUSH_DISK_TIMEOUT",
    2: "FLUSH_SLAVE_TIMEOUT",
    3: "SLAVE_NOT_AVAILABLE",
}

_checked = threading.Condition()
_checks: list[dict] = []


@CALLBACK
def check(_producer: int, msg: int, _data: int) -> int:
    """CHECK_TRANSACTION_STATE from the broker, passed on by the engine (its own thread)."""
    tags = text(dll.GetMessageTags(msg))
    answer = COMMIT if tags == "unknown" else ROLLBACK
    line = {
        "keys": text(dll.GetMessageKeys(msg)),
        "tags": tags,
        "msgId": text(dll.GetMessageId(msg)),
        "body": text(dll.GetMessageBody(msg)),
        "answer": "COMMIT" if answer == COMMIT else "ROLLBACK",
    }
    emit("checked", **line)
    with _checked:
        _checks.append(line)
        _checked.notify_all()
    return answer


_decisions: list[str] = []


@CALLBACK
def execute(_producer: int, _msg: int, data: int | None) -> int:
    """The local transaction of message ``data`` (its index): the decision it was given."""
    return STATUS[_decisions[data or 0]]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namesrv", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", default="actormq_interop_cpp_tx_producer")
    parser.add_argument("--decisions", default="commit,rollback,unknown")
    parser.add_argument("--prefix", default="tx")
    parser.add_argument("--expect-checks", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args()
    watchdog(args.deadline)
    if not hasattr(dll, "CreateTransactionProducer"):
        emit("unsupported", reason="this engine's librocketmq has no CreateTransactionProducer")
        return 4
    dll.CreateTransactionProducer.argtypes = [ctypes.c_char_p, CALLBACK, ctypes.c_void_p]
    dll.CreateTransactionProducer.restype = ctypes.c_void_p
    dll.SendMessageTransaction.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        CALLBACK,
        ctypes.c_void_p,
        ctypes.POINTER(_CSendResult),
    ]
    dll.SendMessageTransaction.restype = ctypes.c_int
    _decisions.extend(args.decisions.split(","))

    producer = dll.CreateTransactionProducer(args.group.encode(), check, None)
    dll.SetProducerNameServerAddress(producer, args.namesrv.encode())
    dll.SetProducerSendMsgTimeout(producer, 10000)
    if dll.StartProducer(producer) != 0:
        emit("fatal", error="StartProducer failed")
        return 2
    emit("started", group=args.group)

    failures = 0
    for i, decision in enumerate(_decisions):
        keys = f"{args.prefix}-key-{i} {args.prefix}-k2-{i}"
        body = f"{args.prefix} body {i}"
        msg = Message(args.topic)
        msg.set_keys(keys)
        msg.set_tags(decision)
        msg.set_body(body)
        result = _CSendResult()
        code = dll.SendMessageTransaction(
            producer, msg._handle, execute, ctypes.c_void_p(i), ctypes.byref(result)
        )
        if code != 0:
            failures += 1
            emit("send_error", i=i, tags=decision, keys=keys, body=body, error=f"code {code}")
            continue
        emit(
            "sent",
            i=i,
            msgId=text(result.msgId),
            status=SEND_STATUS.get(result.sendStatus, str(result.sendStatus)),
            queue=None,
            offset=result.offset,
            tags=decision,
            keys=keys,
            body=body,
        )
    # Stay up until the broker asked about the open transactions (the engine answers END
    # TRANSACTION with our checker's decision from its own thread), then until SIGTERM.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    announced = False
    while not stop.wait(0.2):  # a short wait keeps the main thread free for signal handlers
        with _checked:
            if not announced and len(_checks) >= args.expect_checks:
                announced = True
                emit("checks_done", checks=len(_checks))
    dll.ShutdownProducer(producer)
    emit("done", sent=len(_decisions) - failures, failed=failures, checks=len(_checks))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    try:
        code = main()
    except Exception as exc:
        emit("fatal", error=repr(exc))
        code = 2
    sys.stdout.flush()
    os._exit(code)
