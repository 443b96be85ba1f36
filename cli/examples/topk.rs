//! Greedy decoding with the margins: for each generated token prints the step, the chosen
//! token id and its text, the runner-up id and text, and the logit margin top-1 - top-2.
//! A small margin marks a near tie, where another implementation (llama.cpp quantizes the
//! activations to 8 bits in its dot products) may pick the other token. For
//! scripts/compare-llamacpp.sh.
//!
//!     cargo run --release --example topk -- MODEL.gguf TEXT [STEPS] [auto|scalar|avx2|portable]
//!
//! TEXT is taken verbatim (`-` reads stdin); it is tokenized as `generate` does (BOS when the
//! model adds one, control tokens parsed as with `--parse-special`). One thread. Stops at an end token. Output, one line
//! per step, tab-separated: step, id, text (JSON-escaped), id2, text2, margin, the
//! chosen token's bytes in hex, 1 if it is an end token.

use llm_engine::kernels::Family;
use llm_engine::{Kernels, SamplerConfig, Serial, Session};
use std::io::Read;

fn esc(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 || args.len() > 5 {
        eprintln!("usage: topk MODEL.gguf TEXT|- [STEPS] [auto|scalar|avx2|portable]");
        std::process::exit(2);
    }
    let text = if args[2] == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        args[2].clone()
    };
    let steps: usize = args.get(3).map_or(Ok(32), |s| s.parse())?;
    let kernels = match args.get(4).map_or("auto", |s| s.as_str()) {
        "auto" => Kernels::detect(),
        "portable" => Kernels::portable(),
        "scalar" | "sse2" => Kernels::detect_family(Family::NoFma).ok_or("no no-FMA kernels")?,
        "avx2" | "fma" => Kernels::detect_family(Family::Fma).ok_or("no AVX2+FMA on this CPU")?,
        o => return Err(format!("unknown kernels {o}").into()),
    };
    let bytes = std::fs::read(&args[1])?;
    let loaded = llm_engine::load(&bytes).map_err(|e| format!("{}: {e:?}", args[1]))?;
    let tokenizer = loaded.tokenizer.ok_or("the file has no tokenizer (not a GGUF model?)")?;
    let model = &loaded.model;
    let mut ids = Vec::new();
    tokenizer.encode_prompt_with(text.as_bytes(), true, llm_engine::tokenizer::Specials::Parse, &mut ids);
    let ctx = model.spec().context.min(llm_engine::session::DEFAULT_MAX_CONTEXT);
    let greedy = SamplerConfig { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, repeat_penalty: 1.0, repeat_window: 64 };
    let mut session = Session::with_context(model, kernels, ctx, greedy, 0)?;
    session.feed(&ids, &Serial)?;
    let mut prev = ids.last().copied();
    for step in 0..steps {
        let logits = session.logits().ok_or("no logits")?;
        let (mut a, mut b) = (0usize, usize::MAX);
        for (i, &l) in logits.iter().enumerate().skip(1) {
            if l > logits[a] {
                b = a;
                a = i;
            } else if b == usize::MAX || l > logits[b] {
                b = i;
            }
        }
        if b == usize::MAX {
            b = a;
        }
        let margin = logits[a] - logits[b];
        let (ta, tb) = (a as u32, b as u32);
        let piece = tokenizer.decode_after(prev, ta);
        let hex: String = piece.iter().map(|b| format!("{b:02x}")).collect();
        println!(
            "{step}\t{ta}\t{}\t{tb}\t{}\t{margin:.4}\t{hex}\t{}",
            esc(piece),
            esc(tokenizer.decode_after(prev, tb)),
            u8::from(tokenizer.is_end(ta))
        );
        if tokenizer.is_end(ta) {
            break;
        }
        session.feed(&[ta], &Serial)?;
        prev = Some(ta);
    }
    Ok(())
}
