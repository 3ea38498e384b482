"""`plastic rules` on the command line."""

from __future__ import annotations

import json
import subprocess
import sys


def plastic(*args: str) -> subprocess.CompletedProcess:
    env_free = [sys.executable, "-m", "plastic", *args]
    return subprocess.run(env_free, capture_output=True, text=True, timeout=300)


def test_rules_lists_every_rule_with_parameters() -> None:
    result = plastic("rules", "--json")
    assert result.returncode == 0, result.stderr
    rules = {info["name"]: info for info in json.loads(result.stdout)}
    assert set(rules) >= {"stdp", "rstdp", "hebb"}
    rstdp = rules["rstdp"]
    assert rstdp["origin"] == "builtin" and rstdp["uses_reward"] is True
    assert "Florian 2007" in rstdp["paper"]
    params = {p["name"]: p for p in rstdp["params"]}
    assert params["tau_eligibility"]["default"] == 200.0
    assert params["tau_eligibility"]["unit"] == "steps"


def test_rules_table_and_unknown_rule() -> None:
    table = plastic("rules", "stdp")
    assert table.returncode == 0
    assert "max_step_update" in table.stdout and "weight_dependence" in table.stdout
    missing = plastic("rules", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "error: unknown learning rule 'nope'; known learning rules: "
        "delta_mixer, detector_stdp, hebb, rstdp, stdp"
    ]
