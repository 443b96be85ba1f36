//! GGUF containers (`formats::gguf`): our writer round-trips through our reader; files written
//! by the `gguf` Python package (llama.cpp's gguf-py, an independent implementation) read back
//! exactly as its JSON sidecars say; every truncation and every hostile count or shape gives
//! its typed error; random and mutated bytes never panic and never yield out-of-bounds tensor
//! data; a 262,144-string vocabulary is parsed without being materialized.
use llm_engine::formats::gguf::*;
use proptest::prelude::*;
use serde_json::Value as Json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

// ---------------------------------------------------------------------------------------
// A byte-counting allocator (this thread only, only inside `counted`).
// ---------------------------------------------------------------------------------------

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note(n: usize) {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = BYTES.try_with(|b| b.set(b.get() + n));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counting touches only thread-locals and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc`'s contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc`'s contract.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc`'s contract.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(n);
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc`'s contract.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f`, returning its result and the bytes it allocated on this thread (a total, not a peak).
fn counted<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = BYTES.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, BYTES.with(Cell::get) - before)
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/gguf/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (run scripts/make-gguf-fixtures.py)"))
}

fn sidecar(name: &str) -> Json {
    serde_json::from_slice(&fixture(name)).expect("sidecar JSON")
}

/// Every parsed file's tensors must lie inside the file and have their stated size.
fn check_tensors_in_bounds(g: &Gguf<'_>, len: usize) {
    for t in g.tensors() {
        let d = g.tensor_data(t);
        assert_eq!(d.len(), t.n_bytes, "{}", t.name);
        let start = d.as_ptr() as usize - g.bytes().as_ptr() as usize;
        assert!(start + d.len() <= len);
        assert!(start >= g.data_offset());
        assert_eq!(start - g.data_offset(), t.offset as usize);
        let expected = t.ggml_type.row_bytes(t.n_elements()).unwrap();
        assert_eq!(expected as usize, t.n_bytes);
    }
}

/// Hand-built files for the hostile cases: raw KV and tensor-info records.
#[derive(Default, Clone)]
struct Raw {
    version: u32,
    n_kv: Option<u64>,
    n_tensors: Option<u64>,
    kvs: Vec<Vec<u8>>,
    infos: Vec<Vec<u8>>,
    alignment: usize,
    data: Vec<u8>,
}

