"""The model file on disk: named numpy arrays and a JSON manifest in one ``.npz`` archive; reading runs no code.

A model is data: the forward pass's weights, the speaker-adaptive variant's statistics, and a manifest with the
feature, gate and window settings, the classes, provenance and figures. Why ``.npz`` and not safetensors: numpy
already reads and writes it (no new dependency), its reader with ``allow_pickle=False`` refuses anything but plain
arrays, and each member carries a CRC-32. The manifest is stored as the UTF-8 bytes of its JSON in the
``manifest`` member; every array of the model dictionary is stored as a member of its own and appears in the
manifest as ``{"$array": NAME}``. The manifest also records the SHA-256 of the arrays, so damage anywhere is
named as damage rather than read as other weights.

:func:`write_bundle` and :func:`read_bundle` turn a model dictionary
(:meth:`ser_live.model.emotion_model.EmotionModel.to_bundle`) into a file and back; every problem with a file is
one :class:`~ser_live.errors.ModelError` line.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError

__all__ = ["MODEL_SUFFIX", "MAX_MODEL_BYTES", "write_bundle", "read_bundle", "read_model_bytes", "file_sha256"]

#: File name suffix of model files.
MODEL_SUFFIX = ".npz"
#: Most bytes a model file may hold once unpacked: far above any real model, far below what would exhaust memory.
MAX_MODEL_BYTES = 1 << 30
_MANIFEST = "manifest"
_ARRAY_KEY = "$array"
# How files of other kinds start: named, so a user learns what they gave instead of "not a zip file".
_PICKLE_STARTS = (b"\x80", b"\x78")  # a pickle (protocol 2+), or joblib's zlib stream around one
_END_OF_ARCHIVE = b"PK\x05\x06"  # the zip end-of-central-directory record: 22 bytes and its comment


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _split(value: Any, name: str, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` with each numpy array replaced by a reference to its entry in ``arrays``."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise ModelError(f"the model's {name} holds Python objects, which a model file cannot store")
        arrays[name] = value
        return {_ARRAY_KEY: name}
    if isinstance(value, dict):
        return {str(k): _split(v, f"{name}/{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, f"{name}/{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _join(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`_split` (a reference to a missing array is a KeyError)."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY_KEY}:
            return arrays[value[_ARRAY_KEY]]
        return {k: _join(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, arrays) for v in value]
    return value


def _arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def write_bundle(path: str | os.PathLike[str], bundle: dict[str, Any]) -> str:
    """Write a model dictionary as a model file (atomically) and return the file's SHA-256.

    Raises
    ------
    ModelError
        If the dictionary holds something a manifest cannot (a Python object other than numbers, strings,
        lists, dictionaries and numpy arrays of numbers).
    """
    arrays: dict[str, np.ndarray] = {}
    manifest = _split(bundle, "model", arrays)
    manifest["arrays_sha256"] = _arrays_sha256(arrays)
    try:
        text = json.dumps(manifest, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"the model cannot be written as a model file ({exc})") from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **{_MANIFEST: np.frombuffer(text.encode(), dtype=np.uint8)}, **arrays)
    os.replace(tmp, path)
    return file_sha256(path)


def read_model_bytes(path: Path) -> bytes:
    """A model file's bytes, or a :class:`ModelError` naming what the path is instead."""
    if path.is_dir():
        raise ModelError(f"model path {path} is a folder, not a model file; check the path given to --model")
    if path.exists() and not path.is_file():
        raise ModelError(f"model path {path} is not a regular file (a device or a pipe); give a model file to --model")
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist; check the path given to --model (or name a shipped "
                         "model: default, light)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"model file {path} cannot be read ({exc.strerror or exc})") from exc
    if not data:
        raise ModelError(f"model file {path} is empty")
    return data


def _open_archive(data: bytes, path: Path) -> zipfile.ZipFile:
    if not data.startswith(b"PK"):
        if data.startswith(_PICKLE_STARTS):
            raise ModelError(f"model file {path} is a pickle (a model of ser-live before version 3, or not a model "
                             "at all); ser-live no longer loads pickles, which can run code: convert it with "
                             "scripts/convert_model.py if you trust where it came from, or train it again")
        raise ModelError(f"model file {path} is not a ser-live model (not a model archive)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelError(f"model file {path} is damaged or truncated ({exc}); download or train it again") from exc
    end = data.rfind(_END_OF_ARCHIVE)
    trailing = len(data) - (end + 22 + int.from_bytes(data[end + 20 : end + 22], "little"))
    if trailing > 0:  # zipfile would read past them: a model file is exactly what was written
        raise ModelError(f"model file {path} is damaged ({trailing} unexpected bytes after its end); "
                         "download or train it again")
    if unpacked > MAX_MODEL_BYTES:
        raise ModelError(f"model file {path} unpacks to more than {MAX_MODEL_BYTES >> 20} MB; "
                         "it is not a ser-live model")
    return archive


def _load_members(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """Every member of the archive as an array (no pickles: an object array is refused)."""
    _open_archive(data, path).close()  # kind and size checked before numpy reads anything
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as members:
            return {name: members[name] for name in members.files}
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ModelError(f"model file {path} is damaged or truncated ({exc}); download or train it again") from exc
    except ValueError as exc:  # numpy's word for an object array, or a malformed array header
        raise ModelError(f"model file {path} is not a ser-live model ({exc})") from exc


def read_bundle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The model dictionary a model file holds, its arrays checked against the manifest's SHA-256.

    Raises
    ------
    ModelError
        Missing, not a regular file, empty, a pickle, not an archive, damaged or truncated, too big, or
        without a readable manifest. Whether the dictionary is a usable model is
        :meth:`ser_live.model.emotion_model.EmotionModel.from_bundle`'s to check.
    """
    path = Path(path)
    members = _load_members(read_model_bytes(path), path)
    raw = members.pop(_MANIFEST, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelError(f"model file {path} is not a ser-live model (it has no manifest)")
    try:
        manifest = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model file {path} is damaged (its manifest is not JSON: {exc})") from exc
    if not isinstance(manifest, dict):
        raise ModelError(f"model file {path} is not a ser-live model (its manifest is not a dictionary)")
    if manifest.pop("arrays_sha256", None) != _arrays_sha256(members):
        raise ModelError(f"model file {path} is damaged (its arrays do not match the checksum its manifest "
                         "records); download or train it again")
    try:
        return _join(manifest, members)
    except (KeyError, TypeError) as exc:
        raise ModelError(f"model file {path} is damaged (its manifest names an array it lacks: {exc})") from exc
