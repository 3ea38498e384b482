"""`plastic chat --learn`: the learning engine's slash commands and status on a ChatSession.

`attach_learning(session, learn)` makes the session read user turns through the engine
(observed text: the surprise reward), wrap replies in `generating()` (eligibility only),
close every turn with the engine's guards, show the engine's fields in the status line,
and adds `/learn on|off`, `/good`, `/bad`, `/undo`, `/score TEXT`, `/save DIR` and the
per-site learning figures of `/stats`. `attach_learning_unavailable(session)` registers
the same names with a note saying how to start a learning chat, so that `/good` in a
plain chat is never sent to the model as text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plastic.cli.chat.commands import CommandResult
from plastic.errors import PlasticError

if TYPE_CHECKING:
    from plastic.cli.chat.session import ChatSession
    from plastic.plasticity.chat_learning import ChatLearning

# the learning slash commands (`/stats` gains the learning figures besides)
COMMANDS = ("learn", "good", "bad", "undo", "score", "save")


def attach_learning(session: ChatSession, learn: ChatLearning) -> None:
    """Route the session's turns through `learn` and add its commands and status fields."""
    session.learner = learn
    session.status_fields.append(lambda turn: learn.status())
    session.on_reset.append(learn.on_reset)
    commands = LearningCommands(session, learn)
    for name in COMMANDS:
        session.commands.register(name, getattr(commands, f"cmd_{name}"))
    session.commands.register("stats", commands.cmd_stats)


def attach_learning_unavailable(session: ChatSession) -> None:
    """Register the learning commands as a one-line note: this chat was started without them."""

    def unavailable(args: str) -> CommandResult:
        return CommandResult(
            "learning is not on in this chat: start it with `plastic chat --learn` "
            "(or `--adapter DIR` to use a saved adapter)",
            ok=False,
        )

    for name in COMMANDS:
        method = getattr(LearningCommands, f"cmd_{name}")
        unavailable_named = _with_doc(unavailable, method.__doc__ or "")
        session.commands.register(name, unavailable_named)


def _with_doc(func: Callable[[str], CommandResult], doc: str) -> Callable[[str], CommandResult]:
    def wrapper(args: str) -> CommandResult:
        return func(args)

    wrapper.__doc__ = doc
    return wrapper


class LearningCommands:
    """The learning slash commands; each turns the engine's answer into a CommandResult."""

    def __init__(self, session: ChatSession, learn: ChatLearning) -> None:
        self.session = session
        self.learn = learn

    def _run(self, action: Callable[[], Any]) -> CommandResult:
        """The action's answer as a CommandResult; a PlasticError is a failed command."""
        try:
            answer = action()
        except PlasticError as exc:
            return CommandResult(str(exc), ok=False)
        return CommandResult(str(answer), {"learn": self.learn.status()})

    def cmd_learn(self, args: str) -> CommandResult:
        """/learn on|off: switch learning (saved adapters keep contributing either way)."""
        if args not in ("on", "off", ""):
            return CommandResult(f"/learn takes 'on' or 'off', not {args!r}", ok=False)
        return self._run(lambda: self.learn.set_learning({"on": True, "off": False}.get(args)))

    def cmd_good(self, args: str) -> CommandResult:
        """Reward the last reply (+1 through the eligibility traces)."""
        return self._run(lambda: self.learn.feedback(+1.0))

    def cmd_bad(self, args: str) -> CommandResult:
        """Punish the last reply (-1 through the eligibility traces)."""
        return self._run(lambda: self.learn.feedback(-1.0))

    def cmd_undo(self, args: str) -> CommandResult:
        """Put the adapters back as they were before the last turn (bit for bit)."""
        return self._run(self.learn.undo)

    def cmd_save(self, args: str) -> CommandResult:
        """/save DIR [force]: save the adapters and their learning state (resume: --adapter
        DIR). An existing DIR is replaced only with `force` (or `chat --force`), or, at an
        interactive prompt, when the user says so."""
        directory, _, flag = args.rpartition(" ")
        if flag != "force":
            directory, flag = args, ""
        directory, force = directory.strip(), bool(flag)
        confirm = self.session.confirm
        ask = confirm is not None and directory and not (force or self.learn.overwrite)
        if ask and _occupied(directory):
            if not confirm(f"{directory} exists: replace it?"):
                return CommandResult(f"not saved: {directory} is left as it was")
            force = True
        return self._run(lambda: self.learn.save(directory, force=force))

    def cmd_score(self, args: str) -> CommandResult:
        """/score TEXT: bits/byte of TEXT under the current adapters (learns nothing)."""
        try:
            figures = self.learn.score(args)
        except PlasticError as exc:
            return CommandResult(str(exc), ok=False)
        from plastic.plasticity.chat_learning import format_score  # lazy, as ChatLearning is

        return CommandResult(format_score(figures), figures)

    def cmd_stats(self, args: str) -> CommandResult:
        """Spike rates per site, and per adapter site: weight change, eligibility, reward."""
        rates = self.session.commands.cmd_stats(args)
        learning = self.learn.stats()
        lines = [rates.message, *format_learning_stats(learning)]
        return CommandResult("\n".join(lines), {**rates.data, "learning": learning})


