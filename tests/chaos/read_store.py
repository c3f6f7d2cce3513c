"""Read one stopped broker's store from disk: ``python -m tests.chaos.read_store CONF TOPIC N``.

For lost-on-node (RELIABILITY.md §3.7): after a run, each replica's committed log is read
directly, not through the broker (a slave may not serve reads). Opens the store the broker
config names (recovery runs, as at a broker start), reads queues 0..N-1 of TOPIC from offset
0 to the end and prints one JSON object: {"<queueId>": {"<offset>": "<body>"}}. Runs as its
own process: the store's actors need a monkey-patched gevent, which the test process is not.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402


def read(conf: str, topic: str, queues: int) -> dict[str, dict[str, str]]:
    from actors.broker.store_results import GetStatus
    from actors.broker.store_service import BrokerStore
    from config import load_broker_config
    from runtime.directory import Directory
    from runtime.store import record as R
    from runtime.store.settings import StoreSettings

    cfg = load_broker_config(conf)
    store = BrokerStore.build(StoreSettings.from_broker_config(cfg), Directory()).start()
    out: dict[str, dict[str, str]] = {}
    try:
        for q in range(queues):
            got_q: dict[str, str] = {}
            offset = 0
            while True:
                got = store.get_messages("reader", topic, q, offset, 256).get(timeout=30)
                if got.status is not GetStatus.FOUND:
                    break
                for qoff, raw in zip(got.queue_offsets, got.messages, strict=True):
                    got_q[str(qoff)] = R.decode_record(raw).body.decode(errors="replace")
                offset = got.next_begin_offset
            out[str(q)] = got_q
    finally:
        store.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    print(json.dumps(read(args[0], args[1], int(args[2]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
