"""Checkpoint files: what they hold, that loading never runs code, that a write killed
at any moment leaves the previous checkpoint loadable, and the message for every
kind of file that is not a good checkpoint."""

import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from minigan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minigan.train import Config, ConfigError, Trainer, read_checkpoint, resumed_config

TINY = dict(limit=16, batch_size=8, epochs=1, metrics=False)


def _arrays(value):
    return {"G": {"0.weight": np.full((3, 4), value, np.float32)}, "opt_g": {"0": {"exp_avg": np.zeros(5)}}}


def test_round_trip_keeps_nesting_dtypes_and_meta(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _arrays(1.5), {"step": 7, "rng": {"state": 2**100}})
    arrays, meta = load_checkpoint(path)
    assert meta == {"step": 7, "rng": {"state": 2**100}}
    assert arrays["G"]["0.weight"].dtype == np.float32
    np.testing.assert_array_equal(arrays["G"]["0.weight"], np.full((3, 4), 1.5))
    assert arrays["opt_g"]["0"]["exp_avg"].shape == (5,)


def test_overwrite_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _arrays(1.0), {"step": 1})
    save_checkpoint(path, _arrays(2.0), {"step": 2})
    assert os.listdir(tmp_path) == ["c.npz"]
    assert load_checkpoint(path)[1] == {"step": 2}


def test_a_name_with_a_slash_or_a_folder_for_a_path_is_refused_clearly(tmp_path):
    # '/' separates a checkpoint's levels: "enc/dec.weight" came back as {"enc": {"dec.weight": ...}}.
    with pytest.raises(ValueError, match=r"cannot save 'G/enc/dec.weight'.*'/' separates its levels"):
        save_checkpoint(tmp_path / "c.npz", {"G": {"enc/dec.weight": np.zeros(2)}}, {})
    # A folder as the path: the error named the temporary file the rename came from.
    with pytest.raises(IsADirectoryError, match=f"cannot write {re.escape(repr(str(tmp_path)))}: it is a folder"):
        save_checkpoint(tmp_path, _arrays(1.0), {})
    assert os.listdir(tmp_path) == []


def test_a_checkpoint_gets_the_mode_of_any_new_file(tmp_path):
    """0666 less the umask, as np.savez gives (the temporary file must not keep it private)."""
    umask = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "c.npz", _arrays(1.0), {"step": 1})
    finally:
        os.umask(umask)
    assert (tmp_path / "c.npz").stat().st_mode & 0o777 == 0o644


def test_trainer_checkpoint_holds_everything_a_run_needs(tmp_path):
    trainer = Trainer(Config(model="dcgan", **TINY))
    for (real,) in trainer.loader:
        trainer.train_step(real)
        break
    path = tmp_path / "c.npz"
    trainer.save(path)
    arrays, meta = read_checkpoint(path)
    # Both networks with batch norm's running statistics, and both optimisers' moments.
    assert "1.running_mean" in arrays["G"] and "5.running_var" in arrays["G"] and "3.running_var" in arrays["D"]
    assert set(arrays["opt_g"]["0"]) == {"exp_avg", "exp_avg_sq"}
    assert meta["opt_g_steps"][0] == meta["opt_d_steps"][0] == 1
    # The counters, every random generator, the data position and the configuration.
    assert (meta["step"], meta["epoch"]) == (1, 0)
    assert meta["loader"]["position"] == 1
    assert {"noise_rng", "rng"} <= set(meta)
    assert meta["config"]["model"] == "dcgan" and meta["config"]["limit"] == 16


