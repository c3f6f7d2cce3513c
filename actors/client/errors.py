"""The errors the client raises on purpose: a few classes under ``runtime.errors.ActorMQError``.

Expected outcomes are values (``SendStatus``, ``PullStatus``, ``ConsumeResult``); these classes mean
the operation did not happen, or its outcome is unknown (``RequestTimeoutError``).
"""

from __future__ import annotations

from runtime.errors import ActorMQError


class ClientError(ActorMQError):
    """Root of the client's errors."""


class ClientStateError(ClientError):
    """The client object cannot do this now: not started, already shut down, or called from the
    client's own hub thread (which would deadlock). ``state`` names the state it is in."""

    def __init__(self, what: str, state: str) -> None:
        self.what = what
        self.state = state
        super().__init__(f"{what}: client is {state}")


class RebalancerUnavailableError(ClientStateError):
    """A change to a running consumer (subscribe, unsubscribe, suspend, resume, pause, assign)
    was not applied, and will not be: no rebalancer runs to apply it (the client instance's
    supervisor gave up restarting it, or none came back within the call's timeout).
    ``reason`` says which. A rebalancer restarted by its supervisor during the call is not
    this error: the call then goes to the new one."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.state = "without a rebalancer"
        self.reason = reason
        ClientError.__init__(self, f"{what}: not applied: {reason}")


class MessageInvalidError(ClientError):
    """A message refused before anything was sent (empty body, bad topic, reserved property...).
    ``field`` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"invalid message {field}: {problem}")


class MessageTooLargeError(MessageInvalidError):
    """The body (or a batch) exceeds the maximum message size; nothing was sent."""

    def __init__(self, size: int, limit: int, what: str = "body") -> None:
        self.size = size
        self.limit = limit
        super().__init__(what, f"{size} bytes exceed the limit of {limit} bytes")


class RequestInvalidError(ClientError):
    """A request refused before it was sent: its header would pass the server's limit, which
    would close the connection every request to that server shares. ``what`` names the
    request."""

    def __init__(self, what: str, problem: str) -> None:
        self.what = what
        self.problem = problem
        super().__init__(f"{what}: {problem}")


class NoRouteError(ClientError):
    """No name server knows a route for ``topic`` (nor the auto-create topic TBW102)."""

    def __init__(self, topic: str, detail: str = "") -> None:
        self.topic = topic
        self.detail = detail
        text = f"no route for topic {topic!r}"
        super().__init__(f"{text}: {detail}" if detail else text)


class BrokerError(ClientError):
    """A broker or name server answered with an error code: the request was not applied.
    ``code`` is the RocketMQ response code, ``remark`` the peer's text, ``address`` the peer."""

    def __init__(self, code: int, remark: str | None, address: str, what: str = "request") -> None:
        self.code = code
        self.remark = remark
        self.address = address
        self.what = what
        super().__init__(f"{what} to {address} failed with code {code}: {remark or ''}".rstrip())


class ConnectError(ClientError):
    """No connection to ``address`` could be opened (or it closed under the request)."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"{address}: {reason}")


class RequestTimeoutError(ClientError):
    """No answer within ``timeout`` seconds: the outcome is unknown (a send may be stored)."""

    def __init__(self, what: str, timeout: float, address: str | None = None) -> None:
        self.what = what
        self.timeout = timeout
        self.address = address
        where = f" to {address}" if address else ""
        super().__init__(f"{what}{where}: no answer within {timeout:g}s")


class SendFailedError(ClientError):
    """Every attempt of a send failed; ``errors`` holds each attempt's error in order."""

    def __init__(self, topic: str, errors: list[ClientError]) -> None:
        self.topic = topic
        self.errors = list(errors)
        last = errors[-1] if errors else None
        super().__init__(
            f"send to {topic!r} failed after {len(errors)} attempt(s)"
            + (f"; last: {last}" if last else "")
        )

    @property
    def maybe_stored(self) -> bool:
        """True when some attempt timed out or lost its connection: the message may be stored."""
        return any(isinstance(e, RequestTimeoutError | ConnectError) for e in self.errors)