fn s(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

fn kv(key: &str, type_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = s(key.as_bytes());
    v.extend_from_slice(&type_id.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

fn arr_header(elem: u32, count: u64) -> Vec<u8> {
    let mut v = elem.to_le_bytes().to_vec();
    v.extend_from_slice(&count.to_le_bytes());
    v
}

fn info(name: &str, dims: &[u64], type_id: u32, offset: u64) -> Vec<u8> {
    let mut v = s(name.as_bytes());
    v.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    dims.iter().for_each(|d| v.extend_from_slice(&d.to_le_bytes()));
    v.extend_from_slice(&type_id.to_le_bytes());
    v.extend_from_slice(&offset.to_le_bytes());
    v
}

impl Raw {
    fn new() -> Raw {
        Raw { version: 3, alignment: 32, ..Default::default() }
    }
    fn kv(mut self, k: Vec<u8>) -> Raw {
        self.kvs.push(k);
        self
    }
    fn tensor(mut self, i: Vec<u8>) -> Raw {
        self.infos.push(i);
        self
    }
    fn data(mut self, n: usize) -> Raw {
        self.data = (0..n).map(|i| i as u8).collect();
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut v = b"GGUF".to_vec();
        v.extend_from_slice(&self.version.to_le_bytes());
        v.extend_from_slice(&self.n_tensors.unwrap_or(self.infos.len() as u64).to_le_bytes());
        v.extend_from_slice(&self.n_kv.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        self.kvs.iter().for_each(|k| v.extend_from_slice(k));
        self.infos.iter().for_each(|i| v.extend_from_slice(i));
        v.resize(v.len().div_ceil(self.alignment) * self.alignment, 0);
        v.extend_from_slice(&self.data);
        v
    }
}

fn err(bytes: &[u8]) -> GgufError {
    let e = Gguf::parse(bytes).expect_err("hostile file must be rejected");
    assert!(!e.to_string().is_empty());
    e
}

// ---------------------------------------------------------------------------------------
// Round trip through our own writer
// ---------------------------------------------------------------------------------------

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn writer_round_trips_every_kv_and_tensor() {
    for alignment in [None, Some(1u32), Some(64), Some(4096)] {
        let t_f32 = f32_bytes(&(0..15).map(|i| i as f32 * 0.5 - 3.0).collect::<Vec<_>>());
        let t_f16: Vec<u8> = (0..14u8).collect(); // 7 f16
        let t_q8: Vec<u8> = (0..2 * 34).map(|i| (i * 7) as u8).collect(); // 2 Q8_0 blocks
        let t_q4k: Vec<u8> = (0..144 * 2).map(|i| (i * 13) as u8).collect(); // 2 Q4_K blocks
        let t_bf16: Vec<u8> = (0..2 * 6).map(|i| i as u8).collect();
        let t_q6k: Vec<u8> = (0..210).map(|i| (i * 3) as u8).collect();
        let empty: Vec<u8> = Vec::new();
        let mut w = GgufWriter::new();
        if let Some(a) = alignment {
            w.set_alignment(a).unwrap();
        }
        w.add_string("general.architecture", "gemma3").unwrap();
        w.add_u8("k.u8", 200).unwrap();
        w.add_i8("k.i8", -100).unwrap();
        w.add_u16("k.u16", 60000).unwrap();
        w.add_i16("k.i16", -30000).unwrap();
        w.add_u32("k.u32", 0xdead_beef).unwrap();
        w.add_i32("k.i32", -123456789).unwrap();
        w.add_f32("k.f32", 1e-6).unwrap();
        w.add_bool("k.bool", true).unwrap();
        w.add_u64("k.u64", u64::MAX - 1).unwrap();
        w.add_i64("k.i64", i64::MIN + 1).unwrap();
        w.add_f64("k.f64", core::f64::consts::PI).unwrap();
        w.add_string("k.str", "héllo ✓").unwrap();
        w.add_string("k.empty", "").unwrap();
        w.add_string_array("k.tokens", &["<s>", "", "▁the", "日本"]).unwrap();
        w.add_string_array("k.bytes", &[&[0xffu8, 0x00][..], b"ok"]).unwrap();
        w.add_f32_array("k.scores", &[0.0, -1.5, f32::MAX, f32::MIN_POSITIVE]).unwrap();
        w.add_i32_array("k.types", &[1, -2, i32::MAX]).unwrap();
        w.add_u32_array("k.u32s", &[]).unwrap();
        w.add_tensor("a.f32", &[5, 3], GgmlType::F32, &t_f32).unwrap();
        w.add_tensor("b.f16", &[7], GgmlType::F16, &t_f16).unwrap();
        w.add_tensor("c.q8_0", &[32, 2, 1, 1], GgmlType::Q8_0, &t_q8).unwrap();
        w.add_tensor("d.q4_k", &[256, 1, 2], GgmlType::Q4_K, &t_q4k).unwrap();
        w.add_tensor("e.empty", &[0, 4], GgmlType::F32, &empty).unwrap();
        w.add_tensor("f.bf16", &[2, 3], GgmlType::BF16, &t_bf16).unwrap();
        w.add_tensor("g.q6_k", &[256], GgmlType::Q6_K, &t_q6k).unwrap();
        let file = w.finish();

        let g = Gguf::parse(&file).unwrap();
        assert_eq!(g.version(), 3);
        let align = alignment.unwrap_or(32) as usize;
        assert_eq!(g.alignment(), align);
        assert_eq!(g.data_offset() % align, 0);
        assert_eq!(g.architecture().unwrap(), "gemma3");
        assert_eq!(g.get("k.u8"), Some(Value::U8(200)));
        assert_eq!(g.get("k.i8"), Some(Value::I8(-100)));
        assert_eq!(g.get("k.u16"), Some(Value::U16(60000)));
        assert_eq!(g.get("k.i16"), Some(Value::I16(-30000)));
        assert_eq!(g.get_u32("k.u32").unwrap(), 0xdead_beef);
        assert_eq!(g.get_i32("k.i32").unwrap(), -123456789);
        assert_eq!(g.get_f32("k.f32").unwrap().to_bits(), 1e-6f32.to_bits());
        assert!(g.get_bool("k.bool").unwrap());
        assert_eq!(g.get_u64("k.u64").unwrap(), u64::MAX - 1);
        assert_eq!(g.get("k.i64"), Some(Value::I64(i64::MIN + 1)));
        assert_eq!(g.get("k.f64"), Some(Value::F64(core::f64::consts::PI)));
        assert_eq!(g.get_str("k.str").unwrap(), "héllo ✓");
        assert_eq!(g.get_str("k.empty").unwrap(), "");
        let toks: Vec<&[u8]> = g.get_array("k.tokens").unwrap().strings().unwrap().collect();
        assert_eq!(toks, [&b"<s>"[..], b"", "▁the".as_bytes(), "日本".as_bytes()]);
        let raw: Vec<&[u8]> = g.get_array("k.bytes").unwrap().strings().unwrap().collect();
        assert_eq!(raw, [&[0xffu8, 0x00][..], b"ok"]);
        let scores: Vec<f32> = g.get_array("k.scores").unwrap().f32s().unwrap().collect();
        assert_eq!(scores, [0.0, -1.5, f32::MAX, f32::MIN_POSITIVE]);
        let types: Vec<i32> = g.get_array("k.types").unwrap().i32s().unwrap().collect();
        assert_eq!(types, [1, -2, i32::MAX]);
        let empty_arr = g.get_array("k.u32s").unwrap();
        assert!(empty_arr.is_empty() && empty_arr.elem_type() == ValueType::U32);
        // Keys in insertion order, general.alignment first when set.
        let keys: Vec<&str> = g.metadata().iter().map(|kv| kv.key).collect();
        assert_eq!(keys.len(), 19 + alignment.is_some() as usize);
        if alignment.is_some() {
            assert_eq!(keys[0], ALIGNMENT_KEY);
        }

        let expect: [(&str, &[u64], GgmlType, &[u8]); 7] = [
            ("a.f32", &[5, 3], GgmlType::F32, &t_f32),
            ("b.f16", &[7], GgmlType::F16, &t_f16),
            ("c.q8_0", &[32, 2, 1, 1], GgmlType::Q8_0, &t_q8),
            ("d.q4_k", &[256, 1, 2], GgmlType::Q4_K, &t_q4k),
            ("e.empty", &[0, 4], GgmlType::F32, &empty),
            ("f.bf16", &[2, 3], GgmlType::BF16, &t_bf16),
            ("g.q6_k", &[256], GgmlType::Q6_K, &t_q6k),
        ];
        assert_eq!(g.tensors().len(), expect.len());
        for (t, (name, dims, ty, data)) in g.tensors().iter().zip(expect) {
            assert_eq!(t.name, name);
            assert_eq!(t.shape(), dims);
            assert_eq!(t.ggml_type, ty);
            assert_eq!(t.offset % align as u64, 0);
            assert_eq!(g.tensor_data(t), data, "{name}");
            assert_eq!(g.tensor(name), Some(t));
        }
        check_tensors_in_bounds(&g, file.len());
    }
}

#[test]
fn writer_rejects_bad_input() {
    let mut w = GgufWriter::new();
    w.add_u32("a", 1).unwrap();
    assert_eq!(w.add_string("a", "x"), Err(GgufError::DuplicateKey { key: "a".into() }));
    for a in [0u32, 3, 96] {
        assert!(matches!(w.set_alignment(a), Err(GgufError::BadAlignment { .. })), "{a}");
    }
    assert!(matches!(w.add_u64(ALIGNMENT_KEY, 64), Err(GgufError::BadAlignment { .. })));
    let d = [0u8; 34];
    assert!(matches!(w.add_tensor("t", &[32], GgmlType::Q8_0, &d[..33]), Err(GgufError::DataSizeMismatch { .. })));
    assert!(matches!(w.add_tensor("t", &[33], GgmlType::Q8_0, &d), Err(GgufError::NotBlockMultiple { .. })));
    assert!(matches!(w.add_tensor("t", &[], GgmlType::F32, &[]), Err(GgufError::BadDimCount { .. })));
    assert!(matches!(w.add_tensor("t", &[1; 5], GgmlType::F32, &[]), Err(GgufError::BadDimCount { .. })));
    assert!(matches!(w.add_tensor("t", &[1 << 40, 1 << 40], GgmlType::F32, &[]), Err(GgufError::ShapeOverflow { .. })));
    assert!(matches!(w.add_tensor("t", &[1], GgmlType::from_id(4), &[]), Err(GgufError::UnknownTensorType { .. })));
    w.add_tensor("t", &[32], GgmlType::Q8_0, &d).unwrap();
    assert!(matches!(w.add_tensor("t", &[32], GgmlType::Q8_0, &d), Err(GgufError::DuplicateTensor { .. })));
    Gguf::parse(&w.finish()).unwrap();
}

// ---------------------------------------------------------------------------------------
// Files written by the Python `gguf` package
// ---------------------------------------------------------------------------------------

fn json_u64(j: &Json) -> u64 {
    j.as_u64().unwrap_or_else(|| panic!("not a u64: {j}"))
}

/// Compares one parsed value with the sidecar's typed record, exactly.
fn check_value(v: &Value<'_>, rec: &Json, ctx: &str) {
    let ty = rec["type"].as_str().unwrap();
    let j = &rec["value"];
    assert_eq!(v.value_type().name(), ty, "{ctx}");
    match *v {
        Value::U8(x) => assert_eq!(x as u64, json_u64(j), "{ctx}"),
        Value::U16(x) => assert_eq!(x as u64, json_u64(j), "{ctx}"),
        Value::U32(x) => assert_eq!(x as u64, json_u64(j), "{ctx}"),
        Value::U64(x) => assert_eq!(x, json_u64(j), "{ctx}"),
        Value::I8(x) => assert_eq!(x as i64, j.as_i64().unwrap(), "{ctx}"),
        Value::I16(x) => assert_eq!(x as i64, j.as_i64().unwrap(), "{ctx}"),
        Value::I32(x) => assert_eq!(x as i64, j.as_i64().unwrap(), "{ctx}"),
        Value::I64(x) => assert_eq!(x, j.as_i64().unwrap(), "{ctx}"),
        Value::F32(x) => assert_eq!((x as f64).to_bits(), j.as_f64().unwrap().to_bits(), "{ctx}"),
        Value::F64(x) => assert_eq!(x.to_bits(), j.as_f64().unwrap().to_bits(), "{ctx}"),
        Value::Bool(x) => assert_eq!(x, j.as_bool().unwrap(), "{ctx}"),
        Value::String(b) => assert_eq!(b, j.as_str().unwrap().as_bytes(), "{ctx}"),
        Value::Array(a) => {
            assert_eq!(a.elem_type().name(), j["elem"].as_str().unwrap(), "{ctx}");
            let items = j["items"].as_array().unwrap();
            assert_eq!(a.len(), items.len(), "{ctx}");
            assert_eq!(a.values().len(), items.len(), "{ctx}");
            for (i, (e, r)) in a.values().zip(items).enumerate() {
                check_value(&e, r, &format!("{ctx}[{i}]"));
            }
            // The typed iterators agree with the generic one.
            let n = match a.elem_type() {
                ValueType::U8 => a.u8s().unwrap().zip(a.values()).filter(|(x, v)| Value::U8(*x) == *v).count(),
                ValueType::I8 => a.i8s().unwrap().zip(a.values()).filter(|(x, v)| Value::I8(*x) == *v).count(),
                ValueType::U16 => a.u16s().unwrap().zip(a.values()).filter(|(x, v)| Value::U16(*x) == *v).count(),
                ValueType::I16 => a.i16s().unwrap().zip(a.values()).filter(|(x, v)| Value::I16(*x) == *v).count(),
                ValueType::U32 => a.u32s().unwrap().zip(a.values()).filter(|(x, v)| Value::U32(*x) == *v).count(),
                ValueType::I32 => a.i32s().unwrap().zip(a.values()).filter(|(x, v)| Value::I32(*x) == *v).count(),
                ValueType::F32 => a
                    .f32s()
                    .unwrap()
                    .zip(a.values())
                    .filter(|(x, v)| {
                        Value::F32(*x).value_type() == v.value_type() && matches!(v, Value::F32(y) if y.to_bits() == x.to_bits())
                    })
                    .count(),
                ValueType::Bool => a.bools().unwrap().zip(a.values()).filter(|(x, v)| Value::Bool(*x) == *v).count(),
                ValueType::U64 => a.u64s().unwrap().zip(a.values()).filter(|(x, v)| Value::U64(*x) == *v).count(),
                ValueType::I64 => a.i64s().unwrap().zip(a.values()).filter(|(x, v)| Value::I64(*x) == *v).count(),
                ValueType::F64 => a.f64s().unwrap().zip(a.values()).filter(|(x, v)| Value::F64(*x) == *v).count(),
                ValueType::String => a.strings().unwrap().zip(a.values()).filter(|(x, v)| Value::String(x) == *v).count(),
                ValueType::Array => a.arrays().unwrap().zip(a.values()).filter(|(x, v)| Value::Array(*x) == *v).count(),
            };
            assert_eq!(n, a.len(), "{ctx}: typed iterator");
            // ... and every other typed iterator refuses.
            assert_eq!(a.strings().is_some(), a.elem_type() == ValueType::String);
            assert_eq!(a.f32s().is_some(), a.elem_type() == ValueType::F32);
            assert_eq!(a.arrays().is_some(), a.elem_type() == ValueType::Array);
        }
    }
}

fn check_fixture(stem: &str) {
    let bytes = fixture(&format!("{stem}.gguf"));
    let side = sidecar(&format!("{stem}.json"));
    let g = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("{stem}: {e}"));
    assert_eq!(g.version() as u64, json_u64(&side["gguf_version"]));
    assert_eq!(g.alignment() as u64, json_u64(&side["alignment"]));
    assert_eq!(g.data_offset() as u64, json_u64(&side["data_offset"]));
    let kvs = side["kv"].as_array().unwrap();
    assert_eq!(g.metadata().len(), kvs.len());
    for (kv, rec) in g.metadata().iter().zip(kvs) {
        assert_eq!(kv.key, rec["key"].as_str().unwrap());
        check_value(&kv.value, rec, kv.key);
        assert_eq!(g.get(kv.key), Some(kv.value));
    }
    let ts = side["tensors"].as_array().unwrap();
    assert_eq!(g.tensors().len(), ts.len());
    for (t, rec) in g.tensors().iter().zip(ts) {
        let name = rec["name"].as_str().unwrap();
        assert_eq!(t.name, name);
        let dims: Vec<u64> = rec["dims"].as_array().unwrap().iter().map(json_u64).collect();
        assert_eq!(t.shape(), &dims[..], "{name}");
        assert_eq!(t.ggml_type.id() as u64, json_u64(&rec["type_id"]), "{name}");
        assert_eq!(t.ggml_type.name(), rec["type"].as_str().unwrap(), "{name}");
        assert_eq!(t.n_bytes as u64, json_u64(&rec["n_bytes"]), "{name}");
        assert_eq!(t.offset, json_u64(&rec["offset"]), "{name}");
        let data = g.tensor_data(t);
        assert_eq!(data.as_ptr() as usize - bytes.as_ptr() as usize, json_u64(&rec["data_offset"]) as usize);
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, rec["raw_hex"].as_str().unwrap(), "{name}");
        if t.ggml_type == GgmlType::F32 {
            let want = rec["values"].as_array().unwrap();
            let got: Vec<f32> = data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            assert_eq!(got.len(), want.len());
            for (x, w) in got.iter().zip(want) {
                assert_eq!((*x as f64).to_bits(), w.as_f64().unwrap().to_bits(), "{name}");
            }
        }
    }
    check_tensors_in_bounds(&g, bytes.len());
}

#[test]
fn python_gguf_all_types_fixture_matches_sidecar() {
    check_fixture("all-types");
    let bytes = fixture("all-types.gguf");
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.alignment(), 64);
    assert_eq!(g.architecture().unwrap(), "test");
    // Counts stored as u32, u64 or i32 all read as usize; negative ones and non-integers do not.
    assert_eq!(g.get_usize("test.count_u32").unwrap(), 262144);
    assert_eq!(g.get_usize("test.count_u64").unwrap(), 151387);
    assert_eq!(g.get_usize("test.count_i32").unwrap(), 7);
    assert_eq!(g.get_usize("test.u8").unwrap(), 255);
    assert_eq!(g.get_usize("test.negative_i32"), Err(GgufError::NegativeValue { key: "test.negative_i32".into(), value: -1 }));
    assert!(matches!(g.get_usize("test.f32"), Err(GgufError::WrongType { found: ValueType::F32, .. })));
    assert!(matches!(g.get_u32("test.u64"), Err(GgufError::WrongType { expected: "u32", found: ValueType::U64, .. })));
    assert_eq!(g.get_u32("nope"), Err(GgufError::MissingKey { key: "nope".into() }));
    assert!(matches!(g.get_str("test.arr.string"), Err(GgufError::WrongType { found: ValueType::Array, .. })));
    assert_eq!(g.get_str("test.string").unwrap(), "héllo, wörld ✓ 日本語");
    let nested: Vec<Vec<i32>> = g.get_array("test.nested.i32").unwrap().arrays().unwrap().map(|a| a.i32s().unwrap().collect()).collect();
    assert_eq!(nested, [vec![1, 2], vec![3, 4, 5], vec![6]]);
    let deep = g.get_array("test.nested.deep").unwrap();
    let last: Vec<i32> = deep.arrays().unwrap().nth(1).unwrap().arrays().unwrap().next().unwrap().i32s().unwrap().collect();
    assert_eq!(last, [4, 5, 6]);
    let names: Vec<&[u8]> = g.get_array("test.nested.string").unwrap().arrays().unwrap().flat_map(|a| a.strings().unwrap()).collect();
    assert_eq!(names, [&b"a"[..], b"bc", "déf".as_bytes()]);
}

#[test]
fn python_gguf_llama_like_fixture_matches_sidecar() {
    check_fixture("llama-like");
    let bytes = fixture("llama-like.gguf");
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.get_array("tokenizer.ggml.tokens").unwrap().strings().unwrap().nth(301), Some(&b"<|im_end|>"[..]));
    let types: Vec<&str> = g.tensors().iter().map(|t| t.ggml_type.name()).collect();
    assert_eq!(types, ["Q8_0", "F32", "Q5_0", "Q4_1", "Q5_1", "BF16", "Q4_K", "Q5_K", "Q6_K"]);
}

