"""The registry of job targets: the only code a scheduled job can run.

A module registers its targets when it is imported (`@target(...)`), each with its declared parameters; a job
row names a target by its registered name and carries arguments checked against those parameters, so nothing
from the API is ever imported or called by path. A target with a `system_cron` is also a system job, created
by the platform itself on start-up (it can be paused, not deleted).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import bad_input
from models.operations import MisfirePolicy

if TYPE_CHECKING:
    from resolvers.operations.runs import RunContext

Run = Callable[["RunContext"], Awaitable[int]]  # returns the rows it affected

_KINDS: dict[str, type] = {"int": int, "bool": bool, "str": str}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # int | bool | str
    description: str = ""
    default: Any = None  # what a run gets when the job does not say (None: the target decides)
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = 200

    def check(self, value: Any) -> Any:
        expected = _KINDS[self.kind]
        # JSON has one number type and bool is an int in Python: neither is taken for the other.
        if isinstance(value, bool) is not (expected is bool) or not isinstance(value, expected):
            raise bad_input(f"Argument {self.name} must be a {self.kind}", "args")
        number = int(value) if self.kind == "int" else 0
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            raise bad_input(f"Argument {self.name} must be between {self.minimum} and {self.maximum}", "args")
        if self.kind == "str" and (len(value) > self.max_length or not value.isprintable()):
            raise bad_input(f"Argument {self.name}: at most {self.max_length} printable characters", "args")
        return value


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    run: Run
    params: tuple[Param, ...] = ()
    system_cron: str | None = None  # set: a system job the platform creates with this schedule
    system_misfire: MisfirePolicy = MisfirePolicy.RUN_ONCE

    def check_args(self, args: Any) -> dict[str, Any]:
        """The arguments as stored: known names only, each of its declared type and range."""
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise bad_input("args must be an object of the target's parameters", "args")
        known = {param.name: param for param in self.params}
        unknown = sorted(set(args) - set(known))
        if unknown:
            raise bad_input(f"{self.name} takes no argument {', '.join(unknown)}", "args")
        checked: dict[str, Any] = {}
        for name, param in known.items():
            if name in args and args[name] is not None:
                checked[name] = param.check(args[name])
            elif param.required:
                raise bad_input(f"{self.name} needs the argument {name}", "args")
        return checked

    def arguments(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """What a run gets: the stored arguments over the declared defaults."""
        values = {param.name: param.default for param in self.params}
        values.update({key: value for key, value in stored.items() if key in values})
        return values


TARGETS: dict[str, Target] = {}


def target(
    name: str,
    description: str,
    *params: Param,
    system_cron: str | None = None,
    system_misfire: MisfirePolicy = MisfirePolicy.RUN_ONCE,
) -> Callable[[Run], Run]:
    """Register the decorated coroutine function as a job target under `name`."""

    def register(run: Run) -> Run:
        if name in TARGETS:
            raise ValueError(f"job target {name} registered twice")
        TARGETS[name] = Target(name, description, run, params, system_cron, system_misfire)
        return run

    return register


def unregister(name: str) -> None:
    """Take a target out of the registry (a module unloaded; tests that register their own)."""
    TARGETS.pop(name, None)


def find(name: str) -> Target:
    found = TARGETS.get(name)
    if found is None:
        raise bad_input(f"No job target {name}: jobs run registered targets only (jobTargets lists them)", "target")
    return found
