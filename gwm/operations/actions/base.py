"""What every action is made of: its parameter schema, its request and its declaration.

The resource modules beside this one declare the actions themselves; the
package gathers them into one registry (``gwm.operations.actions.ACTIONS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gwm.kit.names import GanetiName
from gwm.rapi import RapiClient

# Parameter schemas carry no docstrings on purpose: pydantic would publish a
# docstring as the schema's description in the OpenAPI document.


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    pass


class Changes(Params):
    """A modify body: it must change something, or Ganeti has nothing to do (422).

    An empty ``{}`` or ``[]`` changes nothing either.

    Fields named in ``modifiers`` only say how to change (``force``), not what.
    """

    modifiers: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _changes_something(self) -> Changes:
        changes = [
            name
            for name in type(self).model_fields
            if name not in self.modifiers and getattr(self, name) not in (None, {}, [])
        ]
        if not changes:
            settable = sorted(set(type(self).model_fields) - self.modifiers)
            raise ValueError(f"nothing to change: give at least one of {', '.join(settable)}")
        return self


# -- parameter schemas several resources share ------------------------------------


class Tags(Params):
    tags: list[str] = Field(min_length=1)


class NewName(Params):
    new_name: GanetiName


# -- sending an action to Ganeti ----------------------------------------------------


@dataclass(frozen=True)
class SendRequest:
    """One action to send: which resource, its (validated, dumped) parameters, and how."""

    #: The resource's name (unused by cluster actions).
    name: str
    params: dict[str, Any]
    #: The reason trail entry gwm adds to the job (``gwm:op:<id>``), or none.
    reason: str | None
    #: Ask Ganeti to check the request only (actions with ``dry_run=True``).
    dry_run: bool

    def kwargs(self, *names: str) -> dict[str, Any]:
        """The parameters among ``names`` that are set (not None), as keyword arguments."""
        return {name: self.params[name] for name in names if self.params.get(name) is not None}


Send = Callable[[RapiClient, SendRequest], int]
"""Send one action with the RAPI client; answers Ganeti's job id."""


@dataclass(frozen=True)
class Action:
    resource: str
    name: str
    params: type[Params]
    send: Send
    #: The status the resource shows while the job runs (BUSY, PROVISIONING,
    #: DELETING; docs/status-model.md), or None: the resource keeps its own.
    holds: str | None = None
    #: Ganeti's RAPI can check the request without running it (``?dry-run=1``).
    dry_run: bool = False
    #: Ganeti drops the reason on a few resources; adoption then matches opcodes.
    carries_reason: bool = True
    opcodes: tuple[str, ...] = ()
    summary: str = ""
    #: What the caller must hold to ask for it (gwm.accounts.verbs.VERBS).
    verb: str = "admin"

    @property
    def key(self) -> str:
        return f"{self.resource}.{self.name}"


class Declarations:
    """A resource's actions, each declared on the function that sends it.

    ``declare = Declarations("node", verb="manage_nodes")``, then
    ``@declare("drain", NoParams, holds="BUSY")`` above
    ``def modify_node_drained(client, request)``; ``declare.actions`` lists them
    in the order they are declared.
    """

    def __init__(self, resource: str, *, verb: str) -> None:
        self.resource = resource
        self.verb = verb  # the verb its actions need unless one says otherwise
        self.actions: list[Action] = []

    def __call__(
        self,
        name: str,
        params: type[Params],
        *,
        holds: str | None = None,
        dry_run: bool = False,
        carries_reason: bool = True,
        opcodes: tuple[str, ...] = (),
        summary: str = "",
        verb: str | None = None,
    ) -> Callable[[Send], Send]:
        def register(send: Send) -> Send:
            self.actions.append(
                Action(
                    self.resource,
                    name,
                    params,
                    send,
                    holds=holds,
                    dry_run=dry_run,
                    carries_reason=carries_reason,
                    opcodes=opcodes,
                    summary=summary,
                    # Tags are one verb on every resource, as in the old Web Manager.
                    verb=verb or ("tags" if name.endswith("-tags") else self.verb),
                )
            )
            return send

        return register
