"""Which sites an adapter config hits (PEFT's `target_modules` convention).

A list (or tuple) matches a site whose name equals an entry or ends with "." + entry;
a string is a regular expression that must match the whole site name. Matching nothing
is a ConfigError that lists the model's sites.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from plastic.errors import ConfigError


def match_sites(site_names: Sequence[str], targets: Sequence[str] | str) -> list[str]:
    """The site names hit by `targets`, in the model's site order."""
    if isinstance(targets, str):
        try:
            pattern = re.compile(targets)
        except re.error as exc:
            raise ConfigError(f"target_sites regex {targets!r} is invalid: {exc}") from None
        hits = [name for name in site_names if pattern.fullmatch(name)]
    else:
        keys = list(targets)
        hits = [
            name
            for name in site_names
            if any(name == key or name.endswith("." + key) for key in keys)
        ]
    if not hits:
        raise ConfigError(
            f"target_sites {targets!r} match no site; sites are: {', '.join(site_names)}"
        )
    return hits
