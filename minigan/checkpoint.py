"""Checkpoints: one ``.npz`` file of arrays plus a JSON document, never a pickle.

Loading uses ``allow_pickle=False``, so a checkpoint can never run code. Writing
is atomic: the file is written under a temporary name in the same folder, flushed
to disk, then renamed over the old one, so a crash at any moment leaves either the
previous checkpoint or the new one, never half of one.
"""

import json
import os
import secrets
import zipfile

import numpy as np

META_KEY = "__meta__.json"  # the JSON document, stored as a uint8 array
ZIP_MAGIC = b"PK\x03\x04"  # the first bytes of every zip archive, so of every .npz


class CheckpointError(ValueError):
    pass


def flatten(tree, prefix=""):
    """{"G": {"0.weight": a}} -> {"G/0.weight": a}: nested dicts of arrays to flat keys."""
    flat = {}
    for key, value in tree.items():
        if "/" in key:  # unflatten would split it into two levels
            raise ValueError(f"cannot save {prefix + key!r} in a checkpoint: '/' separates its levels; "
                             "rename it (e.g. a module added with add_module) without '/'")
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def unflatten(flat):
    """{"G/0.weight": a} -> {"G": {"0.weight": a}}; a ValueError where a name is both
    an array and a level ("G" and "G/0.weight")."""
    tree = {}
    for name, value in flat.items():
        *path, leaf = name.split("/")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{name!r} lies under {part!r}, which is an array")
        if leaf in node:
            raise ValueError(f"{name!r} is both an array and a level above others")
        node[leaf] = value
    return tree


def save_checkpoint(path, arrays, meta):
    """Atomically write ``arrays`` (a nested dict of NumPy arrays) and ``meta`` (JSON-able)."""
    flat = {k: np.asarray(v) for k, v in flatten(arrays).items()}
    if META_KEY in flat:
        raise ValueError(f"cannot save {os.fspath(path)!r}: the name {META_KEY!r} is the checkpoint's own, for its metadata")
    # np.savez would pickle them, and a checkpoint is loaded without pickle: refused
    # here rather than written as a file that can never be loaded.
    bad = [f"{k} ({a.dtype})" for k, a in flat.items() if a.dtype.hasobject]
    if bad:
        raise TypeError(f"cannot save {os.fspath(path)!r}: {', '.join(bad)} hold Python objects, not numbers")
    flat[META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    savez_atomic(path, flat)


def savez_atomic(path, arrays, durable=True):
    """``np.savez(path, **arrays)`` that never leaves half a file at ``path``: write a
    temporary file in the same folder, then rename it over ``path``. ``durable``
    also flushes the data and the rename to disk (a checkpoint must survive a power
    cut; a cache that can be rebuilt need not)."""
    path = os.fspath(path)
    taken = sorted({"file", "allow_pickle"} & arrays.keys())  # np.savez's own arguments
    if taken:
        raise ValueError(f"cannot write {path!r}: np.savez takes the name(s) {taken} as its own arguments; rename them")
    if os.path.isdir(path):  # the rename would fail naming the temporary file
        raise IsADirectoryError(f"cannot write {path!r}: it is a folder; give a file name, e.g. {os.path.join(path, 'checkpoint.npz')!r}")
    folder = os.path.dirname(os.path.abspath(path))
    # A new name opened exclusively and in binary mode, as tempfile.mkstemp does, but with
    # the mode of any new file (0666 less the umask): mkstemp's 0600 would stay on the
    # checkpoint after the rename.
    tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}.npz")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:  # named after the checkpoint, not the temporary file
        raise type(e)(e.errno, f"cannot write {path!r} in folder {folder!r}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)


def load_checkpoint(path):
    """(arrays, meta) from a checkpoint; a clear CheckpointError for anything else."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist (or is not a file)")
    with open(path, "rb") as f:
        if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            raise CheckpointError(f"{path!r} is not a minigan checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            flat = {k: archive[k] for k in archive.files}
    # A damaged zip archive fails in any of these ways, depending on which bytes went bad.
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as e:
        raise CheckpointError(f"{path!r} is truncated or corrupt ({e})") from None
    if META_KEY not in flat:
        raise CheckpointError(f"{path!r} is an .npz file but not a minigan checkpoint (it has no {META_KEY})")
    not_arrays = [k for k, v in flat.items() if not isinstance(v, np.ndarray)]  # np.load gives other members as bytes
    if not_arrays:
        raise CheckpointError(f"{path!r} is not a minigan checkpoint: {', '.join(not_arrays)} are not .npy arrays")
    try:
        meta = json.loads(flat.pop(META_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path!r}: its metadata is corrupt ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path!r}: its metadata is not a JSON object")
    try:
        return unflatten(flat), meta
    except ValueError as e:
        raise CheckpointError(f"{path!r} is not a minigan checkpoint: {e}") from None
