"""RocketMQ's ConsistentHashRouter (org.apache.rocketmq.common.consistenthash), for
``AllocateMessageQueueConsistentHash``: the same ring, so a Python and a Java member of one
group route every queue to the same client.

- Each physical node (a client id) gets ``virtual_nodes`` points on the ring, keyed
  ``"<node>-<i>"`` (VirtualNode.getKey), ``i`` counting from the node's replicas already on the
  ring (0 for a node added once). Nodes are added in the order given; a point that collides
  with an earlier one replaces it (TreeMap.put).
- A point is ``md5_hash(key)``: the first 4 bytes of the MD5 digest of the key's UTF-8 bytes,
  big-endian, unsigned (RocketMQ's MD5Hash: ``h <<= 8; h |= digest[i] & 0xFF`` for i in 0..3).
- ``route(key)`` is the node of the first point at or after ``md5_hash(key)``, wrapping to the
  lowest point (``tailMap(hash).firstKey()`` else ``firstKey()``); None on an empty ring.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable

HashFunction = Callable[[str], int]


def md5_hash(key: str) -> int:
    """RocketMQ's default hash: MD5, first 4 bytes, big-endian, as an unsigned int."""
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest()[:4], "big")


class HashRing:
    """A ring of ``nodes`` with ``virtual_nodes`` points each; ``route(key)`` finds a node."""

    def __init__(
        self, nodes: Iterable[str], virtual_nodes: int, hash_fn: HashFunction = md5_hash
    ) -> None:
        if virtual_nodes < 0:
            raise ValueError(f"illegal virtual node count: {virtual_nodes}")
        self.hash_fn = hash_fn
        ring: dict[int, str] = {}
        for node in nodes:
            existing = sum(1 for owner in ring.values() if owner == node)
            for i in range(virtual_nodes):
                ring[hash_fn(f"{node}-{i + existing}")] = node
        self._points = sorted(ring)
        self._owners = [ring[p] for p in self._points]

    def __len__(self) -> int:
        return len(self._points)

    def route(self, key: str) -> str | None:
        if not self._points:
            return None
        at = bisect.bisect_left(self._points, self.hash_fn(key))
        return self._owners[at if at < len(self._points) else 0]
