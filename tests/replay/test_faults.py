"""Fault injection on trace stores: a second writer, damaged chunks (deleted, truncated,
bit-flipped), a writer killed at random points. Nothing is ever read back silently wrong:
every command either gives the pristine answer or one error line and exit code 1."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plastic.errors import TraceError
from plastic.models.checkpoint import resolve_model
from plastic.plasticity import AdapterConfig, PlasticModel
from plastic.replay import analysis
from plastic.replay.lock import LOCK_NAME
from plastic.replay.reader import TraceReader
from plastic.replay.recorder import TraceRecorder
from plastic.replay.replay import OpenLoopReplay, ReplayOptions
from plastic.replay.store import unfinished_creation
from tests.cli.test_errors import assert_one_line_error, run_main
from tests.plasticity.conftest import FACT
from tests.replay.conftest import record_plain, save_small_model

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, Path]:
    """(store, model_dir): two taught turns recorded on the small model."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("faults")
    model_dir = save_small_model(root / "model")
    store = root / "pristine.zarr"
    record_plain(store, model_dir, turns=2)
    return store, model_dir


@pytest.fixture
def store(pristine, tmp_path: Path) -> Path:
    """A fresh copy of the pristine store, free to damage."""
    copy = tmp_path / "copy.zarr"
    shutil.copytree(pristine[0], copy)
    return copy


def chunks(store: Path, under: str = "") -> list[Path]:
    return sorted(p for p in (store / under).rglob("*") if p.is_file() and "c" in p.parts[-4:])


def chunk_of(store: Path, array: str) -> Path:
    found = [p for p in chunks(store, array) if "c" in p.relative_to(store / array).parts[:1]]
    assert found, f"no chunk under {array}"
    return found[0]


def answers(store: Path) -> dict:
    """What inspect and replay --verify read from a store (TraceError if damaged)."""
    reader = TraceReader(store)
    sites = reader.sites
    report = {
        "rates": analysis.rates_report(reader, sites, 5),
        "weights": analysis.weights_report(reader, sites),
        "reward": analysis.reward_report(reader),
    }
    result = OpenLoopReplay(reader, ReplayOptions(None, {}, None, 1, True, None)).run()
    report["verify"] = (len(result.checkpoint_diffs), result.max_abs_diff)
    report["weights_out"] = {k: s.weights.copy() for k, s in result.synapses.items()}
    return report


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return a == b


def run_all(argv: list[str], capsys) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    from plastic.cli.main import main

    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- one writer per store ------------------------------------------------------------------
def test_second_writer_is_refused_naming_the_holder(pristine, tmp_path: Path) -> None:
    store = tmp_path / "new.zarr"
    with torch.no_grad():
        model = PlasticModel(resolve_model(str(pristine[1])))
        model.add_adapter("default", AdapterConfig(rule="rstdp"))
        first = TraceRecorder.attach(model, store)
        try:
            other = PlasticModel(resolve_model(str(pristine[1])))
            other.add_adapter("default", AdapterConfig(rule="rstdp"))
            with pytest.raises(TraceError, match=f"pid {os.getpid()}"):
                TraceRecorder.attach(other, store)
            assert TraceReader(store).n_tokens == 0  # readers take no lock
        finally:
            first.close()
        TraceRecorder.attach(other, store).close()  # released on close: a new writer is fine


