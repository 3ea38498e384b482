"""The drift guard's probe text: a fixed paragraph of public-domain English prose.

`probe.txt` is the first paragraph of chapter I of G. K. Chesterton's "The Man Who Was
Thursday" (1908, public domain; Project Gutenberg), taken verbatim from the validation
split in ../shared/data/gutenberg. It is package data (see pyproject's package-data).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

PROBE_FILE = "probe.txt"


@lru_cache(maxsize=1)
def probe_text() -> str:
    """The shipped probe paragraph (about 1.9 KB)."""
    return resources.files("plastic.plasticity").joinpath(PROBE_FILE).read_text(encoding="utf-8")
