//! Byte-level BPE (`tokenizer::bpe`, GGUF's `gpt2` tokenizer) against independent tokenizers:
//! tiktoken-rs's r50k_base (GPT-2's encoding) for the GPT-2 pre-tokenizer, and HF `tokenizers`
//! (fixture made by scripts/make-bpe-fixtures.py) for GPT-2, Llama 3 and Qwen2 splits, all
//! with GPT-2's real vocabulary and merges from tiktoken-rs's assets.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use llm_engine::tokenizer::bpe::{BpeError, BpeTokenizer, PreTokenizer};
use proptest::prelude::*;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// tiktoken-rs's assets folder (the crate's source, unpacked by cargo in ~/.cargo/registry).
fn assets() -> PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cargo"));
    let src = home.join("registry/src");
    let mut hits: Vec<PathBuf> = std::fs::read_dir(&src)
        .expect("~/.cargo/registry/src")
        .flatten()
        .flat_map(|index| std::fs::read_dir(index.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("tiktoken-rs-0.12.")))
        .map(|p| p.join("assets"))
        .filter(|p| p.join("encoder.json").exists())
        .collect();
    hits.sort();
    hits.pop().expect("tiktoken-rs 0.12 assets with encoder.json")
}

/// encoder.json: one JSON object of string -> id. A small parser (string escapes included).
fn parse_encoder(json: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut it = json.chars().peekable();
    let string = |it: &mut std::iter::Peekable<std::str::Chars>| -> String {
        let mut s = String::new();
        while let Some(c) = it.next() {
            match c {
                '"' => return s,
                '\\' => match it.next().unwrap() {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    'b' => s.push('\u{8}'),
                    'f' => s.push('\u{c}'),
                    'u' => {
                        let hex = |it: &mut std::iter::Peekable<std::str::Chars>| {
                            let h: String = (0..4).map(|_| it.next().unwrap()).collect();
                            u32::from_str_radix(&h, 16).unwrap()
                        };
                        let mut cp = hex(it);
                        if (0xD800..0xDC00).contains(&cp) {
                            assert_eq!((it.next(), it.next()), (Some('\\'), Some('u')));
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (hex(it) - 0xDC00);
                        }
                        s.push(char::from_u32(cp).unwrap());
                    }
                    other => s.push(other),
                },
                c => s.push(c),
            }
        }
        panic!("unterminated string");
    };
    while let Some(c) = it.next() {
        if c == '"' {
            let key = string(&mut it);
            while it.peek().is_some_and(|&c| c != ':') {
                it.next();
            }
            it.next();
            while it.peek().is_some_and(|c| c.is_whitespace()) {
                it.next();
            }
            let mut num = String::new();
            while it.peek().is_some_and(|c| c.is_ascii_digit()) {
                num.push(it.next().unwrap());
            }
            out.push((key, num.parse().unwrap()));
        }
    }
    out
}

/// GPT-2's vocabulary (tokens ordered by id) and merges (rank order).
type Parts = (Vec<Vec<u8>>, Vec<Vec<u8>>);

fn gpt2_parts() -> &'static Parts {
    static PARTS: OnceLock<Parts> = OnceLock::new();
    PARTS.get_or_init(|| {
        let dir = assets();
        let mut enc = parse_encoder(&std::fs::read_to_string(dir.join("encoder.json")).unwrap());
        enc.sort_by_key(|e| e.1);
        assert!(enc.iter().enumerate().all(|(i, e)| e.1 as usize == i), "encoder.json ids are 0..n");
        assert_eq!(enc.len(), 50257);
        let tokens = enc.into_iter().map(|(s, _)| s.into_bytes()).collect();
        let bpe = std::fs::read_to_string(dir.join("vocab.bpe")).unwrap();
        let merges: Vec<Vec<u8>> = bpe.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.as_bytes().to_vec()).collect();
        assert_eq!(merges.len(), 50000);
        (tokens, merges)
    })
}

fn gpt2_tokenizer(pre: PreTokenizer) -> BpeTokenizer {
    let (tokens, merges) = gpt2_parts();
    BpeTokenizer::new(tokens.clone(), merges, &[], pre, None, Some(50256), false).unwrap()
}

fn tokenizer(pre: PreTokenizer) -> &'static BpeTokenizer {
    static T: [OnceLock<BpeTokenizer>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = pre as usize;
    T[i].get_or_init(|| gpt2_tokenizer(pre))
}

fn encode(t: &BpeTokenizer, text: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    t.encode(text, &mut out);
    out
}

fn decode_all(t: &BpeTokenizer, ids: &[u32]) -> Vec<u8> {
    ids.iter().flat_map(|&id| t.decode(id).iter().copied()).collect()
}

