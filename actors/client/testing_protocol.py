"""The fake cluster's protocol: request processors for its name server and brokers.

Just enough of the protocol for the client (the list is in ``actors.client.testing``); each
processor runs on the fake cluster's hub, one ``ClientSession`` per connection.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import gevent.event

from actors.client.testing_state import FakeBroker, store_record
from runtime.hostport import parse_address
from runtime.remoting.batch import decode_batch
from runtime.remoting.bodies import (
    CheckClientRequestBody,
    ConsumerListBody,
    HeartbeatData,
    LockBatchRequestBody,
    LockBatchResponseBody,
    UnlockBatchRequestBody,
    decode_body,
    encode_body,
)
from runtime.remoting.codes import PullSysFlag, RequestCode, ResponseCode
from runtime.remoting.command import RemotingCommand
from runtime.remoting.header_codec import decode_header, decode_send_header
from runtime.remoting.headers import PullMessageRequestHeader
from runtime.remoting.properties import tag_hash
from runtime.session import SessionHandle
from runtime.store.msg_id import offset_msg_id
from runtime.store.record import PutRecord, host_bytes

if TYPE_CHECKING:
    from actors.client.testing import FakeCluster


def _ok(request: RemotingCommand, ext: dict[str, object] | None = None, body: bytes = b"") -> Any:
    return RemotingCommand.response_to(request, ResponseCode.SUCCESS, ext_fields=ext, body=body)


class NamesrvProcessor:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        self.cluster.namesrv_requests.append((request.code, dict(request.ext_fields)))
        if request.code == RequestCode.GET_ROUTEINFO_BY_TOPIC:
            topic = request.ext_fields.get("topic", "")
            route = self.cluster.route(topic)
            missed = topic == "TBW102" and self.cluster.tbw102_misses > 0
            if missed:
                self.cluster.tbw102_misses -= 1
            if route is None or (topic == "TBW102" and not self.cluster.auto_create) or missed:
                return RemotingCommand.response_to(
                    request, ResponseCode.TOPIC_NOT_EXIST, remark=f"no route for {topic}"
                )
            return _ok(request, body=encode_body(route))
        return RemotingCommand.response_to(request, ResponseCode.REQUEST_CODE_NOT_SUPPORTED)

    def on_close(self, session: SessionHandle) -> None:
        pass


class BrokerProcessor:
    def __init__(self, cluster: FakeCluster, broker: FakeBroker) -> None:
        self.cluster = cluster
        self.b = broker

    def process(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        b = self.b
        code = request.code
        b.requests.append((code, dict(request.ext_fields)))
        if code in (
            RequestCode.SEND_MESSAGE,
            RequestCode.SEND_MESSAGE_V2,
            RequestCode.SEND_BATCH_MESSAGE,
        ):
            return self._send(session, request)
        if code == RequestCode.PULL_MESSAGE:
            return self._pull(request)
        ext = request.ext_fields
        if code == RequestCode.QUERY_CONSUMER_OFFSET:
            key = (ext["consumerGroup"], ext["topic"], int(ext["queueId"]))
            if key in b.offsets:
                return _ok(request, {"offset": b.offsets[key]})
            if b.zero_if_not_found:
                return _ok(request, {"offset": 0})
            return RemotingCommand.response_to(request, ResponseCode.QUERY_NOT_FOUND, "none")
        if code == RequestCode.UPDATE_CONSUMER_OFFSET:
            key = (ext["consumerGroup"], ext["topic"], int(ext["queueId"]))
            if int(ext["commitOffset"]) >= 0:
                b.offsets[key] = int(ext["commitOffset"])
            return None if request.is_oneway else _ok(request)
        if code == RequestCode.GET_MAX_OFFSET:
            return _ok(request, {"offset": len(b.queues[(ext["topic"], int(ext["queueId"]))])})
        if code == RequestCode.GET_MIN_OFFSET:
            return _ok(request, {"offset": 0})
        if code == RequestCode.SEARCH_OFFSET_BY_TIMESTAMP:
            items = b.queues[(ext["topic"], int(ext["queueId"]))]
            ts = int(ext["timestamp"])
            offset = next((i for i, s in enumerate(items) if s.store_timestamp >= ts), len(items))
            return _ok(request, {"offset": offset})
        if code == RequestCode.HEART_BEAT:
            data = decode_body(HeartbeatData, request.body)
            changed = []
            for pd in data.producer_data_set:
                b.producers[pd.group_name].add(data.client_id)
            for cd in data.consumer_data_set:
                if b.forget_heartbeats:
                    break
                members = b.consumers[cd.group_name]
                if data.client_id not in members:
                    changed.append(cd.group_name)
                members[data.client_id] = session
            for group in changed:
                self._notify(group)
            return _ok(request)
        if code == RequestCode.UNREGISTER_CLIENT:
            group = ext.get("consumerGroup")
            if group and b.consumers[group].pop(ext["clientID"], None) is not None:
                self._notify(group)
            if ext.get("producerGroup"):
                b.producers[ext["producerGroup"]].discard(ext["clientID"])
            if b.unregister_delay:
                gevent.sleep(b.unregister_delay)  # this request's own greenlet
            return _ok(request)
        if code == RequestCode.CONSUMER_SEND_MSG_BACK and b.accept_send_back:
            return _ok(request)
        if code == RequestCode.LOCK_BATCH_MQ:
            lock = decode_body(LockBatchRequestBody, request.body)
            granted = []
            for mq in lock.mq_set:
                key = (lock.consumer_group, mq)
                if b.locks.setdefault(key, lock.client_id) == lock.client_id:
                    granted.append(mq)
            return _ok(request, body=encode_body(LockBatchResponseBody(lock_ok_mq_set=granted)))
        if code == RequestCode.UNLOCK_BATCH_MQ:
            unlock = decode_body(UnlockBatchRequestBody, request.body)
            for mq in unlock.mq_set:
                if b.locks.get((unlock.consumer_group, mq)) == unlock.client_id:
                    del b.locks[(unlock.consumer_group, mq)]
            return _ok(request)
        if code == RequestCode.CHECK_CLIENT_CONFIG:
            check = decode_body(CheckClientRequestBody, request.body)
            b.checks.append(check)
            sub = check.subscription_data
            if sub is not None and sub.expression_type != "TAG" and not b.property_filter:
                return RemotingCommand.response_to(
                    request, ResponseCode.SYSTEM_ERROR, "The broker does not support SQL92"
                )
            return _ok(request)
        if code == RequestCode.GET_CONSUMER_LIST_BY_GROUP:
            ids = sorted(b.consumers.get(ext["consumerGroup"], {}))
            return _ok(request, body=encode_body(ConsumerListBody(consumer_id_list=ids)))
        return RemotingCommand.response_to(request, ResponseCode.REQUEST_CODE_NOT_SUPPORTED)

    def _notify(self, group: str) -> None:
        for handle in list(self.b.consumers[group].values()):
            handle.send_oneway(
                RemotingCommand.request(
                    RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, {"consumerGroup": group}
                )
            )

    def on_close(self, session: SessionHandle) -> None:
        for group, members in self.b.consumers.items():
            gone = [cid for cid, h in members.items() if h is session]
            for cid in gone:
                del members[cid]
            if gone:
                self._notify(group)

    def _send(self, session: SessionHandle, request: RemotingCommand) -> RemotingCommand | None:
        b = self.b
        if b.silent_sends > 0:
            b.silent_sends -= 1
            return None
        if b.dropped_sends > 0:
            b.dropped_sends -= 1
            session.close()
            return None
        if b.fail_sends:
            return RemotingCommand.response_to(request, b.fail_sends.pop(0), remark="injected")
        h = decode_send_header(request.code, request.ext_fields, opaque=request.opaque)
        retry_ok = b.accept_send_back if b.accept_retry_sends is None else b.accept_retry_sends
        if h.topic.startswith("%RETRY%") and not retry_ok:
            return RemotingCommand.response_to(request, ResponseCode.SYSTEM_ERROR, remark="no")
        if h.topic not in self.cluster.topics:
            if not (self.cluster.auto_create and h.default_topic == "TBW102"):
                return RemotingCommand.response_to(request, ResponseCode.TOPIC_NOT_EXIST)
            self.cluster.topics.add(h.topic)
        if h.batch:
            entries = [(e.body, e.properties, e.flag) for e in decode_batch(request.body)]
        else:
            entries = [(request.body, h.properties, h.flag)]
        first = None
        physical: list[int] = []  # each record's commit-log offset
        for body, props, flag in entries:
            physical.append(b.physical)
            offset = store_record(
                b,
                PutRecord(
                    topic=h.topic,
                    queue_id=h.queue_id,
                    body=body,
                    properties=props,
                    flag=flag,
                    sys_flag=h.sys_flag,
                    born_timestamp=h.born_timestamp,
                    reconsume_times=h.reconsume_times,
                ),
            )
            first = offset if first is None else first
        host, port = parse_address(b.address)
        # one offset message id per record, comma-joined for a batch (as the broker answers)
        msg_id = ",".join(offset_msg_id(host_bytes(host), port, at) for at in physical)
        if request.is_oneway:
            return None
        if b.send_delay:
            gevent.sleep(b.send_delay)  # this request's own greenlet
        ext = {"msgId": msg_id, "queueId": h.queue_id, "queueOffset": first}
        if b.stored_codes:
            code = b.stored_codes.pop(0)
            return RemotingCommand.response_to(
                request, code, ext_fields={**ext, **b.send_ext_fields}
            )
        return _ok(request, {**ext, **b.send_ext_fields})

    def _pull(self, request: RemotingCommand) -> RemotingCommand:
        b = self.b
        h = decode_header(PullMessageRequestHeader, request.ext_fields, opaque=request.opaque)
        key = (h.topic, h.queue_id)
        with self.cluster.pulled:
            b.pull_times[key].append(time.monotonic())
            self.cluster.pulled.notify_all()
        if h.sys_flag & PullSysFlag.COMMIT_OFFSET and h.commit_offset >= 0 and b.commit_in_pulls:
            b.offsets[(h.consumer_group, h.topic, h.queue_id)] = h.commit_offset
        deadline = time.monotonic() + h.suspend_timeout_millis / 1000
        while True:
            items = b.queues[key]
            if h.queue_offset > len(items) and b.keep_consumers:
                return RemotingCommand.response_to(
                    request,
                    ResponseCode.PULL_RETRY_IMMEDIATELY,
                    ext_fields=_pull_ext(h.queue_offset, len(items)),
                )
            if h.queue_offset > len(items) or h.queue_offset < 0:
                return RemotingCommand.response_to(
                    request,
                    ResponseCode.PULL_OFFSET_MOVED,
                    ext_fields=_pull_ext(len(items), len(items)),
                )
            if h.queue_offset < len(items):
                break
            remaining = deadline - time.monotonic()
            if not h.sys_flag & PullSysFlag.SUSPEND or remaining <= 0:
                return RemotingCommand.response_to(
                    request,
                    ResponseCode.PULL_NOT_FOUND,
                    ext_fields=_pull_ext(h.queue_offset, len(items)),
                )
            event = b.arrivals.setdefault(key, gevent.event.Event())
            event.wait(remaining)
        wanted = None
        if h.subscription and h.subscription.strip() not in ("", "*"):
            wanted = {tag_hash(t.strip()) for t in h.subscription.split("||") if t.strip()}
        chosen: list[bytes] = []
        size = 0
        offset = h.queue_offset
        while offset < len(items) and len(chosen) < h.max_msg_nums:
            stored = items[offset]
            offset += 1
            if wanted is not None and stored.tags_code not in wanted:
                continue
            chosen.append(stored.record)
            size += len(stored.record)
        if not chosen:
            return RemotingCommand.response_to(
                request,
                ResponseCode.PULL_RETRY_IMMEDIATELY,
                ext_fields=_pull_ext(offset, len(items)),
            )
        return RemotingCommand.response_to(
            request,
            ResponseCode.SUCCESS,
            ext_fields=_pull_ext(offset, len(items)),
            body=b"".join(chosen),
        )


def _pull_ext(next_offset: int, max_offset: int) -> dict[str, object]:
    return {
        "suggestWhichBrokerId": 0,
        "nextBeginOffset": next_offset,
        "minOffset": 0,
        "maxOffset": max_offset,
    }
