"""The name-server subtree: what one name server runs, as a supervisor child spec."""

from __future__ import annotations

import socket

from config import NamesrvConfig
from runtime.directory import Directory
from runtime.net import Acceptor, hold_open
from runtime.supervisor import ChildSpec, Supervisor


def namesrv_spec(
    name: str, cfg: NamesrvConfig, sock: socket.socket, directory: Directory
) -> ChildSpec:
    """A supervisor for one name server listening on ``sock`` (bound by the process)."""
    children = [
        ChildSpec(name=f"{name}/acceptor", start=lambda: Acceptor.start(name, sock, hold_open)),
    ]
    return ChildSpec(name=name, start=lambda: Supervisor.start(name, children, directory=directory))
