#!/usr/bin/env python3
"""Writes engine/tests/fixtures/quant/: GGML block fixtures from the `gguf` package's numpy
reference (gguf.quants.quantize / dequantize), for engine/tests/quant.rs.

Per type NAME (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, IQ4_NL):
  NAME.blocks      random raw blocks (scales set to sane f16 values, see below)
  NAME.blocks.f32  gguf.quants.dequantize(NAME.blocks), little-endian f32
For the types gguf can quantize (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1):
  NAME.src.f32     random floats (blocks of varied scales, a zero block, ties, a constant block)
  NAME.quant       gguf.quants.quantize(NAME.src.f32)
And f16-table.fnv1a64: FNV-1a 64 (hex) of the 65536 f32 values numpy gives for the f16 bit
patterns 0..=65535 (little-endian bytes), so the test can check every pattern without a
256 KB table.

Usage: python3 scripts/make-quant-fixtures.py   (needs `pip install gguf`, which pulls numpy)
"""
import os
import sys
from importlib.metadata import version

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine", "tests", "fixtures", "quant")
SEED = 20240611

LEGACY = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]
KQ = ["Q4_K", "Q5_K", "Q6_K"]
# Types added later come last, so the random blocks of the earlier ones stay the same.
LATER = ["IQ4_NL"]
QUANTIZABLE = ["F16", "BF16"] + LEGACY


def f16_bytes(v):
    return np.array([v], dtype=np.float16).view(np.uint8)


def random_blocks(rng, name):
    qt = T[name]
    elems, size = GGML_QUANT_SIZES[qt]
    if name == "F32":
        x = rng.standard_normal(96).astype(np.float32)
        x[:4] = [0.0, -0.0, np.inf, -np.inf]
        return x.view(np.uint8).copy()
    if name in ("F16", "BF16"):
        # Random bit patterns (subnormals, inf and NaN included), plus the special ones.
        h = rng.integers(0, 65536, 1024, dtype=np.uint32).astype(np.uint16)
        h[:8] = [0x0000, 0x8000, 0x0001, 0x83FF, 0x7C00, 0xFC00, 0x7E00, 0x7BFF]
        return h.view(np.uint8).copy()
    n = 12 if name in LEGACY + LATER else 6
    b = rng.integers(0, 256, (n, size), dtype=np.uint32).astype(np.uint8)
    for i in range(n):
        d = rng.uniform(1e-3, 1e-1)
        if name in LEGACY + LATER:
            d *= rng.choice([-1.0, 1.0])
        dh = f16_bytes(d)
        if i == 1:
            dh = np.array([0x37, 0x02], dtype=np.uint8)  # subnormal f16 d (0x0237)
        if i == 2 and name in LEGACY + LATER:
            dh = np.array([0, 0], dtype=np.uint8)  # d = 0
        if name == "Q6_K":
            b[i, 208:210] = dh
        else:
            b[i, 0:2] = dh
        if name in ("Q4_1", "Q5_1"):
            b[i, 2:4] = f16_bytes(rng.uniform(-1.0, 1.0))
        if name in ("Q4_K", "Q5_K"):
            b[i, 2:4] = f16_bytes(rng.uniform(1e-3, 1e-1))
    return b.reshape(-1)


def quant_source(rng, name):
    nb = 16
    x = np.empty((nb, 32), dtype=np.float32)
    for i in range(nb):
        x[i] = rng.standard_normal(32) * (10.0 ** rng.uniform(-3, 2))
    x[0] = 0.0
    x[1] = 0.5  # constant block (Q4_1/Q5_1: d = 0)
    x[2, 3], x[2, 7] = -2.5, 2.5  # equal magnitudes: the first one wins
    x[2, :3] = 0.1
    x[3] = np.arange(32, dtype=np.float32) - 15.5
    x[4, 5] = 70000.0  # f16 overflow of the scale for F16 (inf), large for others
    return x.reshape(-1)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    for name in ["F32", "F16", "BF16"] + LEGACY + KQ + LATER:
        qt = T[name]
        raw = random_blocks(rng, name)
        with open(os.path.join(OUT, f"{name}.blocks"), "wb") as f:
            f.write(raw.tobytes())
        deq = quants.dequantize(raw, qt).astype(np.float32)
        with open(os.path.join(OUT, f"{name}.blocks.f32"), "wb") as f:
            f.write(deq.astype("<f4").tobytes())
        if name in QUANTIZABLE:
            src = quant_source(rng, name)
            if name in ("F16", "BF16"):
                src[:6] = [65519.0, 65520.0, 5.9604645e-08, 2.9802322e-08, 1e-9, -3.0e38]
            q = quants.quantize(src, qt)
            with open(os.path.join(OUT, f"{name}.src.f32"), "wb") as f:
                f.write(src.astype("<f4").tobytes())
            with open(os.path.join(OUT, f"{name}.quant"), "wb") as f:
                f.write(np.ascontiguousarray(q).view(np.uint8).tobytes())
    table = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    with open(os.path.join(OUT, "f16-table.fnv1a64"), "w") as f:
        f.write("%016x\n" % fnv1a64(table.astype("<f4").tobytes()))
    print(f"gguf {version('gguf')}, numpy {np.__version__}, python {sys.version.split()[0]}: wrote {OUT}")


if __name__ == "__main__":
    main()