def lock_holder(store: Path) -> subprocess.Popen:
    """Another process holding the store's writer lock until killed."""
    code = (
        "import sys, time; from pathlib import Path; from plastic.replay.lock import WriterLock;"
        "lock = WriterLock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(store)], stdout=subprocess.PIPE, env=ENV, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_concurrent_recording_is_refused_and_sigkill_releases_the_lock(store, pristine, capsys):
    before = TraceReader(store).n_tokens
    holder = lock_holder(store)
    try:
        argv = record_argv(pristine[1], store)
        code, err = run_main([*argv, "--prompt", FACT, "--max-new-tokens", "4"], capsys)
        assert_one_line_error(code, err, f"pid {holder.pid}", "one writer")
        assert TraceReader(store).n_tokens == before  # nothing written, store still readable
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    code, _, err = run_all([*argv, "--prompt", FACT, "--max-new-tokens", "4"], capsys)
    assert code == 0, err  # the kernel released the killed holder's lock
    assert TraceReader(store).n_tokens > before
    assert (store / LOCK_NAME).is_file()


# -- damaged chunks ------------------------------------------------------------------------
def damage(path: Path, how: str) -> None:
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:  # one flipped bit in the middle
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["delete", "truncate", "flip"])
@pytest.mark.parametrize("array", ["tokens/bits", "sites/site0/pre", "sites/site0/token"])
def test_damaged_chunk_fails_inspect_and_replay(store, capsys, array: str, how: str) -> None:
    damage(chunk_of(store, array), how)
    code, err = run_main(["inspect", str(store), "--rates", "--reward", "--json"], capsys)
    assert_one_line_error(code, err, "trace damaged at", array)
    code, err = run_main(["inspect", str(store), "--check"], capsys)
    assert_one_line_error(code, err, "trace damaged at", array)


def test_damaged_store_writes_no_adapter(store, pristine, tmp_path: Path, capsys) -> None:
    damage(chunk_of(store, "sites/site0/pre"), "delete")
    out = tmp_path / "adapter"
    argv = ["replay", str(store), "--out", str(out), "--model", str(pristine[1])]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "trace damaged at sites/site0/pre")
    assert not out.exists()


def test_missing_eligibility_fails_verify_with_valid_json(store, capsys) -> None:
    damage(chunk_of(store, "sites/site0/rule_state/rstdp/eligibility"), "delete")
    code, err = run_main(["replay", str(store), "--verify", "--json"], capsys)
    assert_one_line_error(code, err, "trace damaged at", "eligibility")


def test_nan_never_passes_verify(store, capsys, monkeypatch) -> None:
    """A verification that computes NaN (damaged state in an old store, without checksums)
    fails with exit 1, and the --json line printed before is still valid JSON."""
    real = OpenLoopReplay.run

    def nan_run(self):
        result = real(self)
        result.checkpoint_diffs = [{"default/readout": float("nan")}]
        return result

    monkeypatch.setattr(OpenLoopReplay, "run", nan_run)
    code, out, err = run_all(["replay", str(store), "--verify", "--json"], capsys)
    assert code == 1 and "verify failed" in err and len(err.strip().splitlines()) == 1
    assert json.loads(out)["max_abs_diff"] is None  # NaN is not JSON: null
    code, out, err = run_all(["replay", str(store), "--verify"], capsys)
    assert code == 1 and "FAILED" in out


def test_check_of_a_good_store(store, capsys) -> None:
    code, out, err = run_all(["inspect", str(store), "--check", "--json"], capsys)
    assert code == 0, err
    verified = json.loads(out)
    assert verified["check"] == "ok" and verified["arrays"] >= 30 and verified["rows"] > 0
    code, out, err = run_all(["inspect", str(store), "--check"], capsys)
    assert code == 0 and out.startswith(f"{store}: ok")


# -- property: damage is never read back silently ------------------------------------------
MUTATIONS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10_000),  # which chunk file
        st.sampled_from(["delete", "truncate", "flip"]),
        st.integers(min_value=0, max_value=1 << 20),  # where (byte offset, truncation length)
        st.integers(min_value=0, max_value=7),  # which bit
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutations=MUTATIONS)
def test_fuzz_damage_is_detected_or_harmless(pristine, tmp_path: Path, mutations) -> None:
    reference = _reference(pristine[0])
    store = tmp_path / f"fuzz-{random.getrandbits(48):x}.zarr"
    shutil.copytree(pristine[0], store)
    try:
        files = chunks(store)
        originals = {path: path.read_bytes() for path in files}
        for index, how, where, bit in mutations:
            path = files[index % len(files)]
            if not path.exists():
                continue
            data = bytearray(path.read_bytes())
            if how == "delete":
                path.unlink()
            elif how == "truncate":
                path.write_bytes(bytes(data[: where % max(len(data), 1)]))
            elif data:  # a flip of an emptied file changes nothing
                data[where % len(data)] ^= 1 << bit
                path.write_bytes(bytes(data))
        # two flips of one bit cancel: only a file that differs now is damage
        changed = any(
            not path.exists() or path.read_bytes() != before for path, before in originals.items()
        )
        try:
            got = answers(store)
        except TraceError as exc:
            assert "\n" not in str(exc) and "trace damaged at" in str(exc)
            got = None
        if got is not None:  # a clean answer must be the right one
            assert same(got, reference)
        if changed:
            with pytest.raises(TraceError, match="trace damaged at"):
                TraceReader(store).check()
    finally:
        shutil.rmtree(store, ignore_errors=True)


