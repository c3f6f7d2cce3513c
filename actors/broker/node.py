"""The broker subtree: what one broker node runs, as a supervisor child spec."""

from __future__ import annotations

import pathlib
import socket

from config import BrokerConfig
from runtime.directory import Directory
from runtime.net import Acceptor, hold_open
from runtime.supervisor import ChildSpec, Supervisor


def broker_spec(
    name: str,
    cfg: BrokerConfig,
    sock: socket.socket,
    store_root: pathlib.Path,
    directory: Directory,
) -> ChildSpec:
    """A supervisor for one broker node listening on ``sock`` with its store at ``store_root``.

    A fail-stop child (an actor owning durability) takes the subtree down; the parent then
    restarts the whole broker, which recovers its store before accepting again.
    """
    del cfg  # used once the store and the remoting server are wired in
    store_root.mkdir(parents=True, exist_ok=True)
    children = [
        ChildSpec(name=f"{name}/acceptor", start=lambda: Acceptor.start(name, sock, hold_open)),
    ]
    return ChildSpec(name=name, start=lambda: Supervisor.start(name, children, directory=directory))
