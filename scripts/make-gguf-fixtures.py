#!/usr/bin/env python3
"""Writes the GGUF test fixtures in engine/tests/fixtures/gguf/ with the `gguf` Python package
(llama.cpp's gguf-py, an implementation independent of ours), plus a JSON sidecar per file
with the values as the Python side wrote them and read them back.

    pip install gguf==0.19.0        # pulls numpy
    python3 scripts/make-gguf-fixtures.py

Deterministic (fixed numpy seed). Sidecar layout:
  {"file", "gguf_version", "alignment", "data_offset",
   "kv": [{"key", "type", "value"}],      # value of an array: {"elem", "items": [typed values]}
   "tensors": [{"name", "dims" (innermost first), "type", "type_id", "n_bytes", "offset"
                (relative to data), "data_offset" (absolute), "sha256", "raw_hex",
                "values" (F32 only), "dequantized" (gguf.quants.dequantize, flattened)}]}
f32 values are recorded as the float32 value written (exact in JSON's float64).
"""
import hashlib
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as VT, GGMLQuantizationType as QT
from gguf.quants import quantize, dequantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine", "tests", "fixtures", "gguf")

TYPE_NAMES = {
    VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32",
    VT.INT32: "i32", VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "string", VT.ARRAY: "array",
    VT.UINT64: "u64", VT.INT64: "i64", VT.FLOAT64: "f64",
}


def typed(vtype, value, sub_type=None):
    """The sidecar's record of one value, mirroring how GGUFWriter encodes it."""
    if vtype == VT.ARRAY:
        elem = sub_type if sub_type is not None else VT.get_type(value[0])
        return {"type": "array", "value": {"elem": TYPE_NAMES[elem], "items": [typed(elem, v) for v in value]}}
    if vtype == VT.FLOAT32:
        value = float(np.float32(value))
    return {"type": TYPE_NAMES[vtype], "value": value}


class Fixture:
    def __init__(self, name, arch, alignment=None):
        self.name = name
        self.path = os.path.join(OUT, name + ".gguf")
        self.w = gguf.GGUFWriter(self.path, arch)
        self.kv = [{"key": "general.architecture", **typed(VT.STRING, arch)}]
        if alignment is not None:
            self.w.add_custom_alignment(alignment)
            self.kv.append({"key": "general.alignment", **typed(VT.UINT32, alignment)})
        self.tensors = []

    def add(self, key, vtype, value, sub_type=None):
        self.w.add_key_value(key, value, vtype, sub_type=sub_type)
        self.kv.append({"key": key, **typed(vtype, value, sub_type)})

    def tensor(self, name, array, qtype=QT.F32, raw=False):
        """`array`: float data (quantized here unless F32), or raw block bytes when `raw`."""
        if raw:
            data = array
        elif qtype == QT.F32:
            data = array.astype(np.float32)
        elif qtype == QT.F16:
            data = array.astype(np.float16)
        else:
            data = quantize(array.astype(np.float32), qtype)
        if qtype in (QT.F32, QT.F16):
            self.w.add_tensor(name, data)
        else:
            self.w.add_tensor(name, data, raw_dtype=qtype)
        self.tensors.append((name, qtype, data))

    def write(self):
        self.w.write_header_to_file()
        self.w.write_kv_data_to_file()
        self.w.write_tensors_to_file()
        self.w.close()
        r = gguf.GGUFReader(self.path)
        side = {
            "file": self.name + ".gguf",
            "gguf_version": 3,
            "alignment": int(r.alignment),
            "data_offset": int(r.data_offset),
            "kv": self.kv,
            "tensors": [],
        }
        by_name = {t.name: t for t in r.tensors}
        for name, qtype, data in self.tensors:
            rt = by_name[name]
            raw = np.asarray(rt.data).tobytes()
            assert raw == data.tobytes(), name
            entry = {
                "name": name,
                "dims": [int(d) for d in rt.shape],  # GGUFReader gives GGUF order (innermost first)
                "type": qtype.name,
                "type_id": int(qtype),
                "n_bytes": int(rt.n_bytes),
                "offset": int(rt.data_offset - r.data_offset),
                "data_offset": int(rt.data_offset),
                "sha256": hashlib.sha256(raw).hexdigest(),
                "raw_hex": raw.hex(),
            }
            if qtype == QT.F32:
                entry["values"] = [float(v) for v in np.asarray(data, dtype=np.float32).ravel()]
            deq = dequantize(np.frombuffer(raw, dtype=np.uint8), qtype) if qtype not in (QT.F32, QT.F16) \
                else np.asarray(data, dtype=np.float32)
            entry["dequantized"] = [float(v) for v in np.asarray(deq, dtype=np.float32).ravel()]
            side["tensors"].append(entry)
        # Keys GGUFWriter adds on its own would show up here and not in self.kv.
        assert [f for f in r.fields if not f.startswith("GGUF.")] == [k["key"] for k in self.kv], list(r.fields)
        with open(os.path.join(OUT, self.name + ".json"), "w") as f:
            # One line per KV and per tensor: diffable, and small.
            f.write("{\n")
            for k in ("file", "gguf_version", "alignment", "data_offset"):
                f.write(f" {json.dumps(k)}: {json.dumps(side[k])},\n")
            for k in ("kv", "tensors"):
                rows = ",\n".join("  " + json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in side[k])
                f.write(f" {json.dumps(k)}: [\n{rows}\n ]" + (",\n" if k == "kv" else "\n"))
            f.write("}\n")
        print(f"{self.path}: {os.path.getsize(self.path)} bytes")


