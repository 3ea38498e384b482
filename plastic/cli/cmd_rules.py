"""`plastic rules`: list every registered learning rule with its parameters and defaults."""

from __future__ import annotations

import json
import warnings
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from plastic.cli.app import app

# column titles of the built-in adapter kinds (another kind's column is titled by its name)
KIND_COLUMNS = {"memory": "chat (memory)", "readout": "readout adapter", "residual": "residual"}


def adapter_defaults(rule_name: str) -> dict[str, dict[str, Any]]:
    """Per adapter kind that runs this rule, the parameters it runs the rule with by
    default (`plastic chat --learn --rule NAME` attaches a readout adapter)."""
    from plastic.errors import ConfigError
    from plastic.plasticity.config import AdapterConfig, default_rule_params
    from plastic.plasticity.kinds import get_kind, kind_names

    out = {}
    for kind in kind_names():
        try:  # the kind's own checks say whether it runs the rule
            AdapterConfig(kind=kind, rule=rule_name, reward=get_kind(kind).default_reward)
        except ConfigError:
            continue
        out[kind] = default_rule_params(kind, rule_name)
    return out


def _kind_columns() -> dict[str, str]:
    """Every known kind's column title, the built-ins first."""
    from plastic.plasticity.kinds import kind_names

    return {**KIND_COLUMNS, **{k: k for k in kind_names() if k not in KIND_COLUMNS}}


def describe_rule(source: Any, rule: Any) -> dict[str, Any]:
    """A JSON-able description of one rule: origin, summary, paper, backends, parameters
    (with each the value a readout adapter, the chat's, and a residual adapter use)."""
    kinds = adapter_defaults(rule.name)
    return {
        "name": rule.name,
        "origin": source.origin,
        "target": source.target,
        "summary": rule.summary,
        "paper": rule.paper,
        "uses_reward": bool(rule.uses_reward),
        "backends": list(rule.backends),
        "params": [
            {
                "name": spec.name,
                "default": spec.default,
                "adapter_defaults": {
                    kind: params.get(spec.name, spec.default) for kind, params in kinds.items()
                },
                "unit": spec.unit,
                "doc": spec.doc,
                **({"choices": list(spec.choices)} if spec.choices else {}),
            }
            for spec in rule.Params.describe()
        ]
        if hasattr(rule.Params, "describe")
        else [],
    }


def _rule_table(info: dict[str, Any]) -> Table:
    reward = "three-factor (uses reward)" if info["uses_reward"] else "two-factor"
    table = Table(
        title=f"[bold]{info['name']}[/bold]  [dim]({info['origin']})[/dim]",
        caption=f"{info['summary']}\n{reward}; backends: {', '.join(info['backends'])}"
        f"\npaper: {info['paper']}\n`plastic chat --learn` runs the memory (detector_stdp), "
        "`--rule NAME` a readout adapter; '-': that kind does not run this rule; change a "
        "value with --set rule.NAME=VALUE",
        title_justify="left",
        caption_justify="left",
        expand=False,
    )
    table.add_column("parameter", style="cyan", no_wrap=True)
    table.add_column("rule default", justify="right")
    columns = _kind_columns()
    for title in columns.values():
        table.add_column(title, justify="right")
    table.add_column("unit", style="dim")
    table.add_column("meaning")
    for spec in info["params"]:
        meaning = spec["doc"]
        if spec.get("choices"):
            meaning += f" [dim](one of {', '.join(spec['choices'])})[/dim]"
        used = spec.get("adapter_defaults", {})
        table.add_row(
            spec["name"],
            repr(spec["default"]),
            *(_used(used[kind], spec["default"]) if kind in used else "-" for kind in columns),
            spec["unit"],
            meaning,
        )
    return table


def _used(value: Any, default: Any) -> str:
    """An adapter's value, bold where it is not the rule's own default."""
    return repr(value) if value == default else f"[bold]{value!r}[/bold]"


@app.command("rules")
def rules_command(
    name: str = typer.Argument(None, help="Show only this rule."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON to stdout."),
) -> None:
    """List the learning rules (built-in and plugins) with their parameters and defaults."""
    from plastic.rules import registry

    err = Console(stderr=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", registry.PluginWarning)
        if name is None:
            loaded = registry.load_all()
        else:
            rule = registry.get_rule(name)  # RuleError (one red line) if unknown or broken
            loaded = [(registry.rule_sources()[name], rule)]
    for warning in caught:
        if issubclass(warning.category, registry.PluginWarning):
            err.print(f"[yellow]warning:[/yellow] {warning.message}", highlight=False)
    infos = [describe_rule(source, rule) for source, rule in loaded]
    if as_json:
        typer.echo(json.dumps(infos, indent=2))
        return
    out = Console()
    for info in infos:
        out.print(_rule_table(info))
        out.print()
