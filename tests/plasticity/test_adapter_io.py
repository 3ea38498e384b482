"""Saving and loading adapters: same score, same continued learning, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from plastic.errors import CheckpointError
from plastic.models.generate import Conversation
from plastic.plasticity import AdapterConfig, PlasticModel
from plastic.plasticity.adapter_io import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    rng_from_array,
    rng_to_array,
)
from tests.plasticity.conftest import FACT, chat_turn, make_backbone, make_plastic, weights_of

RESIDUAL = AdapterConfig(kind="residual", kind_params={"size": 16}, seed=9)


def _trained(tmp_path: Path) -> tuple[PlasticModel, Path]:
    model = make_plastic()
    model.add_adapter("res", RESIDUAL)
    conv = Conversation(model, seed=0)
    for _ in range(2):
        chat_turn(model, conv, FACT)
    out = tmp_path / "adapter"
    model.save(out)
    return model, out


def test_saved_layout_and_config(tmp_path: Path) -> None:
    model, out = _trained(tmp_path)
    assert (out / CONFIG_FILE).is_file() and (out / WEIGHTS_FILE).is_file()
    assert (out / "res" / CONFIG_FILE).is_file()  # named adapters in subfolders (PEFT)
    doc = json.loads((out / CONFIG_FILE).read_text())
    assert doc["format_version"] == 2 and doc["plastic_version"]
    assert doc["backbone"]["content_hash"] == model.backbone_hash
    assert doc["sites"] == ["readout"]
    assert doc["config"]["rule_params"]["tau_pre"] == 2.0  # effective params are recorded
    arrays = load_file(str(out / WEIGHTS_FILE))
    assert {"sites.readout.weights", "sites.readout.rule.eligibility", "rng.pcg64"} <= set(arrays)
    assert any(k.startswith("rewards.surprise.") for k in arrays)


def test_a_loaded_adapter_scores_and_keeps_learning_the_same(tmp_path: Path) -> None:
    model, out = _trained(tmp_path)
    loaded = PlasticModel.from_pretrained(make_backbone(), out)
    assert loaded.adapter_names == ["default", "res"]
    assert loaded.engine.score(FACT) == model.engine.score(FACT)
    for name in ("default", "res"):
        assert loaded.adapters[name].counters == model.adapters[name].counters
    # continued learning from a fresh conversation is identical
    for m in (model, loaded):
        chat_turn(m, Conversation(m, seed=1), "Quimby hums at dawn, said the zorblat.")
    a, b = weights_of(model), weights_of(loaded)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert loaded.engine.score(FACT) == model.engine.score(FACT)


def test_loading_onto_another_backbone_is_a_clear_error(tmp_path: Path) -> None:
    _, out = _trained(tmp_path)
    other = PlasticModel(make_backbone(seed=99))
    with pytest.raises(CheckpointError, match="trained on backbone .* not on the loaded model"):
        other.load(out)
    assert other.adapter_names == []  # nothing half-attached


def test_a_wrong_shape_weight_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    _, out = _trained(tmp_path)
    path = out / WEIGHTS_FILE
    arrays = load_file(str(path))
    arrays["sites.readout.weights"] = np.zeros((3, 4), np.float32)
    save_file(arrays, str(path))
    target = PlasticModel(make_backbone())
    with pytest.raises(CheckpointError, match=r"has shape \[3, 4\]") as info:
        target.load(out)
    assert "\n" not in str(info.value)
    assert "default" not in target.adapter_names


def test_out_of_bounds_or_nan_weights_are_refused(tmp_path: Path) -> None:
    _, out = _trained(tmp_path)
    path = out / WEIGHTS_FILE
    arrays = load_file(str(path))
    arrays["sites.readout.weights"] = arrays["sites.readout.weights"] + np.float32(5.0)
    save_file(arrays, str(path))
    with pytest.raises(CheckpointError, match="outside the rule's bounds"):
        PlasticModel(make_backbone()).load(out)
    arrays["sites.readout.weights"][0, 0] = np.nan
    save_file(arrays, str(path))
    with pytest.raises(CheckpointError, match="NaN"):
        PlasticModel(make_backbone()).load(out)


def test_corrupt_files_are_checkpoint_errors(tmp_path: Path) -> None:
    _, out = _trained(tmp_path)
    (out / "res" / WEIGHTS_FILE).write_bytes(b"\x00garbage")
    target = PlasticModel(make_backbone())
    with pytest.raises(CheckpointError, match="corrupt adapter weights"):
        target.load(out)
    assert target.adapter_names == []  # all or nothing
    (out / CONFIG_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt adapter config"):
        PlasticModel(make_backbone()).load(out)
    with pytest.raises(CheckpointError, match="no such adapter directory"):
        PlasticModel(make_backbone()).load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not an adapter directory"):
        PlasticModel(make_backbone()).load(tmp_path / "empty")


def test_newer_formats_are_refused_and_unknown_keys_warn(tmp_path: Path) -> None:
    model = make_plastic()
    out = tmp_path / "a"
    model.save(out)
    doc = json.loads((out / CONFIG_FILE).read_text())
    doc["config"]["shiny_new_option"] = True
    (out / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="shiny_new_option"):
        PlasticModel(make_backbone()).load(out)
    doc["format_version"] = 99
    (out / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="newer than this plastic"):
        PlasticModel(make_backbone()).load(out)


def test_loading_an_already_attached_name_needs_replace(tmp_path: Path) -> None:
    model, out = _trained(tmp_path)
    with pytest.raises(CheckpointError, match="already attached"):
        model.load(out)
    model.reset()
    model.load(out, replace=True)
    assert (
        model.adapters["default"]
        .layers["readout"]
        .synapses.change_norm(np.zeros_like(model.adapters["default"].layers["readout"].weights))
        > 0
    )


def test_rng_state_round_trips() -> None:
    rng = np.random.default_rng(5)
    rng.random(3)
    again = rng_from_array(rng_to_array(rng))
    assert np.array_equal(rng.random(4), again.random(4))


# A version 1 adapter_config.json kept every kind's settings flat, side by side.
V1_DEFAULTS = {
    "scale": None,
    "size": 256,
    "beta": 0.9,
    "threshold": 1.0,
    "init_std": None,
    "sharpness": 3.0,
    "recall_threshold": 0.5,
    "memory_tau": 0.0,
    "gate_power": 0.0,
    "cache_mix": 0.4,
    "cache_mix_gated": True,
    "confidence_power": 2.5,
    "mix_doubt_power": 0.5,
    "mix_purity_power": 0.0,
    "context_tau": 1000.0,
    "context_signature_tau": 2000.0,
    "context_tolerance": 0.002,
    "sampled_posts": 0,
}


def saved_as_v1(model: PlasticModel, out: Path, drop: tuple[str, ...] = (), **flat) -> Path:
    """Save `model` and rewrite its config as format version 1 wrote it (flat settings),
    without the keys in `drop` (saved before they existed) and with `flat` set."""
    model.save(out)
    for folder in [out, *(p for p in out.iterdir() if p.is_dir())]:
        doc = json.loads((folder / CONFIG_FILE).read_text())
        config = doc["config"]
        own = config.pop("kind_params")
        config.update({**V1_DEFAULTS, **own, "kind_params": {}, **flat})
        for key in drop:
            del config[key]
        doc["format_version"] = 1
        (folder / CONFIG_FILE).write_text(json.dumps(doc))
    return out


def test_a_version_1_adapter_loads_and_runs_the_same(tmp_path: Path) -> None:
    model, _ = _trained(tmp_path)
    loaded = PlasticModel.from_pretrained(make_backbone(), saved_as_v1(model, tmp_path / "v1"))
    for name in ("default", "res"):
        saved, again = model.adapters[name].config, loaded.adapters[name].config
        assert (again.kind, again.kind_params) == (saved.kind, saved.kind_params)
        params = [
            a.layers[a.sites[0]].synapses.params
            for a in (model.adapters[name], loaded.adapters[name])
        ]
        assert params[0] == params[1]
    assert loaded.engine.score(FACT) == model.engine.score(FACT)
    for m in (model, loaded):
        chat_turn(m, Conversation(m, seed=1), FACT)
    for name, w in weights_of(model).items():
        np.testing.assert_array_equal(weights_of(loaded)[name], w)


def test_a_version_1_adapter_saved_before_the_cache_mix_stays_additive(tmp_path: Path) -> None:
    """Keys added during version 1 take the value the adapter was trained with."""
    model = make_plastic()
    chat_turn(model, Conversation(model, seed=0), FACT)
    out = saved_as_v1(model, tmp_path / "v1", drop=("cache_mix", "confidence_power"))
    loaded = PlasticModel.from_pretrained(make_backbone(), out)
    settings = loaded.adapters["default"].config.settings
    assert (settings.cache_mix, settings.confidence_power) == (0.0, 1.0)
    assert loaded.engine.score(FACT) != model.engine.score(FACT)  # added, not mixed


@pytest.mark.parametrize(
    "key, value", [("gate_power", 0.5), ("sampled_posts", 2), ("memory_tau", 100.0)]
)
def test_a_version_1_adapter_with_a_dropped_setting_is_refused_in_one_line(
    tmp_path: Path, key: str, value: object
) -> None:
    out = saved_as_v1(make_plastic(), tmp_path / "v1", **{key: value})
    with pytest.raises(CheckpointError) as info:
        PlasticModel.from_pretrained(make_backbone(), out)
    message = str(info.value)
    assert "\n" not in message and f"{key} = {value!r}" in message
    assert f"set {key} to" in message  # how to convert it
    neutral = {"gate_power": 0.0, "sampled_posts": 0, "memory_tau": 0.0}[key]
    out = saved_as_v1(make_plastic(), tmp_path / "neutral", **{key: neutral})
    assert PlasticModel.from_pretrained(make_backbone(), out).adapter_names == ["default"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("sites.readout.rule.eligibility", np.nan),
        ("sites.readout.rule.baseline", np.inf),
        ("sites.readout.rule.x_pre", -np.inf),
        ("rewards.surprise.stats", np.nan),
    ],
)
def test_non_finite_learning_state_is_refused_on_load(tmp_path: Path, key, value) -> None:
    """NaN or inf in a trace, eligibility or baseline used to load, then crash mid-reply."""
    _, out = _trained(tmp_path)
    path = out / WEIGHTS_FILE
    arrays = load_file(str(path))
    arrays[key].reshape(-1)[0] = value
    save_file(arrays, str(path))
    target = PlasticModel(make_backbone())
    with pytest.raises(CheckpointError, match=f"{key} holds NaN or infinite values"):
        target.load(out)
    assert target.adapter_names == []


def test_bad_counters_rng_and_seed_are_refused_on_load(tmp_path: Path) -> None:
    _, out = _trained(tmp_path)
    config_path = out / CONFIG_FILE
    good = json.loads(config_path.read_text())
    for change, needle in [
        ({"counters": {**good["counters"], "turns": "3"}}, "counter turns"),
        ({"counters": {**good["counters"], "turns": -1}}, "counter turns"),
        ({"counters": {**good["counters"], "last_reward": None}}, "counter last_reward"),
        ({"counters": [1, 2]}, "counters must be an object"),
        ({"enabled": "yes"}, "enabled must be true or false"),
        ({"config": {**good["config"], "seed": -4}}, "seed must be a whole number"),
        ({"config": {**good["config"], "seed": "7"}}, "seed must be a whole number"),
    ]:
        config_path.write_text(json.dumps({**good, **change}))
        with pytest.raises(CheckpointError, match=needle):
            PlasticModel(make_backbone()).load(out)
    config_path.write_text(json.dumps(good))
    path = out / WEIGHTS_FILE
    arrays = load_file(str(path))
    arrays["rng.pcg64"] = arrays["rng.pcg64"][:4]
    save_file(arrays, str(path))
    with pytest.raises(CheckpointError, match="rng.pcg64"):
        PlasticModel(make_backbone()).load(out)
    arrays = load_file(str(path))
    arrays["rng.pcg64"] = np.zeros(6, np.uint64)
    arrays["sites.readout.rule.step"] = np.array([-5], np.int64)
    save_file(arrays, str(path))
    with pytest.raises(CheckpointError, match="negative"):
        PlasticModel(make_backbone()).load(out)
