"""The `plastic` command line (typer + rich)."""