#[test]
fn version_2_reads_like_3_and_other_versions_are_refused() {
    let mut bytes = fixture("all-types.gguf");
    let v3 = Gguf::parse(&bytes).unwrap().metadata().len();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!((g.version(), g.metadata().len()), (2, v3));
    for v in [0u32, 1, 4, 0xffff_ffff] {
        bytes[4..8].copy_from_slice(&v.to_le_bytes());
        assert_eq!(err(&bytes), GgufError::UnsupportedVersion { version: v });
    }
    assert!(GgufError::UnsupportedVersion { version: 1 }.to_string().contains("version 1"));
    bytes[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(err(&bytes), GgufError::BigEndian { version: 3 });
    bytes[..4].copy_from_slice(b"GGML");
    assert!(matches!(err(&bytes), GgufError::BadMagic { .. }));
    assert_eq!(err(b"GGUF\x03\0\0\0"), GgufError::TooShort { len: 8 });
    assert_eq!(err(b""), GgufError::TooShort { len: 0 });
}

// ---------------------------------------------------------------------------------------
// Truncation and hostile files
// ---------------------------------------------------------------------------------------

#[test]
fn truncation_at_every_byte_is_an_error_until_the_last_tensor_ends() {
    for stem in ["all-types", "llama-like"] {
        let bytes = fixture(&format!("{stem}.gguf"));
        let g = Gguf::parse(&bytes).unwrap();
        let end = g.tensors().iter().map(|t| g.data_offset() + t.offset as usize + t.n_bytes).max().unwrap();
        assert!(end <= bytes.len() && end > bytes.len() - g.alignment());
        for n in 0..bytes.len() {
            let r = Gguf::parse(&bytes[..n]);
            if n < end {
                let e = r.expect_err("a truncated file must be rejected");
                assert!(!e.to_string().is_empty());
                // Cut inside the directory: Truncated or StringTooLong; inside the data:
                // the tensor that no longer fits.
                if n >= g.data_offset() {
                    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{stem} at {n}: {e:?}");
                } else if n >= 24 {
                    assert!(
                        matches!(
                            e,
                            GgufError::Truncated { .. }
                                | GgufError::StringTooLong { .. }
                                | GgufError::ArrayTooLong { .. }
                                | GgufError::TooManyEntries { .. }
                                | GgufError::TensorOutOfBounds { .. }
                        ),
                        "{stem} at {n}: {e:?}"
                    );
                }
            } else {
                // Only the trailing padding is missing: every tensor is still whole.
                check_tensors_in_bounds(&r.unwrap(), n);
            }
        }
    }
}

fn u32b(x: u32) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}
fn u64b(x: u64) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