fn shakespeare() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("data/tinyshakespeare/input.txt")).unwrap()
}

/// One fixture line: name, text, [gpt2, llama3, qwen2] ids from HF tokenizers, and the same
/// pre-tokenizers' piece end byte offsets (None where the fixture leaves them out).
struct Case {
    name: String,
    text: Vec<u8>,
    ids: [Vec<u32>; 3],
    ends: [Option<Vec<usize>>; 3],
}

fn cases() -> Vec<Case> {
    let tsv = std::fs::read_to_string(Path::new(ROOT).join("engine/tests/fixtures/bpe/cases.tsv")).unwrap();
    let hex = |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<u8>>();
    let ids = |s: &str| s.split(' ').filter(|x| !x.is_empty()).map(|x| x.parse().unwrap()).collect::<Vec<u32>>();
    let out: Vec<_> = tsv
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 8, "{l}");
            let text = match f[1].strip_prefix("@shakespeare:") {
                Some(n) => {
                    let all = shakespeare();
                    let lines: Vec<&str> = all.split('\n').take(n.parse().unwrap()).collect();
                    (lines.join("\n") + "\n").into_bytes()
                }
                None => hex(f[1]),
            };
            let ends = |s: &str| (s != "-").then(|| ids(s).into_iter().map(|x| x as usize).collect());
            Case { name: f[0].to_string(), text, ids: [ids(f[2]), ids(f[3]), ids(f[4])], ends: [ends(f[5]), ends(f[6]), ends(f[7])] }
        })
        .collect();
    assert_eq!(out.len(), 220);
    out
}

/// Short first difference, for readable failures.
fn first_diff(t: &BpeTokenizer, ours: &[u32], want: &[u32]) -> String {
    let i = ours.iter().zip(want).position(|(a, b)| a != b).unwrap_or(ours.len().min(want.len()));
    let show = |ids: &[u32]| {
        ids.iter()
            .skip(i.saturating_sub(2))
            .take(6)
            .map(|&id| format!("{id}:{:?}", String::from_utf8_lossy(t.decode(id))))
            .collect::<Vec<_>>()
    };
    format!("lengths {} vs {}, first difference at {i}: ours {:?} want {:?}", ours.len(), want.len(), show(ours), show(want))
}

#[test]
fn gpt2_matches_tiktoken_on_fixture_texts() {
    let tik = tiktoken_rs::r50k_base().unwrap();
    let t = tokenizer(PreTokenizer::Gpt2);
    for Case { name, text, .. } in cases() {
        let text = String::from_utf8(text).unwrap();
        let want: Vec<u32> = tik.encode_ordinary(&text);
        let ours = encode(t, text.as_bytes());
        assert!(ours == want, "{name}: {}", first_diff(t, &ours, &want));
    }
}

#[test]
fn gpt2_matches_tiktoken_on_all_of_tiny_shakespeare() {
    let tik = tiktoken_rs::r50k_base().unwrap();
    let t = tokenizer(PreTokenizer::Gpt2);
    let text = shakespeare();
    // Whole file at once, then line by line (40,000 short texts with their own edges).
    let want: Vec<u32> = tik.encode_ordinary(&text);
    let ours = encode(t, text.as_bytes());
    assert!(ours == want, "{}", first_diff(t, &ours, &want));
    for line in text.split_inclusive('\n') {
        let want: Vec<u32> = tik.encode_ordinary(line);
        assert_eq!(encode(t, line.as_bytes()), want, "{line:?}");
    }
}

#[test]
fn matches_hf_tokenizers_fixture() {
    for Case { name, text, ids: want, .. } in cases() {
        for (k, pre) in [PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2].into_iter().enumerate() {
            let t = tokenizer(pre);
            let ours = encode(t, &text);
            assert!(ours == want[k], "{name} {pre:?}: {}", first_diff(t, &ours, &want[k]));
        }
    }
}

/// The splits themselves, compared with HF's Split(Regex) (ids alone cannot see most split
/// errors: a vocabulary trained on correct splits has no merges across a wrong boundary).
#[test]
fn splits_match_hf_tokenizers_fixture() {
    let mut checked = 0;
    for Case { name, text, ends, .. } in cases() {
        for (k, pre) in [PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2].into_iter().enumerate() {
            let Some(want) = &ends[k] else { continue };
            let mut pieces = Vec::new();
            pre.split(&text, &mut pieces);
            let ours: Vec<usize> = pieces.iter().map(|p| p.1).collect();
            let show = |e: &[usize]| {
                let mut at = 0;
                e.iter().map(|&b| String::from_utf8_lossy(&text[std::mem::replace(&mut at, b)..b]).into_owned()).collect::<Vec<_>>()
            };
            assert!(&ours == want, "{name} {pre:?}: ours {:?}, want {:?}", show(&ours), show(want));
            checked += 1;
        }
    }
    assert_eq!(checked, 219 * 3);
}

