"""What the plain ACL costs per request, in the process that pays it: the client's signature
(``runtime.acl.signature.sign``) and the broker's check (``PlainAcl.check``: account, signature,
permissions) of a 1 KiB SEND_MESSAGE_V2 and of a PULL_MESSAGE, as µs per request.

    .venv/bin/python bench/acl_cost.py [--n 20000]

End to end, alternate ``python -m runtime bench produce --spawn async`` with ``... --acl``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import timeit

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from runtime.acl.plain import parse
from runtime.acl.signature import SessionCredentials, sign
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand

KEYS = SessionCredentials("bench-access", "bench-secret")
ACL = parse(
    b"accounts:\n  - accessKey: bench-access\n    secretKey: bench-secret\n"
    b"    defaultTopicPerm: PUB|SUB\n    defaultGroupPerm: SUB\n",
    "bench",
)
SEND_EXT = {
    "a": "bench-producer",
    "b": "BenchTopic",
    "c": "TBW102",
    "d": "4",
    "e": "1",
    "f": "0",
    "g": "1763860000000",
    "h": "0",
    "i": "UNIQ_KEY\x017F0000010F2A1B2C3D4E5F60718293A4\x02WAIT\x01true\x02",
    "j": "0",
    "k": "false",
    "m": "false",
    "n": "broker-a",
}
PULL_EXT = {
    "consumerGroup": "bench-group",
    "topic": "BenchTopic",
    "queueId": "1",
    "queueOffset": "1000",
    "maxMsgNums": "32",
    "sysFlag": "3",
    "commitOffset": "990",
    "suspendTimeoutMillis": "15000",
    "subscription": "*",
    "subVersion": "1763860000000",
    "expressionType": "TAG",
}


def per_call_us(fn: object, n: int) -> float:
    return timeit.timeit(fn, number=n) / n * 1e6  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    n = parser.parse_args().n
    requests = {
        "send 1 KiB": RemotingCommand(
            code=RequestCode.SEND_MESSAGE_V2, ext_fields=SEND_EXT, body=b"x" * 1024
        ),
        "pull": RemotingCommand(code=RequestCode.PULL_MESSAGE, ext_fields=PULL_EXT),
    }
    for what, request in requests.items():
        signed = sign(request, KEYS)
        assert ACL.check(signed, "127.0.0.1") is None
        signing = per_call_us(lambda r=request: sign(r, KEYS), n)
        checking = per_call_us(lambda s=signed: ACL.check(s, "127.0.0.1"), n)
        print(f"{what}: client sign {signing:.1f} us, broker check {checking:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