_REFERENCES: dict[Path, dict] = {}


def _reference(store: Path) -> dict:
    if store not in _REFERENCES:
        _REFERENCES[store] = answers(store)
    return _REFERENCES[store]


# -- a writer killed at random points ------------------------------------------------------
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_at_random_points_never_damages_committed_data(pristine, tmp_path: Path, capsys):
    """A chat recording killed at random moments (start-up included): the store always
    passes --check (or was never created), and the next writer is never locked out."""
    rng = random.Random(16)
    script = tmp_path / "script.txt"
    script.write_text("\n".join([FACT, "/good", FACT, FACT]) + "\n")
    store = tmp_path / "killed.zarr"
    argv = [sys.executable, "-m", "plastic.cli.main", "chat", "--model", str(pristine[1])]
    argv += [
        "--learn",
        "--rule",
        "rstdp",
        "--record",
        str(store),
        "--script",
        str(script),
        "--json",
    ]
    argv += ["--max-new-tokens", "8", "--seed", "0"]
    for _ in range(2):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        time.sleep(rng.uniform(1.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        # a store whose creation was killed holds nothing (the next writer starts it over)
        if (store / "zarr.json").is_file() and not unfinished_creation(store):
            TraceReader(store).check()
    done = subprocess.run(argv, capture_output=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    reader = TraceReader(store)
    reader.check()
    assert reader.n_turns >= 4


def test_full_disk_during_replay_out_is_one_line(store, pristine, tmp_path: Path) -> None:
    """Files limited to 16 KiB (a disk that fills up): exit 1, one line, no partial --out."""
    from tests.cli.test_chat_save import limited_run

    out = tmp_path / "adapter"
    argv = [sys.executable, "-m", "plastic.cli.main", "replay", str(store), "--out", str(out)]
    done = limited_run([*argv, "--model", str(pristine[1])], 16 * 1024)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot save to" in lines[0] and "too large" in lines[0].lower()
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".adap")]


def test_verify_without_a_committed_checkpoint(store, capsys) -> None:
    """A store killed before its first checkpoint: a one-line failure, no "nan" verdict."""
    import zarr

    root = zarr.open_group(str(store), mode="r+", use_consolidated=False)
    committed = dict(root.attrs["committed"])
    root.attrs["committed"] = {**committed, "checkpoints": 0}
    code, out, err = run_all(["replay", str(store), "--verify"], capsys)
    assert code == 1 and "no committed checkpoint" in err and "nan" not in out + err


@pytest.mark.parametrize(
    "name, needle", [("figure.txt", "not .txt"), ("missing/figure.png", "does not exist")]
)
def test_plot_paths_are_checked_first(store, tmp_path: Path, capsys, name, needle) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / name
    code, err = run_main(["inspect", str(store), "--rates", "--plot", str(target)], capsys)
    assert_one_line_error(code, err, needle)
    assert not target.exists()
    assert target.parent.exists() == (target.parent == tmp_path)  # no directory created


def record_argv(model_dir: Path, store: Path) -> list[str]:
    """`plastic chat` learning with the readout adapter (traces cover it) into `store`."""
    return ["chat", "--model", str(model_dir), "--learn", "--rule", "rstdp", "--record", str(store)]


def test_recording_into_a_damaged_store_is_refused(store, pristine, capsys) -> None:
    damage(chunk_of(store, "turns/kind"), "delete")
    argv = record_argv(pristine[1], store)
    code, err = run_main([*argv, "--prompt", FACT, "--max-new-tokens", "4"], capsys)
    assert_one_line_error(code, err, "trace damaged at turns/kind", "record into a new store")
