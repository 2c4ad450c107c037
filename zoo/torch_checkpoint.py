"""Read a PyTorch state_dict saved in torch's legacy (non-zip) format, without torch.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``, the default before
torch 1.6) is a sequence of pickles followed by raw data:

1. the magic number ``0x1950a86a20f9469cfc6c``;
2. the protocol version ``1001``;
3. system information, a dict (``little_endian``, ``type_sizes``, ...);
4. the object itself, here a state_dict (an ``OrderedDict`` of name -> tensor). Each tensor is
   pickled as a call ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
   requires_grad, backward_hooks)`` whose ``storage`` is a *persistent id*, the tuple
   ``("storage", torch.<Type>Storage, key, location, number_of_elements, view_metadata)``;
5. the list of storage keys, in the order their data follows;
6. for every key in that order: the storage's element count as an 8-byte little-endian integer,
   then its elements' raw little-endian bytes.

Unpickling a checkpoint with :mod:`pickle` or ``torch.load`` can run any code the file names.
:func:`read_legacy_state_dict` instead checks the file's SHA-256 first, then unpickles with an
:class:`pickle.Unpickler` whose ``find_class`` admits only ``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` (replaced by our own function that records the tensor's
layout) and the ``torch.<Type>Storage`` names (replaced by dtype markers); every other global
is refused with :class:`UnsafePickleError` before anything is called. The tensors are then cut
out of the storages with their offset, size and stride, and returned as NumPy arrays.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import re
import struct
from pathlib import Path

import numpy as np

from keras_fool.errors import ChecksumError, CorruptFileError

__all__ = ["LEGACY_MAGIC_NUMBER", "LEGACY_PROTOCOL_VERSION", "UnsafePickleError", "read_legacy_state_dict"]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class UnsafePickleError(CorruptFileError):
    """A pickle names a callable outside the allowed set; nothing in it was called."""


class _StorageType:
    """Stands in for ``torch.<name>``: only says what the storage's elements are."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype  # little-endian NumPy dtype of the raw bytes; "bfloat16" is widened below

    def __repr__(self):
        return f"torch.{self.name}"


_STORAGE_TYPES = {
    name: _StorageType(name, dtype)
    for name, dtype in {
        "DoubleStorage": "<f8",
        "FloatStorage": "<f4",
        "HalfStorage": "<f2",
        "BFloat16Storage": "bfloat16",
        "LongStorage": "<i8",
        "IntStorage": "<i4",
        "ShortStorage": "<i2",
        "CharStorage": "i1",
        "ByteStorage": "u1",
        "BoolStorage": "?",
    }.items()
}


class _Storage:
    """A storage named by a persistent id; its bytes come after the pickles."""

    __slots__ = ("key", "storage_type", "size")

    def __init__(self, key, storage_type, size):
        self.key = key
        self.storage_type = storage_type
        self.size = size


class _Tensor:
    """What ``_rebuild_tensor_v2`` was asked to build, kept until the storages are read."""

    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage, offset, shape, stride):
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.stride = stride


