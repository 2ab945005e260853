"""Domain events: what a committed change looks like to the code that reacts to it.

A leaf module (pydantic only), so plugins can type their ``on_event`` hooks without loading
the server."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

EventKind = Literal["created", "updated", "removed", "restored"]


class DomainEvent(BaseModel):
    """One committed change of one aspect of one entity, as handed to ``on_event`` hooks.

    Delivery is at least once and in order per entity (``urn``): a handler may see an event
    again after a crash or a failed attempt, so it should be idempotent (``id`` is unique).
    """

    model_config = ConfigDict(frozen=True)

    id: int
    urn: str
    entity_type: str
    aspect: str
    kind: EventKind
    actor: str
    created_at: int  # UTC milliseconds of the transaction that made the change
    version: int  # the aspect's version this change wrote (1 = its first)