def test_a_checkpoint_without_batch_norm_counters_resumes(tmp_path):
    # Checkpoints saved before batch norm counted its batches (num_batches_tracked) hold
    # every other array: they load, each counter starting from 0, and training goes on.
    config = Config(model="dcgan", ema=0.9, **TINY)
    trainer = Trainer(config)
    trainer.train_step(*next(iter(trainer.loader)))
    path = tmp_path / "old.npz"
    trainer.save(path)
    arrays, meta = load_checkpoint(path)
    assert arrays["G"]["1.num_batches_tracked"] == 1 and arrays["G_ema"]["1.num_batches_tracked"] == 1
    for name in ("G", "D", "G_ema"):
        for key in [k for k in arrays[name] if k.endswith(".num_batches_tracked")]:
            del arrays[name][key]
    save_checkpoint(path, arrays, meta)
    resumed = Trainer(config)
    resumed.load(path)
    for name in ("G", "D", "G_ema"):
        state = getattr(resumed, name).state_dict()
        for key, value in arrays[name].items():
            np.testing.assert_array_equal(state[key], value, err_msg=f"{name}/{key}")
        assert {v.item() for k, v in state.items() if k.endswith(".num_batches_tracked")} == {0}
    resumed.train_step(*next(iter(resumed.loader)))
    assert resumed.G.state_dict()["1.num_batches_tracked"] == resumed.G_ema.state_dict()["1.num_batches_tracked"] == 1


def test_a_checkpoint_without_a_data_fingerprint_resumes(tmp_path):
    # Checkpoints saved before the loader recorded a fingerprint of its data: resumed unchecked.
    config = Config(model="mlp", **TINY)
    trainer = Trainer(config)
    trainer.train_step(*next(iter(trainer.loader)))
    path = tmp_path / "old.npz"
    trainer.save(path)
    arrays, meta = load_checkpoint(path)
    assert meta["loader"]["fingerprint"] == trainer.loader.fingerprint
    del meta["loader"]["fingerprint"]
    save_checkpoint(path, arrays, meta)
    resumed = Trainer(config)
    resumed.load(path)
    assert (resumed.step, resumed.loader.position) == (1, 1)


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"__meta__.json": np.frombuffer(b"{}", np.uint8), "x": np.array([object()], dtype=object)})
    with pytest.raises(CheckpointError, match="truncated or corrupt.*allow_pickle=False"):
        load_checkpoint(path)


# --- a crash while writing ---------------------------------------------------------------
# The child saves checkpoint "1", then starts saving "2" and kills itself with SIGKILL
# (no cleanup, no exception handler runs) at one moment of the write.
CRASHING_CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from minigan import checkpoint

    path, moment = sys.argv[1], sys.argv[2]
    checkpoint.save_checkpoint(path, {"w": np.full(1000, 1.0)}, {"version": 1})

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if moment == "mid-write":  # half of the arrays are in the temporary file
        write_array = np.lib.format.write_array
        def write_one_then_die(fp, array, *args, **kwargs):
            write_array(fp, array, *args, **kwargs)
            fp.flush()
            die()
        np.lib.format.write_array = write_one_then_die
    elif moment == "before-fsync":  # all written, not yet forced to disk
        os.fsync = die
    elif moment == "before-rename":  # on disk under the temporary name
        os.replace = die
    checkpoint.save_checkpoint(path, {"w": np.full(1000, 2.0), "v": np.zeros(3)}, {"version": 2})