def _is_int_tuple(value):
    return isinstance(value, tuple) and all(type(v) is int for v in value)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """Our stand-in for ``torch._utils._rebuild_tensor_v2``: validate and record, build nothing."""
    if not isinstance(storage, _Storage):
        raise CorruptFileError(f"a tensor's storage is {type(storage).__name__}, not a persistent storage id")
    if type(storage_offset) is not int or not _is_int_tuple(size) or not _is_int_tuple(stride):
        raise CorruptFileError("a tensor's offset, size or stride is not made of integers")
    if len(size) != len(stride):
        raise CorruptFileError(f"a tensor has size {size} but stride {stride}")
    return _Tensor(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only the globals of a legacy state_dict; refuses everything else by name."""

    def __init__(self, file, allow_globals):
        super().__init__(file, encoding="utf-8")
        self.allow_globals = allow_globals
        self.storages = {}

    def find_class(self, module, name):
        if self.allow_globals:
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return _rebuild_tensor_v2
            if module == "torch" and name in _STORAGE_TYPES:
                return _STORAGE_TYPES[name]
        raise UnsafePickleError(
            f"refusing to load {module}.{name}: a torch state_dict only needs collections.OrderedDict, "
            "torch._utils._rebuild_tensor_v2 and torch.*Storage"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise CorruptFileError(f"unexpected persistent id {pid!r:.100}")
        _, storage_type, key, _location, size, view_metadata = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or type(size) is not int:
            raise CorruptFileError(f"malformed storage id {pid!r:.100}")
        if view_metadata is not None:
            raise CorruptFileError(f"storage {key} is a view of another storage, which this reader does not support")
        if size < 0:
            raise CorruptFileError(f"storage {key} has a negative size {size}")
        known = self.storages.get(key)
        if known is None:
            known = self.storages[key] = _Storage(key, storage_type, size)
        elif known.storage_type is not storage_type or known.size != size:
            raise CorruptFileError(f"storage {key} is declared twice with different types or sizes")
        return known


def _unpickle(stream, what, allow_globals=False, unpickler=None):
    unpickler = unpickler or _RestrictedUnpickler(stream, allow_globals)
    try:
        return unpickler.load()
    except CorruptFileError:
        raise
    except Exception as e:  # anything a damaged or hostile pickle makes the unpickler raise
        raise CorruptFileError(f"cannot read the {what} ({type(e).__name__}: {e})") from None


def _storage_array(raw, storage_type):
    if storage_type.dtype == "bfloat16":  # no NumPy dtype: the upper half of a float32
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, storage_type.dtype)


def _read_storages(stream, keys, storages):
    arrays = {}
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise CorruptFileError(f"storage {key} is listed but no tensor uses it")
        header = stream.read(8)
        if len(header) != 8:
            raise CorruptFileError(f"the file ends before storage {key}")
        (count,) = struct.unpack("<q", header)
        if count != storage.size:
            raise CorruptFileError(f"storage {key} holds {count} elements, its id says {storage.size}")
        itemsize = 2 if storage.storage_type.dtype == "bfloat16" else np.dtype(storage.storage_type.dtype).itemsize
        raw = stream.read(count * itemsize)
        if len(raw) != count * itemsize:
            raise CorruptFileError(f"the file ends inside storage {key}")
        arrays[key] = _storage_array(raw, storage.storage_type)
    return arrays


def _materialise(name, tensor, storage):
    """Copy a tensor out of its storage, honouring offset, size and stride (bounds checked)."""
    shape, stride, offset = tensor.shape, tensor.stride, tensor.offset
    if any(s < 0 for s in shape) or any(s < 0 for s in stride) or offset < 0:
        raise CorruptFileError(f"tensor {name!r} has a negative size, stride or offset")
    if 0 in shape:
        return np.zeros(shape, storage.dtype.newbyteorder("="))
    last = offset + sum((n - 1) * s for n, s in zip(shape, stride))
    if last >= storage.size:
        raise CorruptFileError(
            f"tensor {name!r} (offset {offset}, size {shape}, stride {stride}) reaches element {last} "
            f"of a storage of {storage.size}"
        )
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=shape, strides=tuple(s * storage.itemsize for s in stride), writeable=False
    )
    return view.astype(storage.dtype.newbyteorder("="), order="C", copy=True)


def read_legacy_state_dict(path, sha256):
    """Read a torch state_dict in the legacy format into NumPy arrays, never running pickled code.

    Args:
        path: the ``.pth`` / ``.pt`` file.
        sha256: the hex SHA-256 the file must have; nothing is unpickled unless it matches.

    Returns:
        A dict of tensor name -> ``np.ndarray`` (C-contiguous, native byte order), in the file's order.

    Raises:
        FileNotFoundError: no such file.
        ChecksumError: the file's SHA-256 differs from ``sha256``.
        UnsafePickleError: a pickle names a callable other than the state_dict's (nothing is called).
        CorruptFileError: anything else that is not a legacy-format state_dict (including the zip
            format of torch >= 1.6, which this reader does not handle).
    """
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"sha256 must be 64 lower-case hex digits. Received: sha256={sha256!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {path}")
    data = path.read_bytes()  # hash and parse the same bytes: nothing can swap the file in between
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ChecksumError(f"{path} has SHA-256 {actual}, expected {sha256}; refusing to unpickle it.")
    try:
        return _parse(io.BytesIO(data))
    except CorruptFileError as e:
        raise type(e)(f"{path}: {e}") from None


def _parse(stream):
    if stream.getbuffer()[:4].tobytes() == b"PK\x03\x04":
        raise CorruptFileError("this is torch's zip format (torch >= 1.6), not the legacy format")
    magic = _unpickle(stream, "magic number")
    if magic != LEGACY_MAGIC_NUMBER:
        raise CorruptFileError("not a legacy torch checkpoint (wrong magic number)")
    version = _unpickle(stream, "protocol version")
    if version != LEGACY_PROTOCOL_VERSION:
        raise CorruptFileError(f"unsupported legacy protocol version {version!r}")
    sys_info = _unpickle(stream, "system information")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise CorruptFileError("the checkpoint was not written on a little-endian machine")
    unpickler = _RestrictedUnpickler(stream, allow_globals=True)
    state_dict = _unpickle(stream, "state_dict", unpickler=unpickler)
    if not isinstance(state_dict, dict):
        raise CorruptFileError(f"the checkpoint holds a {type(state_dict).__name__}, not a state_dict")
    keys = _unpickle(stream, "list of storage keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise CorruptFileError("the list of storage keys is malformed")
    missing = sorted(set(unpickler.storages) - set(keys))
    if missing:
        raise CorruptFileError(f"storages {missing[:5]} are used by tensors but have no data")
    storages = _read_storages(stream, keys, unpickler.storages)
    if stream.read(1):
        raise CorruptFileError("unexpected bytes after the last storage")
    arrays = {}
    for name, tensor in state_dict.items():
        if not isinstance(name, str) or not isinstance(tensor, _Tensor):
            raise CorruptFileError(f"state_dict entry {name!r:.80} is not a named tensor")
        arrays[name] = _materialise(name, tensor, storages[tensor.storage.key])
    return arrays
