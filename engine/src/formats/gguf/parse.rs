//! Parsing a GGUF file: a bounds-checked reader over the bytes; every count compared with
//! what the remaining bytes could hold before anything is allocated or looped over.

use super::*;
/// A failure inside a value, before the key is attached.
pub(super) enum Fault {
    Short { offset: usize, needed: u64 },
    StringTooLong { offset: usize, length: u64, available: usize },
    ArrayTooLong { offset: usize, count: u64, elem_type: ValueType, max: u64 },
    UnknownType { offset: usize, type_id: u32 },
    TooDeep { offset: usize },
    BadBool { offset: usize, value: u8 },
}

impl Fault {
    fn at(self, what: impl FnOnce() -> String, key: impl FnOnce() -> String, len: usize) -> GgufError {
        match self {
            Fault::Short { offset, needed } => GgufError::Truncated { what: what(), offset, needed, len },
            Fault::StringTooLong { offset, length, available } => GgufError::StringTooLong { what: what(), offset, length, available },
            Fault::ArrayTooLong { offset, count, elem_type, max } => GgufError::ArrayTooLong { key: key(), offset, count, elem_type, max },
            Fault::UnknownType { offset, type_id } => GgufError::UnknownValueType { key: key(), offset, type_id },
            Fault::TooDeep { offset } => GgufError::NestingTooDeep { key: key(), offset },
            Fault::BadBool { offset, value } => GgufError::InvalidBool { key: key(), offset, value },
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Fault> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Fault::Short { offset: self.pos, needed: n as u64 }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fault> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, Fault> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, Fault> {
        self.array().map(u64::from_le_bytes)
    }

    /// A u64 length and that many bytes, the length bounded by the bytes left.
    pub(super) fn string(&mut self) -> Result<&'a [u8], Fault> {
        let offset = self.pos;
        let length = self.u64()?;
        let available = self.remaining();
        if length > available as u64 {
            return Err(Fault::StringTooLong { offset, length, available });
        }
        self.take(length as usize)
    }
}

/// Reads one value of type `ty`; arrays are walked (and their elements checked) but not
/// decoded. `depth` is the nesting level of the value (0 for a KV's own value).
pub(super) fn read_value<'a>(r: &mut Reader<'a>, ty: ValueType, depth: usize) -> Result<Value<'a>, Fault> {
    Ok(match ty {
        ValueType::U8 => Value::U8(r.array::<1>()?[0]),
        ValueType::I8 => Value::I8(r.array::<1>()?[0] as i8),
        ValueType::U16 => Value::U16(u16::from_le_bytes(r.array()?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(r.array()?)),
        ValueType::U32 => Value::U32(u32::from_le_bytes(r.array()?)),
        ValueType::I32 => Value::I32(i32::from_le_bytes(r.array()?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(r.array()?)),
        ValueType::U64 => Value::U64(u64::from_le_bytes(r.array()?)),
        ValueType::I64 => Value::I64(i64::from_le_bytes(r.array()?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(r.array()?)),
        ValueType::Bool => {
            let offset = r.pos;
            match r.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                value => return Err(Fault::BadBool { offset, value }),
            }
        }
        ValueType::String => Value::String(r.string()?),
        ValueType::Array => Value::Array(read_array(r, depth)?),
    })
}

fn read_array<'a>(r: &mut Reader<'a>, depth: usize) -> Result<Array<'a>, Fault> {
    let offset = r.pos;
    if depth >= MAX_ARRAY_DEPTH {
        return Err(Fault::TooDeep { offset });
    }
    let type_id = r.u32()?;
    let elem_type = ValueType::from_id(type_id).ok_or(Fault::UnknownType { offset, type_id })?;
    let count = r.u64()?;
    let max = r.remaining() as u64 / elem_type.min_size();
    if count > max {
        return Err(Fault::ArrayTooLong { offset, count, elem_type, max });
    }
    // count <= remaining bytes, so it fits a usize.
    let len = count as usize;
    let start = r.pos;
    match elem_type.fixed_size() {
        Some(size) => {
            let raw = r.take(len * size)?;
            if elem_type == ValueType::Bool
                && let Some(i) = raw.iter().position(|&b| b > 1)
            {
                return Err(Fault::BadBool { offset: start + i, value: raw[i] });
            }
        }
        None => {
            for _ in 0..len {
                read_value(r, elem_type, depth + 1)?;
            }
        }
    }
    Ok(Array { elem_type, len, raw: &r.bytes[start..r.pos] })
}

