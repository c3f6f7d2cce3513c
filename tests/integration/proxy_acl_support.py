"""A cluster and a gRPC proxy under one plain ACL file, and the metadata a RocketMQ 5 client
signs its calls with: shared by the proxy's ACL tests."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import pathlib
from collections.abc import Iterable, Iterator

from actors.client import Admin, ClientError, SessionCredentials
from tests.client_support import wait_until
from tests.harness import RuntimeProcess
from tests.profiles import one_broker

PROXY_KEY, PROXY_SECRET = "proxy-admin", "proxy-secret"
"""The proxy's own (admin) account: every ACL file of these tests holds it."""


@contextlib.contextmanager
def proxy_under_acl(
    tmp_path: pathlib.Path, acl: str, topics: Iterable[str], queues: int
) -> Iterator[str]:
    """A one-broker cluster and a proxy enforcing ``acl`` (the broker too), ``topics`` made
    and routed; yields the proxy's address."""
    acl_file = tmp_path / "plain_acl.yml"
    acl_file.write_text(acl)
    profile = tmp_path / "acl.toml"
    profile.write_text(one_broker({"aclEnable": True, "aclFile": str(acl_file)}))
    args = ["cluster", "--profile", str(profile), "--ephemeral-ports"]
    with RuntimeProcess([*args, "--data-dir", str(tmp_path / "data")]) as cluster:
        namesrv = cluster.wait_ready(timeout=30)["namesrv"]
        with Admin(namesrv, credentials=SessionCredentials(PROXY_KEY, PROXY_SECRET)) as admin:
            for topic in topics:
                admin.create_topic(topic, queues=queues)
                wait_until(lambda t=topic: _routed(admin, t), what=f"{topic} routed")
        args = ["proxy", "--namesrv-addr", namesrv, "--ephemeral-ports", "--acl-file"]
        args += [str(acl_file), "--access-key", PROXY_KEY, "--secret-key", PROXY_SECRET]
        with RuntimeProcess(args) as process:
            yield process.wait_ready(timeout=30)["proxy"]


def _routed(admin: Admin, topic: str) -> bool:
    try:
        return bool(admin.topic_route(topic).queue_datas)
    except ClientError:
        return False


def signed(access_key: str, secret_key: str) -> list[tuple[str, str]]:
    """The metadata a RocketMQ 5 client sends: its date and the signature over it."""
    date = datetime.datetime.now().strftime("%Y%m%dT%H%M%SZ")
    signature = hmac.new(secret_key.encode(), date.encode(), hashlib.sha1).hexdigest()
    authorization = (
        f"MQv2-HMAC-SHA1 Credential={access_key}, SignedHeaders=x-mq-date-time, "
        f"Signature={signature}"
    )
    return [("x-mq-date-time", date), ("authorization", authorization)]