def random_blocks(rng, qtype, n_blocks, f16_fields):
    """Random raw blocks with their f16 scale fields set to small finite values."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in f16_fields:
        scales = (rng.random(n_blocks) * 0.01 + 0.001).astype(np.float16)
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw


def all_types(rng):
    fx = Fixture("all-types", "test", alignment=64)
    fx.add("test.u8", VT.UINT8, 255)
    fx.add("test.i8", VT.INT8, -128)
    fx.add("test.u16", VT.UINT16, 65535)
    fx.add("test.i16", VT.INT16, -32768)
    fx.add("test.u32", VT.UINT32, 4294967295)
    fx.add("test.i32", VT.INT32, -2147483648)
    fx.add("test.f32", VT.FLOAT32, 3.14159)
    fx.add("test.f32_tiny", VT.FLOAT32, 1e-6)
    fx.add("test.bool_true", VT.BOOL, True)
    fx.add("test.bool_false", VT.BOOL, False)
    fx.add("test.string", VT.STRING, "héllo, wörld ✓ 日本語")
    fx.add("test.string_empty", VT.STRING, "")
    fx.add("test.u64", VT.UINT64, 18446744073709551615)
    fx.add("test.i64", VT.INT64, -9223372036854775808)
    fx.add("test.f64", VT.FLOAT64, 1.0 / 3.0)
    fx.add("test.count_u32", VT.UINT32, 262144)
    fx.add("test.count_u64", VT.UINT64, 151387)
    fx.add("test.count_i32", VT.INT32, 7)
    fx.add("test.negative_i32", VT.INT32, -1)
    fx.add("test.arr.u8", VT.ARRAY, [0, 1, 127, 255], sub_type=VT.UINT8)
    fx.add("test.arr.i8", VT.ARRAY, [-128, -1, 0, 127], sub_type=VT.INT8)
    fx.add("test.arr.u16", VT.ARRAY, [0, 65535, 1234], sub_type=VT.UINT16)
    fx.add("test.arr.i16", VT.ARRAY, [-32768, 32767, -5], sub_type=VT.INT16)
    fx.add("test.arr.u32", VT.ARRAY, [0, 4294967295, 42], sub_type=VT.UINT32)
    fx.add("test.arr.i32", VT.ARRAY, [-2147483648, 2147483647, 0, -7])
    fx.add("test.arr.f32", VT.ARRAY, [0.5, -1.25, 3.0e-7, 65504.0, -0.0])
    fx.add("test.arr.bool", VT.ARRAY, [True, False, False, True])
    fx.add("test.arr.string", VT.ARRAY, ["a", "", "<0x0A>", "▁the", "日本", "ĠĊ"])
    fx.add("test.arr.u64", VT.ARRAY, [0, 18446744073709551615], sub_type=VT.UINT64)
    fx.add("test.arr.i64", VT.ARRAY, [-9223372036854775808, 9223372036854775807], sub_type=VT.INT64)
    fx.add("test.arr.f64", VT.ARRAY, [1.0 / 3.0, -2.5e-300], sub_type=VT.FLOAT64)
    fx.add("test.nested.i32", VT.ARRAY, [[1, 2], [3, 4, 5], [6]])
    fx.add("test.nested.string", VT.ARRAY, [["a", "bc"], ["déf"]])
    fx.add("test.nested.deep", VT.ARRAY, [[[1], [2, 3]], [[4, 5, 6]]])

    fx.tensor("t.f32_2d", rng.standard_normal((3, 5)))           # dims [5, 3]
    fx.tensor("t.f32_3d", rng.standard_normal((2, 3, 4)))        # dims [4, 3, 2]
    fx.tensor("t.f32_4d", rng.standard_normal((1, 2, 1, 3)))     # dims [3, 1, 2, 1]
    fx.tensor("t.f16", rng.standard_normal(7), QT.F16)           # dims [7]
    fx.tensor("t.q8_0", rng.standard_normal((2, 64)), QT.Q8_0)   # dims [64, 2]
    fx.tensor("t.q4_0", rng.standard_normal((1, 32)), QT.Q4_0)   # dims [32, 1]
    fx.write()


def llama_like(rng):
    fx = Fixture("llama-like", "llama")
    fx.add("llama.block_count", VT.UINT32, 2)
    fx.add("llama.context_length", VT.UINT32, 64)
    fx.add("llama.embedding_length", VT.UINT32, 256)
    fx.add("llama.attention.layer_norm_rms_epsilon", VT.FLOAT32, 1e-5)
    fx.add("tokenizer.ggml.model", VT.STRING, "gpt2")
    tokens = [f"tok{i}" for i in range(300)] + ["Ġ", "<|im_end|>", "ĠĠĠ"]
    fx.add("tokenizer.ggml.tokens", VT.ARRAY, tokens)
    fx.add("tokenizer.ggml.scores", VT.ARRAY, [float(-i) / 7.0 for i in range(len(tokens))])
    fx.add("tokenizer.ggml.token_type", VT.ARRAY, [1 + (i % 3) for i in range(len(tokens))])
    fx.add("tokenizer.ggml.merges", VT.ARRAY, [f"t o{i}" for i in range(100)])
    fx.add("tokenizer.ggml.eos_token_id", VT.UINT32, 302)
    fx.add("tokenizer.ggml.add_bos_token", VT.BOOL, False)

    fx.tensor("token_embd.weight", rng.standard_normal((2, 256)), QT.Q8_0)
    fx.tensor("output_norm.weight", rng.standard_normal(256))
    fx.tensor("blk.0.attn_q.weight", rng.standard_normal((1, 256)), QT.Q5_0)
    fx.tensor("blk.0.ffn_up.weight", rng.standard_normal((1, 256)), QT.Q4_1)
    fx.tensor("blk.0.ffn_down.weight", rng.standard_normal((1, 256)), QT.Q5_1)
    fx.tensor("blk.0.attn_k.weight", rng.standard_normal((1, 256)), QT.BF16)
    # k-quants: gguf 0.19.0 cannot quantize them, so random blocks (with sane f16 scales).
    fx.tensor("blk.1.attn_q.weight", random_blocks(rng, QT.Q4_K, 1, [0, 2]), QT.Q4_K, raw=True)
    fx.tensor("blk.1.attn_k.weight", random_blocks(rng, QT.Q5_K, 1, [0, 2]), QT.Q5_K, raw=True)
    fx.tensor("blk.1.attn_v.weight", random_blocks(rng, QT.Q6_K, 1, [208]), QT.Q6_K, raw=True)
    fx.write()


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240326)
    all_types(rng)
    llama_like(rng)
    import importlib.metadata as md
    print("gguf", md.version("gguf"), "numpy", md.version("numpy"), "python", sys.version.split()[0])


if __name__ == "__main__":
    main()
