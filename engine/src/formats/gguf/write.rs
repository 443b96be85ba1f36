//! Writing a version-3 GGUF file in memory ([`GgufWriter`]).

use super::*;
struct PendingTensor<'d> {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    data: &'d [u8],
}

/// Builds a GGUF version 3 file in memory. Keys and tensors are written in the order added;
/// each tensor's data starts at a multiple of the alignment (zero padding between).
pub struct GgufWriter<'d> {
    kv_bytes: Vec<u8>,
    keys: BTreeSet<String>,
    alignment: usize,
    tensors: Vec<PendingTensor<'d>>,
}

impl Default for GgufWriter<'_> {
    fn default() -> Self {
        Self::new()
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

impl<'d> GgufWriter<'d> {
    pub fn new() -> Self {
        GgufWriter { kv_bytes: Vec::new(), keys: BTreeSet::new(), alignment: DEFAULT_ALIGNMENT as usize, tensors: Vec::new() }
    }

    fn key(&mut self, key: &str, ty: ValueType) -> Result<(), GgufError> {
        if key == ALIGNMENT_KEY && ty != ValueType::U32 {
            return Err(GgufError::BadAlignment { value: None, found_type: ty });
        }
        if !self.keys.insert(key.to_string()) {
            return Err(GgufError::DuplicateKey { key: key.to_string() });
        }
        put_str(&mut self.kv_bytes, key.as_bytes());
        self.kv_bytes.extend_from_slice(&ty.id().to_le_bytes());
        Ok(())
    }

    /// Sets the data alignment and records it as `general.alignment`.
    pub fn set_alignment(&mut self, alignment: u32) -> Result<(), GgufError> {
        if !alignment.is_power_of_two() {
            return Err(GgufError::BadAlignment { value: Some(alignment as u64), found_type: ValueType::U32 });
        }
        self.add_u32(ALIGNMENT_KEY, alignment)?;
        self.alignment = alignment as usize;
        Ok(())
    }

    pub fn add_u8(&mut self, key: &str, v: u8) -> Result<(), GgufError> {
        self.key(key, ValueType::U8)?;
        self.kv_bytes.push(v);
        Ok(())
    }
    pub fn add_i8(&mut self, key: &str, v: i8) -> Result<(), GgufError> {
        self.key(key, ValueType::I8)?;
        self.kv_bytes.push(v as u8);
        Ok(())
    }
    pub fn add_u16(&mut self, key: &str, v: u16) -> Result<(), GgufError> {
        self.key(key, ValueType::U16)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_i16(&mut self, key: &str, v: i16) -> Result<(), GgufError> {
        self.key(key, ValueType::I16)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_u32(&mut self, key: &str, v: u32) -> Result<(), GgufError> {
        if key == ALIGNMENT_KEY && !v.is_power_of_two() {
            return Err(GgufError::BadAlignment { value: Some(v as u64), found_type: ValueType::U32 });
        }
        self.key(key, ValueType::U32)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        if key == ALIGNMENT_KEY {
            self.alignment = v as usize;
        }
        Ok(())
    }
    pub fn add_i32(&mut self, key: &str, v: i32) -> Result<(), GgufError> {
        self.key(key, ValueType::I32)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_f32(&mut self, key: &str, v: f32) -> Result<(), GgufError> {
        self.key(key, ValueType::F32)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_bool(&mut self, key: &str, v: bool) -> Result<(), GgufError> {
        self.key(key, ValueType::Bool)?;
        self.kv_bytes.push(v as u8);
        Ok(())
    }
    pub fn add_u64(&mut self, key: &str, v: u64) -> Result<(), GgufError> {
        self.key(key, ValueType::U64)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_i64(&mut self, key: &str, v: i64) -> Result<(), GgufError> {
        self.key(key, ValueType::I64)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_f64(&mut self, key: &str, v: f64) -> Result<(), GgufError> {
        self.key(key, ValueType::F64)?;
        self.kv_bytes.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    pub fn add_string(&mut self, key: &str, v: &str) -> Result<(), GgufError> {
        self.key(key, ValueType::String)?;
        put_str(&mut self.kv_bytes, v.as_bytes());
        Ok(())
    }

    fn array_header(&mut self, key: &str, elem: ValueType, count: usize) -> Result<(), GgufError> {
        self.key(key, ValueType::Array)?;
        self.kv_bytes.extend_from_slice(&elem.id().to_le_bytes());
        self.kv_bytes.extend_from_slice(&(count as u64).to_le_bytes());
        Ok(())
    }

    /// An array of strings (raw bytes allowed, e.g. byte tokens; GGUF expects UTF-8).
    pub fn add_string_array<S: AsRef<[u8]>>(&mut self, key: &str, v: &[S]) -> Result<(), GgufError> {
        self.array_header(key, ValueType::String, v.len())?;
        for s in v {
            put_str(&mut self.kv_bytes, s.as_ref());
        }
        Ok(())
    }
    pub fn add_f32_array(&mut self, key: &str, v: &[f32]) -> Result<(), GgufError> {
        self.array_header(key, ValueType::F32, v.len())?;
        v.iter().for_each(|x| self.kv_bytes.extend_from_slice(&x.to_le_bytes()));
        Ok(())
    }
    pub fn add_i32_array(&mut self, key: &str, v: &[i32]) -> Result<(), GgufError> {
        self.array_header(key, ValueType::I32, v.len())?;
        v.iter().for_each(|x| self.kv_bytes.extend_from_slice(&x.to_le_bytes()));
        Ok(())
    }
    pub fn add_u32_array(&mut self, key: &str, v: &[u32]) -> Result<(), GgufError> {
        self.array_header(key, ValueType::U32, v.len())?;
        v.iter().for_each(|x| self.kv_bytes.extend_from_slice(&x.to_le_bytes()));
        Ok(())
    }

    /// Adds a tensor: `dims` innermost first (1 to 4 of them), `data` exactly its bytes in
    /// `ggml_type`'s encoding. Borrowed until [`GgufWriter::finish`].
    pub fn add_tensor(&mut self, name: &str, dims: &[u64], ggml_type: GgmlType, data: &'d [u8]) -> Result<(), GgufError> {
        if dims.is_empty() || dims.len() > MAX_DIMS {
            return Err(GgufError::BadDimCount { name: name.to_string(), offset: 0, n_dims: dims.len() as u32 });
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(GgufError::DuplicateTensor { name: name.to_string() });
        }
        let (Some(block), Some(size)) = (ggml_type.block_size(), ggml_type.type_size()) else {
            return Err(GgufError::UnknownTensorType { name: name.to_string(), type_id: ggml_type.id() });
        };
        if !dims[0].is_multiple_of(block as u64) {
            return Err(GgufError::NotBlockMultiple { name: name.to_string(), row: dims[0], block, ggml_type });
        }
        let expected = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .and_then(|n| (n / block as u64).checked_mul(size as u64))
            .ok_or_else(|| GgufError::ShapeOverflow { name: name.to_string(), dims: dims.to_vec() })?;
        if expected != data.len() as u64 {
            return Err(GgufError::DataSizeMismatch { name: name.to_string(), expected, found: data.len() });
        }
        self.tensors.push(PendingTensor { name: name.to_string(), dims: dims.to_vec(), ggml_type, data });
        Ok(())
    }

    /// The whole file.
    pub fn finish(&self) -> Vec<u8> {
        let align = self.alignment;
        let pad = |n: usize| n.div_ceil(align) * align;
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.keys.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.kv_bytes);
        let mut offset = 0usize;
        for t in &self.tensors {
            put_str(&mut out, t.name.as_bytes());
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            t.dims.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
            out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            out.extend_from_slice(&(offset as u64).to_le_bytes());
            offset = pad(offset + t.data.len());
        }
        out.resize(pad(out.len()), 0);
        for t in &self.tensors {
            out.extend_from_slice(t.data);
            out.resize(pad(out.len()), 0);
        }
        out
    }
}
