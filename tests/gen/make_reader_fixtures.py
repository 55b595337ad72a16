#!/usr/bin/python3
"""Make the reader fixtures: small .safetensors and .h5 files, the values they hold, and
hostile files every reader must reject with a message naming the file.

    /usr/bin/python3 tests/gen/make_reader_fixtures.py [--out DIR]

DIR defaults to tests/fixtures/readers.  Writes safetensors by hand (struct + json; the
safetensors package is not needed) and HDF5 with h5py (track_times off), so running it twice
gives byte-identical files.  DIR/values.json lists:
  tensors   {file, key, dtype, shape, values (C order, exact as float64)}: every readable tensor
  hostile   {file, key, expect}: opening key (null: the default) must fail with a message that
            names the file and contains expect
  listing   {file: [keys]}: what list() must report, in order
DIR/regress/ holds fuzzer crash inputs (not written here); the unit test opens each of them.
"""
import argparse
import json
import os
import struct

import h5py
import numpy as np
import torch

VERSION = 1
SHAPE = (2, 3, 4, 5)  # layers, heads, queries, keys


def st_bytes(entries, metadata=None, pad=True, order=None):
    """entries: [(name, dtype, shape, raw bytes)]; data laid out in `order` (indices), default
    header order. Returns the file bytes."""
    order = order if order is not None else range(len(entries))
    offs, data = {}, b""
    for i in order:
        name, _, _, raw = entries[i]
        offs[name] = (len(data), len(data) + len(raw))
        data += raw
    hdr = {}
    if metadata is not None:
        hdr["__metadata__"] = metadata
    for name, dtype, shape, _ in entries:
        hdr[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": list(offs[name])}
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def st_raw(header, data, hlen=None):
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def exact(a):
    """values as float64, exactly (float16/bfloat16/float32 widen exactly)"""
    return [float(v) for v in np.asarray(a, dtype=np.float64).reshape(-1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "fixtures", "readers"))
    out = os.path.normpath(ap.parse_args().out)
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240611)
    torch.manual_seed(7)
    tensors, hostile, listing = [], [], {}

    def put(name, blob):
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)

    def expect(fname, key, dtype, arr):
        tensors.append({"file": fname, "key": key, "dtype": dtype, "shape": list(arr.shape),
                        "values": exact(arr)})

    # ---- safetensors, one tensor each
    f32 = rng.standard_normal(SHAPE).astype(np.float32)
    f32.flat[0], f32.flat[1], f32.flat[2] = np.float32(3.4e38), np.float32(1e-45), np.float32(-0.0)
    f64 = rng.standard_normal(SHAPE) * 1e3
    f64.flat[0], f64.flat[1] = 1e300, 5e-324
    f16 = (rng.standard_normal(SHAPE) * 10).astype(np.float16)
    f16.flat[0], f16.flat[1] = np.float16(65504), np.float16(6e-8)
    bf16 = (torch.randn(SHAPE) * 100).to(torch.bfloat16)
    bf16_raw = bf16.view(torch.int16).numpy().astype("<i2").tobytes()
    bf16_val = bf16.float().numpy()
    for fname, dt, arr, raw in [("f32.safetensors", "F32", f32, f32.astype("<f4").tobytes()),
                                ("f64.safetensors", "F64", f64, f64.astype("<f8").tobytes()),
                                ("f16.safetensors", "F16", f16, f16.astype("<f2").tobytes()),
                                ("bf16.safetensors", "BF16", bf16_val, bf16_raw)]:
        put(fname, st_bytes([("attn", dt, SHAPE, raw)]))
        expect(fname, "attn", {"F32": "float32", "F64": "float64", "F16": "float16",
                               "BF16": "bfloat16"}[dt], arr)

    # ---- safetensors, several tensors: unpadded header (unaligned data), data in another
    # order than the header, a scalar, an empty tensor, an I64 that is listed but not readable
    qk = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    probs = rng.random((3, 4)).astype(np.float16)
    scale = np.array(0.125, dtype=np.float32)
    empty = np.zeros((0, 3), dtype=np.float32)
    ids = np.arange(5, dtype=np.int64)
    entries = [("layers.0.qk", "F32", qk.shape, qk.tobytes()),
               ("layers.0.probs", "F16", probs.shape, probs.tobytes()),
               ("ids", "I64", ids.shape, ids.tobytes()),
               ("scale", "F32", (), scale.tobytes()),
               ("empty", "F32", empty.shape, b"")]
    multi = st_bytes(entries, metadata={"format": "pt", "model": "tiny"}, pad=False,
                     order=[3, 1, 2, 0, 4])
    put("multi.safetensors", multi)
    expect("multi.safetensors", "layers.0.qk", "float32", qk)
    expect("multi.safetensors", "layers.0.probs", "float16", probs)
    expect("multi.safetensors", "scale", "float32", scale)
    expect("multi.safetensors", "empty", "float32", empty)
    listing["multi.safetensors"] = ["layers.0.qk", "layers.0.probs", "scale", "empty"]
    hostile += [{"file": "multi.safetensors", "key": "ids", "expect": "not supported for statistics"},
                {"file": "multi.safetensors", "key": None, "expect": "no key names one"},
                {"file": "multi.safetensors", "key": "nope", "expect": "no tensor 'nope'"}]

    # ---- hostile safetensors
    e16 = '"dtype":"F32","shape":[4],"data_offsets":[0,16]'
    d16 = bytes(16)
    bad = [
        ("hdrlen_gt_file", st_raw('{"a":{%s}}' % e16, d16, hlen=1000), "exceeds the file"),
        ("hdrlen_huge", st_raw('{"a":{%s}}' % e16, d16, hlen=2**64 - 1), "exceeds the file"),
        ("too_short", b"\x10\x00\x00\x00", "too short"),
        ("not_json", st_raw('{"a": {nope}}', d16), "not valid json"),
        ("not_object", st_raw('[1, 2]', d16), "not a json object"),
        ("trailing", st_raw('{"a":{%s}} x' % e16, d16), "not valid json"),
        ("nul_in_header", st_raw(b'{"a":{' + e16.encode() + b'}}\x00', d16), "not valid json"),
        ("overlap", st_raw('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
                           '"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}', bytes(24)),
         "overlap"),
        ("duplicate", st_raw('{"a":{%s},"a":{%s}}' % (e16, e16), d16), "duplicate"),
        ("bad_dtype", st_raw('{"a":{"dtype":"F99","shape":[4],"data_offsets":[0,16]}}', d16),
         "unknown dtype 'F99'"),
        ("dtype_not_str", st_raw('{"a":{"dtype":4,"shape":[4],"data_offsets":[0,16]}}', d16),
         "'dtype' is not a string"),
        ("offsets_beyond", st_raw('{"a":{"dtype":"F32","shape":[1024],"data_offsets":[0,4096]}}',
                                  d16), "data size"),
        ("shape_overflow", st_raw('{"a":{"dtype":"F32","shape":[4611686018427387904,'
                                  '4611686018427387904],"data_offsets":[0,16]}}', d16),
         "overflows"),
        ("bits_overflow", st_raw('{"a":{"dtype":"F64","shape":[2305843009213693952],'
                                 '"data_offsets":[0,16]}}', d16), "overflows"),
        ("size_mismatch", st_raw('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}', d16),
         "span 12 bytes"),
        ("extra_field", st_raw('{"a":{%s,"x":1}}' % e16, d16), "exactly"),
        ("missing_field", st_raw('{"a":{"dtype":"F32","shape":[4]}}', d16), "exactly"),
        ("negative_dim", st_raw('{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}', d16),
         "non-negative"),
        ("float_offsets", st_raw('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0.0,16.0]}}',
                                 d16), "'data_offsets' is not"),
        ("reversed_offsets", st_raw('{"a":{"dtype":"F32","shape":[0],"data_offsets":[16,8]}}',
                                    d16), "not a range"),
        ("entry_not_object", st_raw('{"a":[1,2,3]}', d16), "not an object"),
        ("metadata_not_str", st_raw('{"__metadata__":{"k":1},"a":{%s}}' % e16, d16),
         "not a string"),
        ("no_tensors", st_raw('{"__metadata__":{"k":"v"}}', b""), "holds no tensors"),
        ("rank9", st_raw('{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,4],'
                         '"data_offsets":[0,16]}}', d16), "rank 9"),
    ]
    trunc = st_bytes([("attn", "F32", SHAPE, f32.tobytes())])
    bad.append(("truncated", trunc[:len(trunc) // 2], "data size"))
    bad.append(("truncated_header", trunc[:20], "exceeds the file"))
    for stem, blob, msg in bad:
        fname = "bad_" + stem + ".safetensors"
        put(fname, blob)
        hostile.append({"file": fname, "key": None, "expect": msg})

    # ---- HDF5
    def h5ds(g, name, data, **kw):
        return g.create_dataset(name, data=data, track_times=False, **kw)

    h_qk = rng.standard_normal(SHAPE).astype(np.float32)
    h_attn = rng.standard_normal(SHAPE)
    h_chunk = rng.standard_normal(SHAPE).astype(np.float32)
    h_half = (rng.standard_normal((3, 4)) * 4).astype(np.float16)
    h_be = rng.standard_normal((2, 5)).astype(">f4")
    h_scalar = np.float64(2.5)
    with h5py.File(os.path.join(out, "readers.h5"), "w") as f:
        h5ds(f, "qk_mean", h_qk)
        h5ds(f, "model/layer3/attn", h_attn)
        h5ds(f, "model/chunked", h_chunk, chunks=(1, 2, 2, 5), compression="gzip",
             compression_opts=4, shuffle=True)
        h5ds(f, "half", h_half)
        h5ds(f, "be/f32", h_be)
        h5ds(f, "scalar", h_scalar)
        h5ds(f, "ids", np.arange(6, dtype=np.int32))
    expect("readers.h5", "/qk_mean", "float32", h_qk)
    expect("readers.h5", "model/layer3/attn", "float64", h_attn)
    expect("readers.h5", "/model/chunked", "float32", h_chunk)
    expect("readers.h5", "/half", "float16", h_half)
    expect("readers.h5", "/be/f32", "float32", h_be)
    expect("readers.h5", "/scalar", "float64", np.array(h_scalar))
    listing["readers.h5"] = ["/be/f32", "/half", "/model/chunked", "/model/layer3/attn",
                             "/qk_mean", "/scalar"]
    hostile += [{"file": "readers.h5", "key": "/ids", "expect": "integer"},
                {"file": "readers.h5", "key": None, "expect": "no key names one"},
                {"file": "readers.h5", "key": "/model", "expect": "group"},
                {"file": "readers.h5", "key": "/nope", "expect": "cannot open dataset '/nope'"}]

    h_single = rng.standard_normal((4, 5)).astype(np.float32)
    with h5py.File(os.path.join(out, "single.h5"), "w") as f:
        h5ds(f, "g/only", h_single)
    expect("single.h5", None, "float32", h_single)
    listing["single.h5"] = ["/g/only"]

    with h5py.File(os.path.join(out, "bad_int.h5"), "w") as f:
        h5ds(f, "counts", np.arange(12, dtype=np.int64).reshape(3, 4))
    hostile.append({"file": "bad_int.h5", "key": None, "expect": "integer"})
    with h5py.File(os.path.join(out, "bad_empty.h5"), "w") as f:
        f.create_group("nothing")
    hostile.append({"file": "bad_empty.h5", "key": None, "expect": "holds no datasets"})
    with open(os.path.join(out, "readers.h5"), "rb") as f:
        blob = f.read()
    put("bad_truncated.h5", blob[:len(blob) // 2])
    hostile.append({"file": "bad_truncated.h5", "key": "/qk_mean", "expect": "cannot open"})
    put("bad_not_hdf5.h5", b"this is not an hdf5 file\n" * 4)
    hostile.append({"file": "bad_not_hdf5.h5", "key": None, "expect": "cannot open"})

    with open(os.path.join(out, "values.json"), "w") as f:
        json.dump({"version": VERSION, "generator": "tests/gen/make_reader_fixtures.py",
                   "tensors": tensors, "hostile": hostile, "listing": listing}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
