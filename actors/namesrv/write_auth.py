"""The name server's write check: with ``innerClientAuthenticationCredentials`` set, a request
that changes what the name server holds or decides must be signed (RocketMQ's ACL signature,
``runtime.acl.signature``) with that account.

Checked (``SIGNED``): the brokers' REGISTER_BROKER, REGISTER_TOPIC_IN_NAMESRV, UNREGISTER_BROKER,
QUERY_DATA_VERSION and BROKER_HEARTBEAT (signs of life: a forged one keeps a dead broker routed) and
CONTROLLER_HEARTBEAT (a forged one keeps a dead master's lease alive, or reports a false
in-sync set); the admin's
DELETE_TOPIC_IN_NAMESRV, PUT_KV_CONFIG, DELETE_KV_CONFIG, WIPE / ADD_WRITE_PERM_OF_BROKER and the
controller's CONTROLLER_ELECT_MASTER and CLEAN_BROKER_DATA. Reads (routes, cluster info, the
controller's views) stay open, as RocketMQ's name server serves them.

A signature proves the sender holds the secret; it does not make a request fresh: someone who
can read the traffic can replay a request it saw. Nor does it bind values to their fields
(RocketMQ's signature covers the values joined in the order of their names, without the
names): from a request it saw, such a reader can move characters across a boundary between
adjacent values (``brokerAddr`` ``...:10911`` + ``brokerId`` ``0`` -> ``...:1091`` + ``10``)
or add fields with empty values, and the signature still matches. Run the name server's
connections over TLS (docs/deploy.md) where that matters.
"""

from __future__ import annotations

from config import NamesrvConfig
from runtime.acl.signature import ACCESS_KEY, SessionCredentials, verify
from runtime.ha.control import CONTROLLER_HEARTBEAT
from runtime.remoting.codes import RequestCode
from runtime.remoting.command import RemotingCommand

SIGNED: frozenset[int] = frozenset(
    {
        RequestCode.REGISTER_BROKER,
        RequestCode.REGISTER_TOPIC_IN_NAMESRV,
        RequestCode.UNREGISTER_BROKER,
        RequestCode.QUERY_DATA_VERSION,
        RequestCode.BROKER_HEARTBEAT,
        CONTROLLER_HEARTBEAT,
        RequestCode.DELETE_TOPIC_IN_NAMESRV,
        RequestCode.PUT_KV_CONFIG,
        RequestCode.DELETE_KV_CONFIG,
        RequestCode.WIPE_WRITE_PERM_OF_BROKER,
        RequestCode.ADD_WRITE_PERM_OF_BROKER,
        RequestCode.CONTROLLER_ELECT_MASTER,
        RequestCode.CLEAN_BROKER_DATA,
    }
)


class WriteAuth:
    """Checks requests against the inner account ``credentials``."""

    def __init__(self, credentials: SessionCredentials) -> None:
        self.credentials = credentials

    def check(self, request: RemotingCommand) -> str | None:
        """None when ``request`` may run; else why not."""
        if request.code not in SIGNED:
            return None
        ext = request.ext_fields
        access_key = ext.get(ACCESS_KEY)
        if access_key is None:
            return "the name server takes this request only signed with the inner account"
        if access_key != self.credentials.access_key:
            return f"accessKey {access_key[:64]!r} is not the name server's inner account"
        if not verify(ext, request.body, self.credentials.secret_key):
            return "the signature does not match the inner account's secret key"
        return None


def write_auth_for(cfg: NamesrvConfig) -> WriteAuth | None:
    """The check ``cfg`` asks for; None without ``innerClientAuthenticationCredentials``."""
    credentials = cfg.inner_credentials()
    return WriteAuth(credentials) if credentials is not None else None