#[test]
fn hostile_counts_and_lengths_are_refused_before_allocating() {
    let base = Raw::new().kv(kv("a", 4, &u32b(1)));
    // Counts the file cannot hold.
    let r = Raw { n_tensors: Some(u64::MAX), ..base.clone() };
    let (e, bytes) = counted(|| Gguf::parse(&r.bytes()).map(|_| ()));
    assert!(bytes < 4096, "allocated {bytes} bytes");
    assert!(matches!(e, Err(GgufError::TooManyEntries { what: "tensors", count: u64::MAX, .. })), "{e:?}");
    let r = Raw { n_kv: Some(u64::MAX), ..base.clone() };
    assert!(matches!(err(&r.bytes()), GgufError::TooManyEntries { what: "metadata entries", .. }));
    let r = Raw { n_kv: Some(1 << 40), n_tensors: Some(1 << 40), ..base.clone() };
    assert!(matches!(err(&r.bytes()), GgufError::TooManyEntries { .. }));
    // A count that fits the file's size but whose entries are not there.
    let r = Raw { n_kv: Some(2), alignment: 1, data: vec![0xff; 13], ..base.clone() };
    assert!(matches!(err(&r.bytes()), GgufError::StringTooLong { .. }));
    let r = Raw { n_kv: Some(2), alignment: 1, data: vec![0; 12], ..base.clone() };
    assert!(matches!(err(&r.bytes()), GgufError::Truncated { .. }));

    // Huge array counts, for each element type.
    for (elem, min) in [(0u32, 1u64), (4, 4), (8, 8), (9, 12), (12, 8)] {
        let mut p = arr_header(elem, u64::MAX / 2);
        p.extend_from_slice(&[0; 40]);
        let e = err(&Raw { alignment: 1, ..Raw::new().kv(kv("big", 9, &p)) }.bytes());
        match e {
            GgufError::ArrayTooLong { ref key, count, max, .. } => {
                assert_eq!((key.as_str(), count), ("big", u64::MAX / 2));
                assert!(max <= 40 / min, "{max}");
            }
            e => panic!("{e:?}"),
        }
    }
    // Huge string lengths: key, value, array element, tensor name.
    let e = err(&Raw::new().kv([u64b(u64::MAX), u32b(4), u32b(1)].concat()).bytes());
    assert!(matches!(e, GgufError::StringTooLong { length: u64::MAX, .. }), "{e:?}");
    let e = err(&Raw::new().kv(kv("s", 8, &[u64b(1 << 62), vec![b'x'; 16]].concat())).bytes());
    assert!(matches!(e, GgufError::StringTooLong { ref what, .. } if what.contains("'s'")), "{e:?}");
    let e = err(&Raw::new().kv(kv("s", 9, &[arr_header(8, 2), s(b"ok"), u64b(1 << 40)].concat())).bytes());
    assert!(matches!(e, GgufError::StringTooLong { .. }), "{e:?}");
    let e = err(&Raw::new().tensor([u64b(u64::MAX - 3), vec![0; 40]].concat()).bytes());
    assert!(matches!(e, GgufError::StringTooLong { ref what, .. } if what.contains("tensor")), "{e:?}");
}

