//! `export`: an llm.c checkpoint (our trained GPT-2s) as a GGUF file of architecture `gpt2`
//! with a byte vocabulary, so llama.cpp and other GGUF readers can run it. Names, keys and
//! layouts as llama.cpp's `gpt2` loader expects them (format from llama.cpp/ggml, MIT).

use anyhow::{Context, Result, bail};
use clap::Args;
use llm_engine::checkpoint;
use llm_engine::formats::gguf::{GgmlType, GgufWriter};
use llm_engine::quant::{self, BlockType};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// llm.c checkpoint (fp32 or bf16) of a byte-level model (V = 256).
    pub checkpoint: PathBuf,
    /// The GGUF file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Type of the weight matrices: f32, f16 or q8_0 (norms and biases stay f32).
    #[arg(long = "type", default_value = "f32")]
    pub ty: String,
}

/// GPT-2's byte-to-unicode table: the character each byte is written as in a vocabulary.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        return b as char;
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).expect("a valid code point")
}

pub fn export(a: &ExportArgs) -> Result<()> {
    crate::image::check_output_is_a_file(&a.out)?;
    crate::image::check_output_is_not_an_input(&a.out, &[("the checkpoint", Some(a.checkpoint.as_path()))])?;
    let ty = match a.ty.as_str() {
        "f32" => BlockType::F32,
        "f16" => BlockType::F16,
        "q8_0" => BlockType::Q8_0,
        other => bail!("--type: '{other}' is not one of f32, f16, q8_0"),
    };
    let bytes = std::fs::read(&a.checkpoint).with_context(|| format!("cannot read {}", a.checkpoint.display()))?;
    let ck = checkpoint::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e} (export reads llm.c checkpoints)", a.checkpoint.display()))?;
    let c = ck.config;
    if c.vocab_size != 256 {
        bail!("{}: export writes byte-level models (V = 256); this one has V = {}", a.checkpoint.display(), c.vocab_size);
    }
    let (cc, l_n, t) = (c.d_model, c.n_layers, c.context);
    if ty != BlockType::F32 && cc % ty.block_elems() != 0 {
        bail!("--type {}: C = {cc} is not a multiple of its block of {}", a.ty, ty.block_elems());
    }
    let p = &ck.params;
    let off = c.tensor_offsets();
    let sizes = c.tensor_sizes();
    // (name, dims innermost first, type, data) for every tensor, in llama.cpp's order.
    let mut tensors: Vec<(String, Vec<u64>, BlockType, Vec<u8>)> = Vec::new();
    let encode = |data: &[f32], rows: usize, cols: usize, ty: BlockType| -> Vec<u8> {
        match ty {
            BlockType::F32 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            _ => {
                let rb = ty.row_bytes(cols).expect("checked block multiple");
                let mut out = vec![0u8; rows * rb];
                for (r, o) in out.chunks_exact_mut(rb).enumerate() {
                    quant::quantize_row(ty, &data[r * cols..(r + 1) * cols], o);
                }
                out
            }
        }
    };
    let mut push = |name: String, rows: usize, cols: usize, data: &[f32], ty: BlockType| {
        let dims = if rows == 1 { vec![cols as u64] } else { vec![cols as u64, rows as u64] };
        tensors.push((name, dims, ty, encode(data, rows, cols, ty)));
    };
    // Tensor i (file order), layer l's slab of `len` floats.
    let slab = |i: usize, l: usize, len: usize| -> &[f32] {
        let per = sizes[i] / l_n;
        &p[off[i] + l * per..off[i] + l * per + len]
    };
    push("token_embd.weight".into(), 256, cc, &p[off[0]..off[0] + 256 * cc], ty);
    push("position_embd.weight".into(), t, cc, &p[off[1]..off[1] + t * cc], BlockType::F32);
    for l in 0..l_n {
        let n = |s: &str| format!("blk.{l}.{s}");
        push(n("attn_norm.weight"), 1, cc, slab(2, l, cc), BlockType::F32);
        push(n("attn_norm.bias"), 1, cc, slab(3, l, cc), BlockType::F32);
        push(n("attn_qkv.weight"), 3 * cc, cc, slab(4, l, 3 * cc * cc), ty);
        push(n("attn_qkv.bias"), 1, 3 * cc, slab(5, l, 3 * cc), BlockType::F32);
        push(n("attn_output.weight"), cc, cc, slab(6, l, cc * cc), ty);
        push(n("attn_output.bias"), 1, cc, slab(7, l, cc), BlockType::F32);
        push(n("ffn_norm.weight"), 1, cc, slab(8, l, cc), BlockType::F32);
        push(n("ffn_norm.bias"), 1, cc, slab(9, l, cc), BlockType::F32);
        push(n("ffn_up.weight"), 4 * cc, cc, slab(10, l, 4 * cc * cc), ty);
        push(n("ffn_up.bias"), 1, 4 * cc, slab(11, l, 4 * cc), BlockType::F32);
        push(n("ffn_down.weight"), cc, 4 * cc, slab(12, l, 4 * cc * cc), ty);
        push(n("ffn_down.bias"), 1, cc, slab(13, l, cc), BlockType::F32);
    }
    push("output_norm.weight".into(), 1, cc, &p[off[14]..off[14] + cc], BlockType::F32);
    push("output_norm.bias".into(), 1, cc, &p[off[15]..off[15] + cc], BlockType::F32);

    let tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    let no_merges: [&str; 0] = [];
    let gguf_err = |e: llm_engine::formats::gguf::GgufError| anyhow::anyhow!("writing GGUF: {e}");
    let mut w = GgufWriter::new();
    let name = a.checkpoint.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    w.add_string("general.architecture", "gpt2").map_err(gguf_err)?;
    w.add_string("general.name", &name).map_err(gguf_err)?;
    w.add_u32(
        "general.file_type",
        match ty {
            BlockType::F32 => 0,
            BlockType::F16 => 1,
            _ => 7,
        },
    )
    .map_err(gguf_err)?;
    for (k, v) in [
        ("context_length", t),
        ("embedding_length", cc),
        ("feed_forward_length", 4 * cc),
        ("block_count", l_n),
        ("attention.head_count", c.n_heads),
    ] {
        w.add_u32(&format!("gpt2.{k}"), v as u32).map_err(gguf_err)?;
    }
    w.add_f32("gpt2.attention.layer_norm_epsilon", 1e-5).map_err(gguf_err)?;
    w.add_string("tokenizer.ggml.model", "gpt2").map_err(gguf_err)?;
    w.add_string("tokenizer.ggml.pre", "gpt-2").map_err(gguf_err)?;
    w.add_string_array("tokenizer.ggml.tokens", &tokens).map_err(gguf_err)?;
    w.add_i32_array("tokenizer.ggml.token_type", &[1; 256]).map_err(gguf_err)?;
    w.add_string_array("tokenizer.ggml.merges", &no_merges).map_err(gguf_err)?;
    for (n, dims, bt, data) in &tensors {
        w.add_tensor(n, dims, GgmlType::from(*bt), data).map_err(gguf_err)?;
    }
    let out = w.finish();
    llm_trainer::io::write_atomic(&a.out, &out)?;
    crate::outln!("wrote {} ({} bytes): gpt2, {} tensors, matrices {}", a.out.display(), out.len(), tensors.len(), ty.name())?;
    Ok(())
}
