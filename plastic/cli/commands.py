"""Imports every command module so that each registers its commands on the app.

One import per line: each command lives in its own `cmd_*.py` module.
"""

from plastic.cli import cmd_train  # noqa: F401
from plastic.cli import cmd_chat  # noqa: F401
from plastic.cli import cmd_eval  # noqa: F401
from plastic.cli import cmd_bench_chat  # noqa: F401
from plastic.cli import cmd_rules  # noqa: F401
from plastic.cli import cmd_bench_kernels  # noqa: F401
from plastic.cli import cmd_replay  # noqa: F401
from plastic.cli import cmd_inspect  # noqa: F401
from plastic.cli import cmd_bench_trace  # noqa: F401
from plastic.cli import cmd_bench_adapt  # noqa: F401
from plastic.cli import cmd_bench_train  # noqa: F401