#[test]
fn decode_inverts_encode() {
    let all = shakespeare();
    for pre in [PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2] {
        let t = tokenizer(pre);
        for Case { name, text, .. } in cases() {
            assert_eq!(decode_all(t, &encode(t, &text)), text, "{name} {pre:?}");
        }
        assert_eq!(decode_all(t, &encode(t, all.as_bytes())), all.as_bytes(), "{pre:?}");
    }
}

/// Hand-checked splits: what the patterns' regex semantics give (see the regexes in bpe.rs).
#[test]
fn pre_tokenizer_splits() {
    let split = |pre: PreTokenizer, s: &str| {
        let mut r = Vec::new();
        pre.split(s.as_bytes(), &mut r);
        r.iter().map(|&(a, b)| s[a..b].to_string()).collect::<Vec<_>>()
    };
    use PreTokenizer::*;
    assert_eq!(split(Gpt2, "I'm  here 123abc"), ["I", "'m", " ", " here", " 123", "abc"]);
    assert_eq!(split(Gpt2, "a   \n"), ["a", "   \n"]);
    assert_eq!(split(Gpt2, "HE'S ok"), ["HE", "'", "S", " ok"]);
    assert_eq!(split(Llama3, "HE'S 12345"), ["HE", "'S", " ", "123", "45"]);
    assert_eq!(split(Qwen2, "x 12345"), ["x", " ", "1", "2", "3", "4", "5"]);
    assert_eq!(split(Llama3, "(hello) a\t\tb"), ["(hello", ")", " a", "\t", "\tb"]);
    assert_eq!(split(Llama3, "x;\n\n  y"), ["x", ";\n\n", " ", " y"]);
    assert_eq!(split(Llama3, "x \n \n  y"), ["x", " \n \n", " ", " y"]);
    // \p{L} is the general category, not is_alphabetic: a Devanagari vowel sign (Mc) is not
    // a letter, so it breaks the letter run.
    assert_eq!(split(Gpt2, "हिन्दी"), ["ह", "ि", "न", "्", "द", "ी"]);
    // Invalid UTF-8 bytes are pieces of their own.
    let mut r = Vec::new();
    Gpt2.split(b"ab\xFFcd\xE2\x82", &mut r);
    assert_eq!(r, [(0, 2), (2, 3), (3, 5), (5, 6), (6, 7)]);
}

/// Special tokens are split off by the GGUF tokenizer (engine/tests/tokenizer_gguf.rs);
/// BPE itself encodes their text as text and never yields one.
#[test]
fn special_tokens_are_never_encoded_by_bpe() {
    let (tokens, merges) = gpt2_parts();
    let mut tokens = tokens.clone();
    let mut types = vec![1; tokens.len()];
    types[50256] = 3; // <|endoftext|> is a control token in GGUF files
    let start = tokens.len() as u32;
    for (s, ty) in [("<|im_start|>", 3), ("<|im_end|>", 3), ("<tool>", 4)] {
        tokens.push(s.as_bytes().to_vec());
        types.push(ty);
    }
    let t = BpeTokenizer::new(tokens, merges, &types, PreTokenizer::Qwen2, Some(50256), Some(start + 1), false).unwrap();
    let plain = tokenizer(PreTokenizer::Qwen2);
    for text in [&b"<|im_start|>user\nhi<|im_end|>"[..], b"a<tool>b<|endoftext|><|endoftext|>"] {
        let ids = encode(&t, text);
        assert_eq!(ids, encode(plain, text));
        assert!(ids.iter().all(|&i| i < start && i != 50256), "{ids:?}");
        assert_eq!(decode_all(&t, &ids), text);
    }
    assert_eq!(t.decode(start), b"<|im_start|>");
    // Without token types nothing is special: "<|endoftext|>" is plain text.
    assert_ne!(encode(plain, b"<|endoftext|>"), [50256]);
    assert_eq!(t.token_id(b"<|im_end|>"), Some(start + 1));
    assert_eq!(t.vocab_size(), 50260);
    assert_eq!((t.bos(), t.eos(), t.add_bos()), (Some(50256), Some(start + 1), false));
    let mut out = Vec::new();
    t.encode_prompt(b"hi", true, &mut out);
    assert_eq!(out, encode(plain, b"hi"));
    // Type counts must match.
    let err = BpeTokenizer::new(vec![b"a".to_vec()], [b"a a"], &[1, 1], PreTokenizer::Gpt2, None, None, false);
    assert!(matches!(err, Err(BpeError::TokenTypeCountMismatch { .. })));
}

