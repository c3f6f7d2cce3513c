"""``BrokerContext.register_now`` when the registrar stops between its lookup and the tell
(the ControllerClient calls it from a heartbeat reply's handler: nothing may escape)."""

from __future__ import annotations

from typing import Any

from actors.broker.context import BrokerContext
from config import BrokerConfig
from runtime.actor import GeventActor
from runtime.directory import Directory


class Registrar(GeventActor):
    pass


class RacingDirectory(Directory):
    """Its lookup finds the registrar alive, which stops before the caller's tell."""

    def get(self, name: str) -> Any:
        ref = super().get(name)
        if ref is not None:
            ref.stop(timeout=5.0)
        return ref


def test_register_now_with_a_registrar_that_just_stopped_raises_nothing() -> None:
    # Given a registrar that stops between the lookup and the tell
    directory = RacingDirectory()
    directory.put("b/registrar", Registrar.start())
    ctx = BrokerContext(BrokerConfig(), directory, "b", store=None)
    # When the broker asks it to re-register, Then nothing is raised (ActorDeadError was)
    ctx.register_now()
    directory.put("b/registrar", Registrar.start())
    ctx.register_now("T")