_NOT_SHOWN = ("kind", "rule", "reward")  # on the adapter's own line already
_SITE_FIGURES = (  # shown by name on a site's line; any other figure follows as "name value"
    "weight_change_last_turn",
    "weight_change_since_attach",
    "weight_norm",
    "weight_range",
    "bounds",
    "eligibility_norm",
    "rule_baseline",
)


def _value(value: Any) -> str:
    """A setting as typed on the command line (`--set adapter.KEY=...`)."""
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, (list, tuple, dict, bool)) or value is None:
        return json.dumps(value)
    return str(value)


def _num(value: Any, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def format_learning_stats(stats: dict[str, Any]) -> list[str]:
    """The engine's /stats figures as lines: one header per adapter, one line per site."""
    probe = stats["probe"]
    lines = [
        f"learning {'on' if stats['learning'] else 'off'} · turns {stats['turns']} · "
        f"undo depth {stats['undo_depth']} · guards fired {stats['guard_events']} · "
        f"probe {_num(probe['last_bpb'], '.4f')} b/B (frozen {_num(probe['reference_bpb'], '.4f')}"
        f", margin {probe['margin']:g})"
    ]
    for name, adapter in stats["adapters"].items():
        baselines = adapter["reward_baselines"]
        rewards = ", ".join(
            f"{source} {_num(value, '+.3g')} (baseline {_num(baselines.get(source), '.3g')})"
            for source, value in adapter["last_reward"].items()
        )
        state = "enabled" if adapter["enabled"] else "disabled"
        lines.append(
            f"adapter {name}: {adapter['kind']}, rule {adapter['rule']}, {state}; "
            f"last rewards: {rewards or '-'}"
        )
        params = ", ".join(f"{k} {_value(v)}" for k, v in adapter.get("rule_params", {}).items())
        lines.append(f"  rule {adapter['rule']}: {params or '-'}")
        shown = {k: v for k, v in adapter.get("settings", {}).items() if k not in _NOT_SHOWN}
        lines.append("  settings: " + ", ".join(f"{k} {_value(v)}" for k, v in shown.items()))
        for site, fig in adapter["sites"].items():
            low, high = fig["weight_range"]
            extra = "".join(
                f" · {key.replace('_', ' ')} {_num(value)}"
                for key, value in fig.items()
                if key not in _SITE_FIGURES
            )
            lines.append(
                f"  {site}: Δw last turn {_num(fig['weight_change_last_turn'])} · "
                f"Δw since attach {_num(fig['weight_change_since_attach'])} · "
                f"|w| {_num(fig['weight_norm'])}, w in [{_num(low)}, {_num(high)}] "
                f"(bounds {fig['bounds'][0]:g}..{fig['bounds'][1]:g}) · "
                f"eligibility {_num(fig['eligibility_norm'])} · "
                f"rule baseline {_num(fig['rule_baseline'])}{extra}"
            )
    return lines


def _occupied(directory: str) -> bool:
    """Whether /save into `directory` would replace something (a file, a non-empty dir)."""
    path = Path(directory)
    return path.exists() and (not path.is_dir() or any(path.iterdir()))