#[test]
fn hostile_values_are_refused_with_their_key() {
    // Unknown value types, at the top and inside an array.
    let e = err(&Raw::new().kv(kv("weird", 13, &[0; 8])).bytes());
    assert!(matches!(e, GgufError::UnknownValueType { ref key, type_id: 13, .. } if key == "weird"), "{e:?}");
    let e = err(&Raw::new().kv(kv("weird", 9, &[arr_header(99, 1), vec![0; 8]].concat())).bytes());
    assert!(matches!(e, GgufError::UnknownValueType { type_id: 99, .. }), "{e:?}");
    // Nesting: 8 levels are fine, 9 are not.
    let nest = |levels: usize| {
        let mut p = Vec::new();
        for _ in 0..levels - 1 {
            p.extend(arr_header(9, 1));
        }
        p.extend(arr_header(4, 1));
        p.extend(u32b(7));
        Raw::new().kv(kv("deep", 9, &p)).bytes()
    };
    let ok = nest(MAX_ARRAY_DEPTH);
    let g = Gguf::parse(&ok).unwrap();
    let mut a = g.get_array("deep").unwrap();
    for _ in 0..MAX_ARRAY_DEPTH - 1 {
        a = a.arrays().unwrap().next().unwrap();
    }
    assert_eq!(a.u32s().unwrap().collect::<Vec<_>>(), [7]);
    assert!(matches!(err(&nest(MAX_ARRAY_DEPTH + 1)), GgufError::NestingTooDeep { ref key, .. } if key == "deep"));
    assert!(matches!(err(&nest(10_000)), GgufError::NestingTooDeep { .. }));
    // Bools other than 0 and 1.
    assert!(matches!(err(&Raw::new().kv(kv("b", 7, &[2])).bytes()), GgufError::InvalidBool { value: 2, .. }));
    let e = err(&Raw::new().kv(kv("b", 9, &[arr_header(7, 3), vec![1, 0, 0xff]].concat())).bytes());
    assert!(matches!(e, GgufError::InvalidBool { value: 0xff, .. }), "{e:?}");
    // Keys: not UTF-8, duplicated.
    assert!(matches!(err(&Raw::new().kv([s(&[0xc3, 0x28]), u32b(4), u32b(1)].concat()).bytes()), GgufError::KeyNotUtf8 { offset: 24 }));
    let e = err(&Raw::new().kv(kv("a", 4, &u32b(1))).kv(kv("a", 5, &u32b(1))).bytes());
    assert_eq!(e, GgufError::DuplicateKey { key: "a".into() });
    // A string value that is not UTF-8 parses (vocabularies may hold raw bytes) but get_str refuses it.
    let f = Raw::new().kv(kv("s", 8, &s(&[0xff, 0xfe]))).bytes();
    let g = Gguf::parse(&f).unwrap();
    assert_eq!(g.get_str("s"), Err(GgufError::NotUtf8 { key: "s".into() }));
    assert_eq!(g.get("s"), Some(Value::String(&[0xff, 0xfe])));
}

