//! Prints the prompt token ids of a GGUF model's own tokenizer, space-separated, as
//! `llm-baremetal generate --parse-special` would feed them (BOS first when the model adds one;
//! control tokens written in the text are matched whole, as `llama-tokenize` does by default).
//! For scripts/compare-llamacpp.sh.
//!
//!     cargo run --release --example tokenize -- MODEL.gguf TEXT
//!
//! TEXT is taken verbatim (no backslash escapes; `generate --prompt` turns \n, \t, \\ into
//! characters first). `-` reads TEXT from stdin.

use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: tokenize MODEL.gguf TEXT|-");
        std::process::exit(2);
    }
    let text = if args[2] == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        args[2].clone()
    };
    let bytes = std::fs::read(&args[1])?;
    let loaded = llm_engine::load(&bytes).map_err(|e| format!("{}: {e:?}", args[1]))?;
    let tokenizer = loaded.tokenizer.ok_or("the file has no tokenizer (not a GGUF model?)")?;
    let mut ids = Vec::new();
    tokenizer.encode_prompt_with(text.as_bytes(), true, llm_engine::tokenizer::Specials::Parse, &mut ids);
    let line: Vec<String> = ids.iter().map(|t| t.to_string()).collect();
    println!("{}", line.join(" "));
    Ok(())
}