""")


@pytest.mark.parametrize("moment", ["mid-write", "before-fsync", "before-rename"])
def test_write_killed_midway_leaves_previous_checkpoint(tmp_path, moment):
    path = tmp_path / "checkpoint.npz"
    child = subprocess.run([sys.executable, "-c", CRASHING_CHILD, str(path), moment], capture_output=True)
    assert child.returncode == -9, child.stderr.decode()
    arrays, meta = load_checkpoint(path)
    assert meta == {"version": 1}
    np.testing.assert_array_equal(arrays["w"], np.full(1000, 1.0))
    # The partial file lies under a hidden temporary name, never the checkpoint's.
    leftovers = [n for n in os.listdir(tmp_path) if n != "checkpoint.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-")


# --- files that are not good checkpoints ---------------------------------------------------
@pytest.fixture
def good_checkpoint(tmp_path):
    path = tmp_path / "good.npz"
    Trainer(Config(model="mlp", **TINY)).save(path)
    return path


def test_truncated_checkpoint(tmp_path, good_checkpoint):
    raw = good_checkpoint.read_bytes()
    for size in (len(raw) // 2, len(raw) - 1, 100):
        path = tmp_path / f"cut{size}.npz"
        path.write_bytes(raw[:size])
        with pytest.raises(CheckpointError, match=r"cut\d+\.npz' is truncated or corrupt"):
            load_checkpoint(path)


def test_corrupt_checkpoint(tmp_path, good_checkpoint):
    raw = bytearray(good_checkpoint.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 8] = bytes(8)  # inside an array: its CRC-32 no longer matches
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt.npz' is truncated or corrupt .*CRC"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a minigan checkpoint \\(not an .npz archive\\)"),
        (b"step,loss\n1,0.5\n", "not a minigan checkpoint \\(not an .npz archive\\)"),
        (b"\x93NUMPY\x01\x00", "not a minigan checkpoint \\(not an .npz archive\\)"),
    ],
    ids=["empty", "text", "npy"],
)
def test_file_that_is_not_a_checkpoint(tmp_path, content, message):
    path = tmp_path / "notes.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_npz_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, w=np.ones(3))
    with pytest.raises(CheckpointError, match="an .npz file but not a minigan checkpoint"):
        load_checkpoint(path)


def test_checkpoint_of_another_kind(tmp_path):
    path = tmp_path / "other.npz"
    save_checkpoint(path, {"w": np.ones(3)}, {"format": "someone-else-1"})
    with pytest.raises(CheckpointError, match="not a GAN training checkpoint of this minigan \\(format 'someone-else-1'\\)"):
        read_checkpoint(path)


def test_corrupt_metadata(tmp_path):
    path = tmp_path / "meta.npz"
    np.savez(path, **{"__meta__.json": np.frombuffer(b"{not json", np.uint8)})
    with pytest.raises(CheckpointError, match="its metadata is corrupt"):
        load_checkpoint(path)
    np.savez(path, **{"__meta__.json": np.frombuffer(json.dumps([1, 2]).encode(), np.uint8)})
    with pytest.raises(CheckpointError, match="its metadata is not a JSON object"):
        load_checkpoint(path)


def test_an_archive_that_is_not_arrays_throughout(tmp_path):
    path = tmp_path / "odd.npz"
    meta = np.frombuffer(b"{}", np.uint8)
    with zipfile.ZipFile(path, "w") as z:  # a member that is raw bytes, not an .npy array
        z.writestr("__meta__.json", b"{}")
    with pytest.raises(CheckpointError, match=r"__meta__.json are not .npy arrays"):
        load_checkpoint(path)
    np.savez(path, **{"__meta__.json": meta, "G": np.ones(2), "G/w": np.ones(2)})
    with pytest.raises(CheckpointError, match=r"not a minigan checkpoint: 'G/w' lies under 'G', which is an array"):
        load_checkpoint(path)
    np.savez(path, **{"__meta__.json": meta, "G/w": np.ones(2), "G": np.ones(2)})
    with pytest.raises(CheckpointError, match=r"'G' is both an array and a level above others"):
        load_checkpoint(path)


@pytest.mark.parametrize("name, message", [
    ("file", r"np.savez takes the name\(s\) \['file'\] as its own arguments"),
    ("allow_pickle", r"np.savez takes the name\(s\) \['allow_pickle'\] as its own arguments"),
    ("__meta__.json", "the name '__meta__.json' is the checkpoint's own, for its metadata"),
])
def test_names_the_archive_keeps_for_itself_are_refused(tmp_path, name, message):
    # np.savez would take "file" and "allow_pickle" as its own arguments (the second
    # silently dropped), and "__meta__.json" would be overwritten by the metadata.
    with pytest.raises(ValueError, match=message):
        save_checkpoint(tmp_path / "c.npz", {name: np.ones(2)}, {})
    assert not (tmp_path / "c.npz").exists()


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz' does not exist"):
        load_checkpoint(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError, match="is not a file"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a file"):
        read_checkpoint(tmp_path)  # a folder that holds no checkpoint


def test_a_run_folder_given_for_its_checkpoint_names_the_checkpoint(tmp_path):
    Trainer(Config(model="mlp", **TINY)).save(tmp_path / "checkpoint.npz")
    folder = f"{tmp_path}/"  # as a shell completes it
    message = f"{folder!r} is a run folder: resume from its checkpoint, {folder + 'checkpoint.npz'!r}"
    with pytest.raises(IsADirectoryError, match=f"^{re.escape(message)}$"):
        read_checkpoint(folder)


def test_checkpoint_from_another_model(good_checkpoint):
    trainer = Trainer(Config(model="dcgan", **TINY))
    with pytest.raises(Exception, match="comes from a run with model='mlp', but this run has model='dcgan'"):
        trainer.load(good_checkpoint)


def test_checkpoint_whose_networks_do_not_fit(tmp_path, good_checkpoint):
    arrays, meta = load_checkpoint(good_checkpoint)
    arrays["G"]["0.weight"] = arrays["G"]["0.weight"][:, :50]
    del arrays["D"]["3.bias"]
    path = tmp_path / "edited.npz"
    save_checkpoint(path, arrays, meta)
    trainer = Trainer(Config(model="mlp", **TINY))
    with pytest.raises(Exception, match=r"does not fit this model's G: .*0\.weight: shape \(128, 50\) in the state dict, \(128, 100\) in the model"):
        trainer.load(path)
    arrays["G"]["0.weight"] = np.zeros((128, 100), np.float32)
    save_checkpoint(path, arrays, meta)
    with pytest.raises(Exception, match="does not fit this model's D: .*missing keys: 3.bias"):
        trainer.load(path)


def _edited(tmp_path, edit):
    """The checkpoint of a run one step in, after ``edit(arrays, meta)``."""
    trainer = Trainer(Config(model="mlp", **TINY))
    trainer.train_step(*next(iter(trainer.loader)))
    path = tmp_path / "edited.npz"
    trainer.save(path)
    arrays, meta = load_checkpoint(path)
    edit(arrays, meta)
    save_checkpoint(path, arrays, meta)
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda arrays, meta: meta["config"].update(warp_drive=True),
         "has settings this minigan does not know: warp_drive \\(was it written by a newer minigan\\?\\)"),
        (lambda arrays, meta: meta.pop("loader"), "is damaged: its metadata has no loader"),
        (lambda arrays, meta: arrays["opt_d"]["2"].pop("exp_avg"), "is damaged: it has no opt_d/2/exp_avg"),
        # Hand edits of the JSON: each failed later, deep inside the run (a TypeError
        # in train(), an AttributeError at the first record, a ZeroDivisionError in Adam).
        (lambda arrays, meta: meta.update(step="1"), "is damaged: its step is '1', expected a step count"),
        (lambda arrays, meta: meta.update(history=None), "is damaged: its history is None, expected a list of each step's loss_d"),
        (lambda arrays, meta: meta["history"].append({"loss_d": 1.0}), "is damaged: its history is .*, expected a list"),
        (lambda arrays, meta: meta.update(loader={"epoch": 0}), "is damaged: its loader is .*counts epoch, position and seed"),
        (lambda arrays, meta: meta.update(noise_rng={}), "is damaged: its noise_rng is {}, expected the state of a PCG64"),
        (lambda arrays, meta: meta["rng"].update(state="x"), "is damaged: its rng is .*, expected the state of a PCG64"),
        (lambda arrays, meta: meta["opt_g_steps"].__setitem__(0, -1), "is damaged: its opt_g_steps is \\[-1, .*step counts"),
        (lambda arrays, meta: meta.update(epoch_metrics=None), "is damaged: its epoch_metrics is None, expected a list"),
        (lambda arrays, meta: meta.update(config=[]), "is damaged: its config is \\[\\], expected an object of settings"),
        (lambda arrays, meta: arrays.update(timeline={"last": np.zeros(3)}), "is damaged: its timeline has an entry 'last', not an epoch"),
    ],
    ids=["unknown setting", "no loader", "no Adam moment", "step text", "history null", "history entry", "loader",
         "noise state", "rng state", "Adam step", "epoch metrics", "config", "timeline"],
)
def test_checkpoint_with_bad_metadata(tmp_path, edit, message):
    path = str(_edited(tmp_path, edit))
    with pytest.raises(CheckpointError, match=f"edited.npz' {message}"):
        Trainer(Config(model="mlp", **TINY)).load(path)


def test_checkpoint_from_a_newer_minigan_gives_no_config(tmp_path):
    path = str(_edited(tmp_path, lambda arrays, meta: meta["config"].update(warp_drive=True)))
    with pytest.raises(CheckpointError, match="edited.npz' has settings this minigan does not know: warp_drive"):
        resumed_config(path, epochs=5)


def test_trainer_refuses_to_save_nan_weights(tmp_path):
    trainer = Trainer(Config(model="mlp", **TINY))
    next(trainer.G.parameters()).data[0, 0] = np.nan
    path = tmp_path / "c.npz"
    with pytest.raises(Exception, match="after step 0, G/0.weight hold NaN or infinity; training stopped. No checkpoint was saved"):
        trainer.save(path)
    assert not path.exists()


def test_save_into_a_folder_that_does_not_exist(tmp_path):
    path = tmp_path / "missing" / "c.npz"
    # the error named the temporary file, .tmp-<random>.npz
    with pytest.raises(FileNotFoundError, match=r"cannot write '.*missing/c\.npz' in folder '.*missing': No such file or directory"):
        save_checkpoint(path, _arrays(1.0), {})


def test_save_of_python_objects_is_refused(tmp_path):
    # np.savez pickled them: a checkpoint written, and never loadable ("truncated or corrupt")
    path = tmp_path / "c.npz"
    with pytest.raises(TypeError, match=r"G/0\.bias \(object\) hold Python objects, not numbers"):
        save_checkpoint(path, {"G": {"0.bias": None}}, {})
    assert not path.exists()


def test_out_of_range_settings_in_a_checkpoint_are_named_as_its(tmp_path):
    # The error said "lr must be a number, got 'x'", as if a flag had been wrong.
    path = str(_edited(tmp_path, lambda arrays, meta: meta["config"].update(lr="x")))
    with pytest.raises(ConfigError, match=r"lr must be a number, got 'x' \(the settings of '.*edited.npz', with epochs changed\)"):
        resumed_config(path, epochs=5)


def test_a_resumed_run_that_changes_a_run_setting_is_told_so_first(tmp_path):
    # Another model was blamed on the depths ("d depth applies to the dcgan only") and
    # every flag given was listed as changed; now the change itself is named.
    path = str(_edited(tmp_path, lambda arrays, meta: meta["config"].update(model="dcgan", d_depth=3)))
    with pytest.raises(ConfigError, match=r"comes from a run with model='dcgan', but this run has model='mlp'"):
        resumed_config(path, model="mlp", epochs=5)
    path = str(_edited(tmp_path, lambda arrays, meta: meta["config"].update(lr="x")))
    with pytest.raises(ConfigError, match=r"\(the settings of '.*edited.npz', with epochs changed\)$"):
        resumed_config(path, epochs=5, metrics=False)  # metrics=False is the checkpoint's: not a change


@pytest.mark.parametrize("field, value, words", [
    ("loss", ["x"], r"unknown loss \['x'\]"),  # a TypeError: a list is no dict key
    ("model", {"a": 1}, r"unknown model \{'a': 1\}"),
    ("conditional", "no", r"conditional must be true or false, got 'no'"),  # counted as true
    ("metrics", 1, r"metrics must be true or false, got 1"),
])
def test_settings_of_the_wrong_type_are_named(field, value, words):
    with pytest.raises(ConfigError, match=words):
        Config(**{field: value}).validate()
