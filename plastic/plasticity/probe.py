"""The drift guard's probe text: a fixed paragraph of public-domain English prose.

`probe.txt` is the first paragraph of chapter I of G. K. Chesterton's "The Man Who Was
Thursday" (1908, public domain; Project Gutenberg), taken verbatim from the validation
split in ../shared/data/gutenberg. It is package data (see pyproject's package-data).
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

PROBE_FILE = "probe.txt"
CACHE_ENV = "PLASTIC_CACHE_DIR"  # the probe passes' cache ("" or "off": none)


@lru_cache(maxsize=1)
def probe_text() -> str:
    """The shipped probe paragraph (about 1.9 KB)."""
    return resources.files("plastic.plasticity").joinpath(PROBE_FILE).read_text(encoding="utf-8")


def probe_cache_dir() -> Path | None:
    """Where the frozen backbone's passes over the probe are kept between runs, so a chat
    that learns reads the probe with the backbone once per backbone, not once per process:
    $PLASTIC_CACHE_DIR (empty or "off": no cache), else $XDG_CACHE_HOME/plastic/probe
    (default ~/.cache/plastic/probe)."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0") else Path(value) / "probe"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "plastic" / "probe"