#[test]
fn bad_alignments_are_refused() {
    for a in [0u32, 3, 48, 0x8000_0001] {
        let e = err(&Raw::new().kv(kv(ALIGNMENT_KEY, 4, &u32b(a))).bytes());
        assert_eq!(e, GgufError::BadAlignment { value: Some(a as u64), found_type: ValueType::U32 });
    }
    let e = err(&Raw::new().kv(kv(ALIGNMENT_KEY, 10, &u64b(64))).bytes());
    assert_eq!(e, GgufError::BadAlignment { value: Some(64), found_type: ValueType::U64 });
    let e = err(&Raw::new().kv(kv(ALIGNMENT_KEY, 8, &s(b"64"))).bytes());
    assert_eq!(e, GgufError::BadAlignment { value: None, found_type: ValueType::String });
    // A large power of two is fine (the data section then starts far out).
    let f = Raw { alignment: 1 << 16, ..Raw::new().kv(kv(ALIGNMENT_KEY, 4, &u32b(1 << 16))) }.bytes();
    assert_eq!(Gguf::parse(&f).unwrap().data_offset(), 1 << 16);
    let f = Raw::new().kv(kv(ALIGNMENT_KEY, 4, &u32b(1 << 31))).bytes();
    assert_eq!(Gguf::parse(&f).unwrap().alignment(), 1 << 31);
}

