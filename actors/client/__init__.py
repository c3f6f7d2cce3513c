"""actormq's native Python client: producers and consumers speaking RocketMQ remoting 4.x.

```python
from actors.client import Producer, PushConsumer, PullConsumer, Message, ConsumeResult
from actors.client import TransactionProducer, LocalTransactionState, ConsumeOrderlyStatus
```

The public objects are synchronous and thread-safe; their actors run on a gevent hub in a
background thread (or on the caller's hub when gevent monkey-patched ``threading``). See
docs/client.md for the API, the consume-from rules and the threading model.
"""

from actors.client.admin import Admin, QueueOffsets
from actors.client.admin_groups import BrokerConsumeStats, OffsetReset, QueueProgress
from actors.client.allocate import (
    AllocateMessageQueueAveragely,
    AllocateMessageQueueAveragelyByCircle,
    AllocateMessageQueueByConfig,
    AllocateMessageQueueConsistentHash,
    AllocateStrategy,
)
from actors.client.config import TlsOptions
from actors.client.consume import ConsumeContext
from actors.client.errors import (
    BrokerError,
    ClientError,
    ClientStateError,
    ConnectError,
    MessageInvalidError,
    MessageTooLargeError,
    NoRouteError,
    RebalancerUnavailableError,
    RequestInvalidError,
    RequestTimeoutError,
    SendFailedError,
)
from actors.client.hooks import (
    CommunicationMode,
    ConsumeHook,
    ConsumeHookContext,
    MessageType,
    SendContext,
    SendHook,
)
from actors.client.message import (
    ConsumeOrderlyStatus,
    ConsumeResult,
    LocalTransactionState,
    Message,
    MessageExt,
    MessageQueue,
    PullStatus,
    SendResult,
    SendStatus,
)
from actors.client.producer import Producer
from actors.client.pull_consumer import PullConsumer
from actors.client.push_consumer import PushConsumer
from actors.client.rebalance import ConsumeFrom
from actors.client.selectors import ByShardingKey, QueueSelector
from actors.client.transaction import (
    TransactionListener,
    TransactionProducer,
    TransactionSendResult,
)
from runtime.acl.signature import SessionCredentials
from runtime.remoting.codes import MessageModel
from runtime.remoting.running_info import ConsumerRunningInfo, ConsumeStatus, ProcessQueueInfo

__all__ = [
    "Admin",
    "AllocateMessageQueueAveragely",
    "AllocateMessageQueueAveragelyByCircle",
    "AllocateMessageQueueByConfig",
    "AllocateMessageQueueConsistentHash",
    "AllocateStrategy",
    "BrokerConsumeStats",
    "BrokerError",
    "ByShardingKey",
    "ClientError",
    "ClientStateError",
    "CommunicationMode",
    "ConnectError",
    "ConsumeContext",
    "ConsumeFrom",
    "ConsumeHook",
    "ConsumeHookContext",
    "ConsumeOrderlyStatus",
    "ConsumeResult",
    "ConsumeStatus",
    "ConsumerRunningInfo",
    "LocalTransactionState",
    "Message",
    "MessageExt",
    "MessageInvalidError",
    "MessageModel",
    "MessageQueue",
    "MessageTooLargeError",
    "MessageType",
    "NoRouteError",
    "OffsetReset",
    "ProcessQueueInfo",
    "Producer",
    "PullConsumer",
    "PullStatus",
    "PushConsumer",
    "QueueOffsets",
    "QueueProgress",
    "QueueSelector",
    "RebalancerUnavailableError",
    "RequestInvalidError",
    "RequestTimeoutError",
    "SendContext",
    "SendFailedError",
    "SendHook",
    "SendResult",
    "SendStatus",
    "SessionCredentials",
    "TlsOptions",
    "TransactionListener",
    "TransactionProducer",
    "TransactionSendResult",
]
