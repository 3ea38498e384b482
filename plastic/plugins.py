"""One plugin registry for learning rules and reward sources: built-ins, in-process
registrations and entry points, looked up the same way.

Each kind is an instance parameterised by what differs (the entry-point group, the
built-in table, the protocol check and the error type):

    RULES = PluginRegistry("learning rule", "plastic.rules", {"stdp": "mod"}, check, RuleError)
    RULES.get("stdp")              # imported on first use, checked, cached
    RULES.register(obj)            # in-process (tests, notebooks); usable as a decorator
    RULES.sources()                # name -> PluginSource, without importing anything

Conventions (after xarray's and zarr's plugin loaders, see NOTES): listing never imports;
the first source of a name wins in the order built-in, registered, entry point, and a
duplicate warns once (`PluginWarning`); a broken or incompatible plugin warns when listed
(`load_all`) and raises the registry's error when requested;
PLASTIC_DISABLE_PLUGIN_AUTOLOAD=1 ignores entry points (like pytest's variable).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import warnings
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any, Generic, TypeVar

from plastic.errors import PlasticError

T = TypeVar("T")
DISABLE_AUTOLOAD_ENV = "PLASTIC_DISABLE_PLUGIN_AUTOLOAD"


class PluginWarning(UserWarning):
    """A plugin is duplicated, broken, or incompatible (it is skipped, not fatal)."""


def plugins_disabled() -> bool:
    """Whether entry-point autoloading is turned off by the environment."""
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false")


@dataclasses.dataclass(frozen=True)
class PluginSource:
    """Where a plugin comes from, known without importing it."""

    name: str
    origin: str  # "builtin", "registered", or the providing distribution "name version"
    target: str  # what is imported: "module" or "module:attr"
    load: Callable[[], object] = dataclasses.field(repr=False, compare=False)


def import_target(target: str) -> object:
    """Import "module" or "module:attr.attr" and return the object."""
    module_name, _, attr = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def contract_problems(
    plugin: object,
    required: tuple[str, ...],
    api_version: int,
    callables: tuple[str, ...],
    note: str = "",
) -> list[str]:
    """What keeps `plugin` from a plugin contract: missing `required` attributes, another
    `api_version` (`note` follows that message), or `callables` that are not callable."""
    problems = [f"missing attribute {a!r}" for a in required if not hasattr(plugin, a)]
    if problems:
        return problems
    if getattr(plugin, "api_version", None) != api_version:
        problems.append(
            f"api_version {getattr(plugin, 'api_version', None)!r} != {api_version}{note}"
        )
    problems += [f"{fn} is not callable" for fn in callables if not callable(getattr(plugin, fn))]
    return problems


class PluginRegistry(Generic[T]):
    """Plugins of one kind, looked up by name (see the module docstring)."""

    def __init__(
        self,
        kind: str,
        group: str,
        builtins: Mapping[str, str],
        problems: Callable[[object], list[str]],
        error: type[PlasticError],
    ) -> None:
        self.kind = kind  # e.g. "reward source", used in messages
        self.group = group  # entry-point group
        self.builtins = dict(builtins)  # name -> import target
        self.problems = problems  # what keeps an object from being a valid plugin
        self.error = error
        self._registered: dict[str, PluginSource] = {}
        self._loaded: dict[str, T] = {}
        self._entry_points: list[PluginSource] | None = None
        self._warned: set[tuple[str, str, str]] = set()  # duplicates already warned about

    def _builtin_sources(self) -> list[PluginSource]:
        return [
            PluginSource(name, "builtin", target, lambda target=target: import_target(target))
            for name, target in self.builtins.items()
        ]

    def _entry_point_sources(self) -> list[PluginSource]:
        if self._entry_points is None:
            sources = []
            for ep in metadata.entry_points(group=self.group):
                dist = getattr(ep, "dist", None)
                origin = f"{dist.name} {dist.version}" if dist is not None else "entry point"
                sources.append(PluginSource(ep.name, origin, ep.value, ep.load))
            self._entry_points = sources
        return self._entry_points

    def refresh(self) -> None:
        """Forget cached entry points and loaded plugins (after installing one in-process)."""
        self._entry_points = None
        self._loaded.clear()
        self._warned.clear()

    def sources(self) -> dict[str, PluginSource]:
        """Every known plugin by name, without importing any of them. Duplicates warn."""
        candidates = self._builtin_sources() + list(self._registered.values())
        if not plugins_disabled():
            candidates += self._entry_point_sources()
        sources: dict[str, PluginSource] = {}
        for source in candidates:
            kept = sources.get(source.name)
            if kept is None:
                sources[source.name] = source
            elif (kept.origin, kept.target) != (source.origin, source.target):
                key = (source.name, source.origin, source.target)
                if key in self._warned:
                    continue
                self._warned.add(key)
                warnings.warn(
                    f"{self.kind} {source.name!r} from {source.origin} ({source.target}) is "
                    f"ignored: the name is already provided by {kept.origin} ({kept.target})",
                    PluginWarning,
                    stacklevel=3,
                )
        return sources

    def names(self) -> list[str]:
        """Names of every known plugin (sorted), without importing any of them."""
        return sorted(self.sources())

    def get(self, name: str) -> T:
        """The plugin called `name`, imported on first use and checked against the protocol."""
        if name in self._loaded:
            return self._loaded[name]
        sources = self.sources()
        source = sources.get(name)
        if source is None:
            known = ", ".join(sorted(sources)) or "none"
            raise self.error(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}")
        try:
            plugin = source.load()
        except Exception as exc:  # a broken plugin must not take the caller down
            raise self.error(
                f"{self.kind} {name!r} from {source.origin} failed to import "
                f"({source.target}): {type(exc).__name__}: {exc}"
            ) from exc
        problems = self.problems(plugin)
        if not problems and getattr(plugin, "name", None) != name:
            problems.append(
                f"its name attribute is {getattr(plugin, 'name', None)!r}, not {name!r}"
            )
        if problems:
            raise self.error(
                f"{self.kind} {name!r} from {source.origin} is not a valid plastic "
                f"{self.kind}: " + "; ".join(problems)
            )
        self._loaded[name] = plugin  # type: ignore[assignment]
        return plugin  # type: ignore[return-value]

    def load_all(self) -> list[tuple[PluginSource, T]]:
        """Import every known plugin; broken ones warn (PluginWarning) and are left out."""
        loaded = []
        for name, source in sorted(self.sources().items()):
            try:
                loaded.append((source, self.get(name)))
            except self.error as exc:
                warnings.warn(str(exc), PluginWarning, stacklevel=2)
        return loaded

    def register(
        self, plugin: Any = None, *, name: str | None = None, replace: bool = False
    ) -> Any:
        """Register a plugin object in this process; usable as a decorator.

        A name already registered raises unless `replace=True`; built-ins cannot be replaced.
        """

        def add(obj: Any) -> Any:
            plugin_name = name or getattr(obj, "name", None)
            if not isinstance(plugin_name, str) or not plugin_name:
                raise self.error(f"a {self.kind} needs a non-empty `name` to be registered")
            problems = self.problems(obj)
            if problems:
                raise self.error(
                    f"cannot register {self.kind} {plugin_name!r}: " + "; ".join(problems)
                )
            if plugin_name in self.builtins:
                raise self.error(
                    f"{plugin_name!r} is a built-in {self.kind} and cannot be replaced"
                )
            if plugin_name in self._registered and not replace:
                raise self.error(
                    f"{self.kind} {plugin_name!r} is already registered (pass replace=True)"
                )
            self._registered[plugin_name] = PluginSource(
                plugin_name, "registered", f"{type(obj).__module__}:{plugin_name}", lambda: obj
            )
            self._loaded.pop(plugin_name, None)
            return obj

        return add if plugin is None else add(plugin)

    def unregister(self, name: str) -> None:
        """Remove a plugin added with `register` (no error if it is not registered)."""
        self._registered.pop(name, None)
        self._loaded.pop(name, None)