#[test]
fn hostile_tensor_infos_are_refused_with_their_name() {
    let f32_16 = |name: &str, offset: u64| info(name, &[4], 0, offset);
    // The good file these are variations of.
    let good = Raw::new().tensor(f32_16("a", 0)).tensor(f32_16("b", 32)).data(48);
    let good = good.bytes();
    let g = Gguf::parse(&good).unwrap();
    assert_eq!(g.tensors().len(), 2);
    check_tensors_in_bounds(&g, good.len());

    let one = |i: Vec<u8>, data: usize| err(&Raw::new().tensor(i).data(data).bytes());
    for n_dims in [0usize, 5, 1000] {
        let mut i = s(b"t");
        i.extend(u32b(n_dims as u32));
        i.extend(vec![1u8; 8 * n_dims.min(5) + 12]);
        let e = one(i, 64);
        assert!(matches!(e, GgufError::BadDimCount { ref name, n_dims: n, .. } if name == "t" && n == n_dims as u32), "{e:?}");
    }
    let e = one(info("huge", &[1 << 32, 1 << 32], 0, 0), 64);
    assert!(matches!(e, GgufError::ShapeOverflow { ref name, .. } if name == "huge"), "{e:?}");
    let e = one(info("huge", &[u64::MAX], 0, 0), 64);
    assert!(matches!(e, GgufError::ShapeOverflow { .. }), "{e:?}");
    let e = one(info("huge", &[1 << 62, 4], 8, 0), 64);
    assert!(matches!(e, GgufError::ShapeOverflow { .. }), "{e:?}");
    // 2^62 elements of f32 = 2^64 bytes: the element count fits but the bytes do not.
    let e = one(info("huge", &[1 << 31, 1 << 31], 0, 0), 64);
    assert!(matches!(e, GgufError::ShapeOverflow { .. }), "{e:?}");
    let e = one(info("q", &[4], 4, 0), 64);
    assert_eq!(e, GgufError::UnknownTensorType { name: "q".into(), type_id: 4 });
    let e = one(info("q", &[4], 1000, 0), 64);
    assert!(matches!(e, GgufError::UnknownTensorType { type_id: 1000, .. }), "{e:?}");
    let e = one(info("q", &[33], 8, 0), 64);
    assert!(matches!(e, GgufError::NotBlockMultiple { row: 33, block: 32, ggml_type: GgmlType::Q8_0, .. }), "{e:?}");
    // The element count is a multiple of 32 here (16 x 2 = 32), the row is not.
    let e = one(info("q", &[16, 2], 8, 0), 64);
    assert!(matches!(e, GgufError::NotBlockMultiple { row: 16, .. }), "{e:?}");
    let e = one(info("m", &[4], 0, 4), 64);
    assert_eq!(e, GgufError::MisalignedTensor { name: "m".into(), offset: 4, alignment: 32 });
    let e = one(info("far", &[4], 0, 1 << 60), 64);
    assert!(matches!(e, GgufError::TensorOutOfBounds { ref name, .. } if name == "far"), "{e:?}");
    let e = one(info("far", &[4], 0, u64::MAX - 31), 64);
    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{e:?}");
    let e = one(info("long", &[32], 0, 0), 64);
    assert!(matches!(e, GgufError::TensorOutOfBounds { n_bytes: 128, .. }), "{e:?}");
    let e = err(&Raw::new().tensor(f32_16("a", 32)).tensor(info("b", &[16], 0, 0)).data(64).bytes());
    assert!(matches!(e, GgufError::TensorsOverlap { ref first, ref second } if first == "b" && second == "a"), "{e:?}");
    let e = err(&Raw::new().tensor(f32_16("a", 0)).tensor(f32_16("a", 32)).data(64).bytes());
    assert_eq!(e, GgufError::DuplicateTensor { name: "a".into() });
    let e = err(&Raw::new().tensor([s(&[0x80]), u32b(1), u64b(4), u32b(0), u64b(0)].concat()).data(16).bytes());
    assert_eq!(e, GgufError::TensorNameNotUtf8 { offset: 24 });
    // Empty tensors share no bytes: they may sit anywhere aligned inside the data.
    let f = Raw::new().tensor(f32_16("a", 0)).tensor(info("e", &[0, 3], 0, 0)).data(16).bytes();
    let g = Gguf::parse(&f).unwrap();
    assert_eq!(g.tensor_data(g.tensor("e").unwrap()), &[] as &[u8]);
    check_tensors_in_bounds(&g, f.len());
    // ... but inside the file (found by cargo-fuzz: an empty tensor far past the end).
    let e = err(&Raw::new().tensor(f32_16("a", 0)).tensor(info("e", &[0], 0, 1 << 40)).data(16).bytes());
    assert!(matches!(e, GgufError::TensorOutOfBounds { ref name, n_bytes: 0, .. } if name == "e"), "{e:?}");
}

