"""Entry point of the `plastic` command: registers every command and turns errors into one line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from plastic.cli import app as app_module

# Importing a command module registers its commands on `app_module.app`.
from plastic.cli import commands  # noqa: F401  (registration side effect)
from plastic.errors import PlasticError, one_line

_err = Console(stderr=True, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a PlasticError prints one red line and exits 1, Ctrl-C exits 130."""
    try:
        # standalone_mode=False makes typer *return* the code of typer.Exit(n) and 130 for
        # Ctrl-C instead of raising: that return value is the exit status.
        code = app_module.app(args=argv, standalone_mode=False)
    except PlasticError as exc:
        if app_module.DEBUG["on"]:
            raise
        _err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, markup=True)
        sys.exit(1)
    except OSError as exc:  # a full disk, a permission, a vanished file: one line, exit 1
        if app_module.DEBUG["on"]:
            raise
        _err.print(f"[red]error:[/red] {escape(one_line(exc))}", highlight=False, markup=True)
        sys.exit(1)
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/yellow]")
        sys.exit(130)
    except typer.Exit as exc:  # typer.Exit is a RuntimeError: never swallow it as a failure
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err.print("[yellow]aborted[/yellow]")
        sys.exit(130)
    except Exception as exc:
        # click's usage errors (typer vendors click, so match by shape, not by class)
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if isinstance(code, int) and code != 0:
        if code == 130:
            _err.print("[yellow]interrupted[/yellow]")
        sys.exit(code)


if __name__ == "__main__":
    main()
