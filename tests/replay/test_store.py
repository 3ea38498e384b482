"""The store: xarray opens every group with named dimensions; commits, continuing, refusing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plastic.errors import TraceError
from plastic.replay.reader import TraceReader
from plastic.replay.replay import ReplayOptions, replay
from tests.plasticity.conftest import weights_of
from tests.replay.conftest import record_plain


def all_groups(path: Path) -> list[str]:
    """Every group of the store that holds arrays (relative paths)."""
    groups = []
    for meta in path.rglob("zarr.json"):
        doc = json.loads(meta.read_text())
        if doc.get("node_type") != "group":
            continue
        rel = meta.parent.relative_to(path).as_posix()
        if any(
            json.loads(m.read_text()).get("node_type") == "array"
            for m in meta.parent.glob("*/zarr.json")
        ):
            groups.append("" if rel == "." else rel)
    return groups


def test_xarray_opens_every_array_group_with_named_dimensions(recorded) -> None:
    xr = pytest.importorskip("xarray")
    groups = all_groups(recorded.path)
    assert {"tokens", "events", "turns", "checkpoints", "states", "sites/site0"} <= set(groups)
    for group in groups:
        ds = xr.open_zarr(recorded.path, group=group or None, consolidated=False)
        assert ds.data_vars, group
        for name, var in ds.data_vars.items():
            assert all(not d.startswith("dim_") for d in var.dims), (group, name, var.dims)
    site = xr.open_zarr(recorded.path, group="sites/site0", consolidated=False)
    assert site["pre"].dims == ("step", "timestep", "pre_neuron")
    assert site["pre"].dtype == bool
    assert site.sizes["pre_neuron"] == 64
    network = xr.open_zarr(recorded.path, group="network", consolidated=False)
    n = TraceReader(recorded.path).n_tokens
    ffn = network["blocks.0.ffn"].isel(token=slice(0, n))  # clipped to the commit marker
    assert ffn.dims == ("token", "blocks.0.ffn.neuron") and ffn.shape[0] == n


def test_readers_clip_to_the_commit_marker(tmp_path: Path, recorded) -> None:
    import zarr

    path = tmp_path / "t.zarr"
    record_plain(path, recorded.model_dir, turns=1)
    before = TraceReader(path)
    n_tokens, n_steps = before.n_tokens, before.length("sites/site0/pre")
    # what a writer killed after appending (and before its commit marker) leaves behind
    root = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    root["tokens/id"].append(np.arange(7, dtype=np.uint16))
    root["sites/site0/pre"].append(np.ones((3, *root["sites/site0/pre"].shape[1:]), bool))
    after = TraceReader(path)
    assert after.n_tokens == n_tokens and after.read("tokens/id").shape == (n_tokens,)
    assert after.read("sites/site0/pre").shape[0] == n_steps
    assert replay(after, ReplayOptions(verify=True)).max_abs_diff == 0.0


def test_recording_into_an_existing_store_continues_it(tmp_path: Path, recorded) -> None:
    path = tmp_path / "t.zarr"
    record_plain(path, recorded.model_dir, turns=2)
    first = TraceReader(path)
    second_model = record_plain(path, recorded.model_dir, turns=1)  # a fresh adapter
    reader = TraceReader(path)
    assert len(reader.sessions) == 2
    assert reader.n_tokens > first.n_tokens
    assert not reader.sessions[1]["continues"]  # the new session started from zero weights
    result = replay(reader, ReplayOptions(verify=True))
    assert result.max_abs_diff == 0.0
    final = result.weights()["default/readout"]
    assert np.array_equal(final, weights_of(second_model)["default/readout"])


def test_state_rows_a_killed_writer_grew_are_cut_before_continuing(
    tmp_path: Path, recorded
) -> None:
    """A writer killed after growing the per-state arrays (reward states, context) and
    before its commit: the next session cuts them back, so its rows land at the committed
    length (appended after the stale ones, a state would read fill or a missing chunk)."""
    import zarr

    path = tmp_path / "t.zarr"
    record_plain(path, recorded.model_dir, turns=1)
    root = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    grown = []
    for group in ("rule_state", "reward_state", "context"):
        if f"sites/site0/{group}" in root:
            grown += [a for _, a in root[f"sites/site0/{group}"].arrays()]
            for _, sub in root[f"sites/site0/{group}"].groups():
                grown += [a for _, a in sub.arrays()]
    assert any("reward_state" in a.path for a in grown)
    for array in grown:
        array.resize((1024, *array.shape[1:]))  # what a killed writer's resize leaves
    record_plain(path, recorded.model_dir, turns=1)
    reader = TraceReader(path)
    reader.check()
    states = int(reader.committed["states"])
    root = zarr.open_group(str(path), mode="r", use_consolidated=False)
    for array in grown:
        assert root[array.path].shape[0] == states, array.path
    assert replay(reader, ReplayOptions(verify=True)).max_abs_diff == 0.0


def test_another_rule_or_backbone_is_refused_unless_forced(tmp_path: Path, recorded) -> None:
    path = tmp_path / "t.zarr"
    record_plain(path, recorded.model_dir, turns=1)
    size = TraceReader(path).n_tokens
    with pytest.raises(TraceError, match="--force"):
        record_plain(path, recorded.model_dir, turns=1, rule="hebb")
    assert TraceReader(path).n_tokens == size  # nothing written
    record_plain(path, recorded.model_dir, turns=1, rule="hebb", force=True)
    reader = TraceReader(path)
    assert len(reader.sessions) == 2
    assert reader.sessions[1]["adapters"]["default"]["rule"] == "hebb"
    assert replay(reader, ReplayOptions(verify=True)).max_abs_diff == 0.0


def test_other_backbone_is_refused(tmp_path: Path, recorded) -> None:
    import torch

    from plastic.models.checkpoint import save_model
    from plastic.models.spiking_lm import SpikingLM
    from tests.conftest import small_config

    path = tmp_path / "t.zarr"
    record_plain(path, recorded.model_dir, turns=1)
    torch.manual_seed(7)
    other = tmp_path / "other"
    save_model(SpikingLM(small_config()).eval(), other)
    with pytest.raises(TraceError, match="backbone"):
        record_plain(path, other, turns=1)


def test_a_directory_that_is_not_a_store_is_left_alone(tmp_path: Path, recorded) -> None:
    target = tmp_path / "notes"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(TraceError, match="not a trace store"):
        record_plain(target, recorded.model_dir, turns=1)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