#[test]
fn ggml_type_table() {
    // (id, block, bytes) as gguf-py 0.19.0's GGML_QUANT_SIZES lists them.
    let named = [
        (GgmlType::F32, 0, 1, 4),
        (GgmlType::F16, 1, 1, 2),
        (GgmlType::Q4_0, 2, 32, 18),
        (GgmlType::Q4_1, 3, 32, 20),
        (GgmlType::Q5_0, 6, 32, 22),
        (GgmlType::Q5_1, 7, 32, 24),
        (GgmlType::Q8_0, 8, 32, 34),
        (GgmlType::Q4_K, 12, 256, 144),
        (GgmlType::Q5_K, 13, 256, 176),
        (GgmlType::Q6_K, 14, 256, 210),
        (GgmlType::BF16, 30, 1, 2),
    ];
    for (t, id, block, size) in named {
        assert_eq!(GgmlType::from_id(id), t);
        assert_eq!(t.id(), id);
        assert_eq!((t.block_size(), t.type_size()), (Some(block), Some(size)), "{t}");
    }
    for id in 0..64u32 {
        let t = GgmlType::from_id(id);
        assert_eq!(t.id(), id);
        assert_eq!(t.block_size().is_some(), t.type_size().is_some());
        assert_eq!(t.block_size().is_some(), t.name() != "unknown", "{id}");
    }
    assert_eq!(GgmlType::from_id(10).name(), "Q2_K");
    assert_eq!(GgmlType::from_id(10).type_size(), Some(84));
    assert_eq!(GgmlType::from_id(10).block_type(), None);
    assert_eq!(GgmlType::from_id(4).block_size(), None);
    assert_eq!(GgmlType::from_id(4).to_string(), "unknown type 4");
    assert_eq!(GgmlType::Q4_K.row_bytes(512), Some(288));
    assert_eq!(GgmlType::Q4_K.row_bytes(100), None);
    // One table: every engine type is its GGUF type, and back.
    for t in llm_engine::quant::BlockType::ALL {
        assert_eq!(GgmlType::from(t).block_type(), Some(t));
        assert_eq!((GgmlType::from(t).name(), GgmlType::from(t).block_size()), (t.name(), Some(t.block_elems())));
    }
}

// ---------------------------------------------------------------------------------------
// Big arrays stay in the file
// ---------------------------------------------------------------------------------------

#[test]
fn a_262144_token_vocabulary_is_not_materialized() {
    let tokens: Vec<String> = (0..262_144).map(|i| format!("tok{i}")).collect();
    let scores: Vec<f32> = (0..262_144).map(|i| -(i as f32)).collect();
    let merges: Vec<String> = (0..151_387).map(|i| format!("a{i} b")).collect();
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "gemma3").unwrap();
    w.add_string_array("tokenizer.ggml.tokens", &tokens).unwrap();
    w.add_f32_array("tokenizer.ggml.scores", &scores).unwrap();
    w.add_string_array("tokenizer.ggml.merges", &merges).unwrap();
    let file = w.finish();
    assert!(file.len() > 5_000_000);
    let (g, allocated) = counted(|| Gguf::parse(&file).unwrap());
    assert!(allocated < 16 * 1024, "parse allocated {allocated} bytes for a {}-byte file", file.len());
    let toks = g.get_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(toks.len(), 262_144);
    assert_eq!(toks.strings().unwrap().len(), 262_144);
    assert_eq!(toks.strings().unwrap().nth(262_143), Some("tok262143".as_bytes()));
    assert!(toks.strings().unwrap().zip(&tokens).all(|(a, b)| a == b.as_bytes()));
    let mut sc = g.get_array("tokenizer.ggml.scores").unwrap().f32s().unwrap();
    assert_eq!(sc.len(), 262_144);
    assert_eq!(sc.next_back(), Some(-262_143.0));
    assert_eq!(g.get_array("tokenizer.ggml.merges").unwrap().strings().unwrap().last(), Some("a151386 b".as_bytes()));
    assert_eq!(g.get_array("tokenizer.ggml.merges").unwrap().f32s().map(|_| ()), None);
}

// ---------------------------------------------------------------------------------------
// Random and mutated input
// ---------------------------------------------------------------------------------------

fn parse_and_check(bytes: &[u8]) {
    if let Ok(g) = Gguf::parse(bytes) {
        check_tensors_in_bounds(&g, bytes.len());
        for kv in g.metadata() {
            if let Value::Array(a) = kv.value {
                assert_eq!(a.values().count(), a.len());
                if let Some(st) = a.strings() {
                    assert_eq!(st.count(), a.len());
                }
            }
        }
    }
}

fn seed_files() -> Vec<Vec<u8>> {
    let mut w = GgufWriter::new();
    let q8 = [7u8; 68];
    w.add_string("general.architecture", "llama").unwrap();
    w.add_u32("n", 3).unwrap();
    w.add_string_array("toks", &["a", "bc", ""]).unwrap();
    w.add_f32_array("f", &[1.0, 2.0]).unwrap();
    w.add_tensor("w", &[32, 2], GgmlType::Q8_0, &q8).unwrap();
    w.add_tensor("v", &[3], GgmlType::F32, &q8[..12]).unwrap();
    vec![w.finish(), fixture("all-types.gguf")]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..512), version in 2u32..4) {
        parse_and_check(&bytes);
        // With a valid header, the parse reaches the metadata and tensor readers.
        if bytes.len() >= 24 {
            bytes[..4].copy_from_slice(b"GGUF");
            bytes[4..8].copy_from_slice(&version.to_le_bytes());
            let (nt, nkv) = ((bytes[8] % 4) as u64, (bytes[16] % 4) as u64);
            bytes[8..16].copy_from_slice(&nt.to_le_bytes());
            bytes[16..24].copy_from_slice(&nkv.to_le_bytes());
        }
        parse_and_check(&bytes);
    }

    #[test]
    fn mutated_files_never_panic(
        which in 0usize..2,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u64>(), 0u8..4), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = seed_files().swap_remove(which);
        for (at, v, kind) in edits {
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = v as u8,
                1 => bytes[i] ^= 1 << (v % 8),
                // Overwrite a u32 or u64 field with an extreme or random value.
                2 => { let end = (i + 4).min(bytes.len()); let b = (v as u32).to_le_bytes(); bytes[i..end].copy_from_slice(&b[..end - i]); }
                _ => { let end = (i + 8).min(bytes.len()); let b = [v, u64::MAX, 1 << 63, 0][(v % 4) as usize].to_le_bytes(); bytes[i..end].copy_from_slice(&b[..end - i]); }
            }
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        parse_and_check(&bytes);
    }
}
