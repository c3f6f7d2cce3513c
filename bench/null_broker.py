"""A name server and broker that store nothing: a ceiling for the client and the wire.

One gevent server on one port answers GET_ROUTEINFO_BY_TOPIC with a route to itself (one
broker, four queues, any topic), SEND_MESSAGE / SEND_MESSAGE_V2 with SEND_OK (queueId echoed,
queueOffset counting up, a fixed msgId), and every other request with SUCCESS; oneway requests
get nothing. Frames go through the project's own codec (``runtime.remoting``), so what it costs
per request is the codec plus gevent's sockets and nothing of the broker's store path. Point a
benchmark at it to see how fast a client could go if the broker were free:

    .venv/bin/python bench/null_broker.py [--port 0]       # prints "ready namesrv=HOST:PORT"
    .venv/bin/python -m runtime bench produce --namesrv HOST:PORT --seconds 5
    .venv/bin/python bench/broker_send.py --broker HOST:PORT --pid PID

Runs until interrupted, or for ``--seconds`` and then prints its CPU per request.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import itertools  # noqa: E402
import pathlib  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from runtime.hostport import family_of, format_address  # noqa: E402
from runtime.remoting.bodies import BrokerData, QueueData, TopicRouteData, encode_body  # noqa: E402
from runtime.remoting.codes import RequestCode, ResponseCode  # noqa: E402
from runtime.remoting.command import RemotingCommand  # noqa: E402
from runtime.remoting.frame import FrameDecoder, encode  # noqa: E402

SENDS = frozenset({RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2})
MSG_ID = "7F00000100002A9F0000000000000000"


class NullBroker:
    """Answers requests on accepted connections; counts what it answered."""

    def __init__(self, address: str) -> None:
        route = TopicRouteData(
            broker_datas=[
                BrokerData(broker_addrs={0: address}, broker_name="null", cluster="null")
            ],
            queue_datas=[
                QueueData(broker_name="null", perm=6, read_queue_nums=4, write_queue_nums=4)
            ],
        )
        self.route_body = encode_body(route)
        self.offsets = itertools.count()
        self.answered = 0

    def answer(self, request: RemotingCommand) -> RemotingCommand:
        code = request.code
        if code in SENDS:
            ext = request.ext_fields
            queue_id = ext.get("e", ext.get("queueId", "0"))  # V2 names fields a, b, c, ...
            fields = {"msgId": MSG_ID, "queueId": queue_id, "queueOffset": next(self.offsets)}
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS, ext_fields=fields)
        if code == RequestCode.GET_ROUTEINFO_BY_TOPIC:
            return RemotingCommand.response_to(request, ResponseCode.SUCCESS, body=self.route_body)
        return RemotingCommand.response_to(request, ResponseCode.SUCCESS)

    def serve(self, sock: socket.socket, _peer: object) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        decoder = FrameDecoder()
        while True:
            data = sock.recv(65536)
            if not data:
                return
            frames = [encode(self.answer(r)) for r in decoder.feed(data) if not r.is_oneway]
            if frames:
                self.answered += len(frames)
                sock.sendall(b"".join(frames))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--seconds", type=float, default=0.0, help="0: until interrupted")
    args = parser.parse_args(argv)
    listener = socket.create_server((args.host, args.port), family=family_of(args.host))
    address = format_address(args.host, listener.getsockname()[1])
    broker = NullBroker(address)
    server = StreamServer(listener, broker.serve)
    server.start()
    print(f"ready namesrv={address}", flush=True)
    cpu0 = time.process_time()
    try:
        if args.seconds > 0:
            gevent.sleep(args.seconds)
        else:
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.stop()
    cpu = time.process_time() - cpu0
    per = round(cpu / broker.answered * 1e6, 1) if broker.answered else 0.0
    print(f"answered {broker.answered}, server CPU {per} us per request", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
