"""actormq's proxy: RocketMQ 5's gRPC API (``apache.rocketmq.v2.MessagingService``) served over
a cluster, so RocketMQ 5's official clients (apache/rocketmq-clients) connect unchanged.

- ``proto``: the API's messages, built at import from ``messaging.proto`` (no protoc step);
- ``server``: the gRPC server on gevent, one handler per call;
- ``service``: routes, sends, heartbeats and telemetry over actormq's own client;
- ``receiving`` and ``pop``: receive / ack / change invisible duration / dead letters, kept by
  the proxy over a lite pull consumer with manual acks;
- ``convert``: messages between the two forms; ``settings``: what a client is told to use.

Run with ``python -m runtime proxy`` or ``python -m runtime cluster --proxy``
(``runtime.proxy``); docs/proxy.md.
"""
