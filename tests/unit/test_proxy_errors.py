"""actors/proxy/service.py ``error_code``: the gRPC code for a failed request of actormq's
client."""

from __future__ import annotations

from actors.client.errors import BrokerError, RequestTimeoutError, SendFailedError
from actors.proxy.proto import Code
from actors.proxy.service import error_code
from runtime.remoting.codes import ResponseCode


def test_a_send_failed_on_every_attempt_answers_as_its_last_attempt_did() -> None:
    gone = BrokerError(ResponseCode.TOPIC_NOT_EXIST, "topic not exist", "b:1", "send")
    assert error_code(SendFailedError("T", [gone, gone])) == Code.TOPIC_NOT_FOUND
    refused = BrokerError(ResponseCode.NO_PERMISSION, "no permission", "b:1", "send")
    assert error_code(SendFailedError("T", [gone, refused])) == Code.FORBIDDEN
    late = RequestTimeoutError("send", 3.0)
    assert error_code(SendFailedError("T", [gone, late])) == Code.PROXY_TIMEOUT
    assert error_code(SendFailedError("T", [])) == Code.INTERNAL_SERVER_ERROR