pub(super) fn parse(bytes: &[u8]) -> Result<Gguf<'_>, GgufError> {
    let len = bytes.len();
    if len < HEADER_BYTES {
        if len >= 4 && bytes[..4] != MAGIC {
            return Err(GgufError::BadMagic { found: [bytes[0], bytes[1], bytes[2], bytes[3]] });
        }
        return Err(GgufError::TooShort { len });
    }
    let mut r = Reader { bytes, pos: 0 };
    let header = |f: Fault| f.at(|| "the header".to_string(), String::new, len);
    let magic: [u8; 4] = r.array().map_err(header)?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = r.u32().map_err(header)?;
    if version != 2 && version != 3 {
        if (1..=3).contains(&version.swap_bytes()) {
            return Err(GgufError::BigEndian { version: version.swap_bytes() });
        }
        return Err(GgufError::UnsupportedVersion { version });
    }
    let n_tensors = r.u64().map_err(header)?;
    let n_kv = r.u64().map_err(header)?;

    // Bound both counts by the bytes left before looping or allocating.
    let rest = r.remaining() as u64;
    let max_kv = rest / MIN_KV_BYTES;
    if n_kv > max_kv {
        return Err(GgufError::TooManyEntries { what: "metadata entries", count: n_kv, max: max_kv });
    }
    let max_tensors = (rest - n_kv * MIN_KV_BYTES) / MIN_TENSOR_INFO_BYTES;
    if n_tensors > max_tensors {
        return Err(GgufError::TooManyEntries { what: "tensors", count: n_tensors, max: max_tensors });
    }

    // Metadata. Capacity grows with what is really read, not with the claimed count.
    let mut kvs: Vec<KeyValue<'_>> = Vec::with_capacity((n_kv as usize).min(256));
    let mut keys = BTreeSet::new();
    for i in 0..n_kv {
        let offset = r.pos;
        let key = r.string().map_err(|f| f.at(|| alloc::format!("metadata key #{i}"), String::new, len))?;
        let key = core::str::from_utf8(key).map_err(|_| GgufError::KeyNotUtf8 { offset })?;
        let ctx = || alloc::format!("metadata '{key}'");
        let kname = || key.to_string();
        let type_at = r.pos;
        let type_id = r.u32().map_err(|f| f.at(ctx, kname, len))?;
        let ty = ValueType::from_id(type_id).ok_or(GgufError::UnknownValueType { key: kname(), offset: type_at, type_id })?;
        let value = read_value(&mut r, ty, 0).map_err(|f| f.at(ctx, kname, len))?;
        if !keys.insert(key) {
            return Err(GgufError::DuplicateKey { key: key.to_string() });
        }
        kvs.push(KeyValue { key, value, offset });
    }

    let alignment = match kvs.iter().find(|kv| kv.key == ALIGNMENT_KEY).map(|kv| kv.value) {
        None => DEFAULT_ALIGNMENT as usize,
        Some(Value::U32(a)) if a != 0 && a.is_power_of_two() => a as usize,
        Some(v) => {
            let value = v.as_integer().map(|i| i as u64);
            return Err(GgufError::BadAlignment { value, found_type: v.value_type() });
        }
    };

    // Tensor infos.
    let mut tensors: Vec<TensorInfo<'_>> = Vec::with_capacity((n_tensors as usize).min(1024));
    for i in 0..n_tensors {
        let offset = r.pos;
        let name = r.string().map_err(|f| f.at(|| alloc::format!("tensor info #{i}"), String::new, len))?;
        let name = core::str::from_utf8(name).map_err(|_| GgufError::TensorNameNotUtf8 { offset })?;
        let ctx = || alloc::format!("tensor info '{name}'");
        let t = |f: Fault| f.at(ctx, String::new, len);
        let n_dims = r.u32().map_err(t)?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return Err(GgufError::BadDimCount { name: name.to_string(), offset, n_dims });
        }
        let mut dims = [1u64; MAX_DIMS];
        for d in dims.iter_mut().take(n_dims as usize) {
            *d = r.u64().map_err(t)?;
        }
        let type_id = r.u32().map_err(t)?;
        let data_offset = r.u64().map_err(t)?;
        let shape = &dims[..n_dims as usize];
        let overflow = || GgufError::ShapeOverflow { name: name.to_string(), dims: shape.to_vec() };
        // ggml keeps dims and element counts in int64.
        let n_elements = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64 && shape.iter().all(|&d| d <= i64::MAX as u64))
            .ok_or_else(overflow)?;
        let ggml_type = GgmlType::from_id(type_id);
        let (Some(block), Some(size)) = (ggml_type.block_size(), ggml_type.type_size()) else {
            return Err(GgufError::UnknownTensorType { name: name.to_string(), type_id });
        };
        // A whole number of blocks per row implies one for the whole tensor.
        if !dims[0].is_multiple_of(block as u64) {
            return Err(GgufError::NotBlockMultiple { name: name.to_string(), row: dims[0], block, ggml_type });
        }
        let n_bytes = (n_elements / block as u64).checked_mul(size as u64).and_then(|b| usize::try_from(b).ok()).ok_or_else(overflow)?;
        if !data_offset.is_multiple_of(alignment as u64) {
            return Err(GgufError::MisalignedTensor { name: name.to_string(), offset: data_offset, alignment });
        }
        tensors.push(TensorInfo { name, dims, n_dims: n_dims as usize, ggml_type, offset: data_offset, n_bytes });
    }

    // The data section starts at the aligned end of the infos.
    let data_offset = r.pos.div_ceil(alignment).saturating_mul(alignment);
    for t in &tensors {
        let end = (data_offset as u64).checked_add(t.offset).and_then(|s| s.checked_add(t.n_bytes as u64));
        // Empty tensors too: every tensor's bytes, even none, are a slice of the file.
        if end.is_none_or(|e| e > len as u64) {
            return Err(GgufError::TensorOutOfBounds {
                name: t.name.to_string(),
                start: (data_offset as u64).saturating_add(t.offset),
                n_bytes: t.n_bytes as u64,
                len,
            });
        }
    }

    // Unique names, and no two tensors sharing bytes (empty tensors share nothing).
    let mut by_name: Vec<&TensorInfo<'_>> = tensors.iter().collect();
    by_name.sort_unstable_by_key(|t| t.name);
    if let Some(w) = by_name.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(GgufError::DuplicateTensor { name: w[0].name.to_string() });
    }
    let mut by_offset: Vec<&TensorInfo<'_>> = tensors.iter().filter(|t| t.n_bytes > 0).collect();
    by_offset.sort_unstable_by_key(|t| t.offset);
    // In bounds, so offset + n_bytes cannot overflow.
    if let Some(w) = by_offset.windows(2).find(|w| w[0].offset + w[0].n_bytes as u64 > w[1].offset) {
        return Err(GgufError::TensorsOverlap { first: w[0].name.to_string(), second: w[1].name.to_string() });
    }

    Ok(Gguf { bytes, version, alignment, data_offset, kvs, tensors })
}