#[test]
fn pre_tokenizer_names() {
    for (name, want) in [
        ("default", PreTokenizer::Gpt2),
        ("gpt-2", PreTokenizer::Gpt2),
        ("gpt2", PreTokenizer::Gpt2),
        ("llama-bpe", PreTokenizer::Llama3),
        ("llama3", PreTokenizer::Llama3),
        ("qwen2", PreTokenizer::Qwen2),
    ] {
        assert_eq!(PreTokenizer::from_gguf_name(name), Ok(want));
    }
    for bad in ["", "deepseek-llm", "Qwen2", "starcoder"] {
        let e = PreTokenizer::from_gguf_name(bad).unwrap_err();
        assert_eq!(e, BpeError::UnknownPreTokenizer { name: bad.to_string() });
        assert!(e.to_string().contains("unsupported"));
    }
}

#[test]
fn gpt2_vocab_basics() {
    let t = tokenizer(PreTokenizer::Gpt2);
    assert_eq!(t.vocab_size(), 50257);
    assert_eq!(t.token_id("Ġthe".as_bytes()), Some(262));
    assert_eq!(t.decode(262), b" the");
    assert_eq!(t.decode(198), b"\n");
    assert_eq!(t.decode(50256), b"<|endoftext|>");
    assert_eq!(t.decode(50257), b"");
    assert_eq!(t.token_id(b"no such token"), None);
}

/// Construction and encoding speed for the 50k vocabulary (release: `--release`).
#[test]
fn timing() {
    let (tokens, merges) = gpt2_parts();
    let tokens = tokens.clone();
    let t0 = Instant::now();
    let t = BpeTokenizer::new(tokens, merges, &[], PreTokenizer::Qwen2, None, None, false).unwrap();
    let build = t0.elapsed();
    let text = shakespeare();
    let text = &text.as_bytes()[..100_000];
    let t0 = Instant::now();
    let ids = encode(&t, text);
    let enc = t0.elapsed();
    let long = vec![b' '; 20_000];
    let t0 = Instant::now();
    let spaces = encode(&t, &long);
    let enc_long = t0.elapsed();
    eprintln!(
        "bpe timing: construction {build:?} (50,257 tokens, 50,000 merges); encode 100 kB {enc:?} ({} tokens); 20,000 spaces {enc_long:?} ({} tokens)",
        ids.len(),
        spaces.len()
    );
    // Qwen2's size: 100,000 more tokens "zq0".."zq99999" and a merge for each one from
    // "zq10" on ("zq{i/10} {i%10}"), so 150,257 tokens and 149,990 merges.
    let (tokens, merges) = gpt2_parts();
    let mut big_tokens = tokens.clone();
    big_tokens.extend((0..100_000).map(|i| format!("zq{i}").into_bytes()));
    let mut big_merges = merges.clone();
    big_merges.extend((10..100_000).map(|i| format!("zq{} {}", i / 10, i % 10).into_bytes()));
    let t0 = Instant::now();
    let big = BpeTokenizer::new(big_tokens, &big_merges, &[], PreTokenizer::Qwen2, None, None, false).unwrap();
    let build_big = t0.elapsed();
    assert_eq!((big.vocab_size(), big.token_id(b"zq12345")), (150_257, Some(50_257 + 12_345)));
    eprintln!("bpe timing: construction {build_big:?} for 150,257 tokens and 149,990 merges");
    if !cfg!(debug_assertions) {
        assert!(build.as_secs_f64() < 1.0, "construction {build:?}");
        assert!(build_big.as_secs_f64() < 2.0, "construction {build_big:?}");
        assert!(enc.as_secs_f64() < 1.0, "encode {enc:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Any bytes: no panic, and decoding gives the bytes back.
    #[test]
    fn random_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..200), pick in 0usize..3) {
        let pre = [PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2][pick];
        let t = tokenizer(pre);
        let ids = encode(t, &bytes);
        prop_assert_eq!(decode_all(t, &ids), bytes);
    }

    /// Any valid text from a mix of classes: the same ids as tiktoken (GPT-2 split).
    #[test]
    fn random_text_matches_tiktoken(s in "[a-zA-Z0-9 '\\n\\t\\r.,!?é你👋\u{a0}\u{3000}\u{0301}_-]{0,60}") {
        static TIK: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
        let tik = TIK.get_or_init(|| tiktoken_rs::r50k_base().unwrap());
        let want: Vec<u32> = tik.encode_ordinary(&s);
        prop_assert_eq!(encode(tokenizer(PreTokenizer::Gpt2), s.as_bytes()), want);
    }
}
