"""`python -m plastic` runs the CLI."""

from plastic.cli.main import main

main()
