//! llama2.c's SentencePiece-style tokenizer (`tokenizer::spm`): tokenizer.bin parsing, run.c's
//! encode (checked by hand and against a literal transcription of run.c), decode, errors.
use std::collections::HashMap;
use std::time::Instant;

use llm_engine::tokenizer::spm::{MAX_PIECE_LEN, MAX_VOCAB, SpmError, SpmTokenizer};
use proptest::prelude::*;

const BOS: u32 = 1;
const EOS: u32 = 2;

/// Id of byte `b`'s "<0xXX>" piece in llama2.c vocabularies (3 specials come first).
fn byte(b: u8) -> u32 {
    b as u32 + 3
}

/// Llama-2-like layout: <unk>, BOS, EOS, the 256 byte pieces (ids 3..=258), then `extra`.
/// BOS and EOS are spelled as llama2.c's tokenizer.py writes them.
fn vocab_with(extra: &[(&str, f32)], space: &str) -> (Vec<Vec<u8>>, Vec<f32>) {
    let mut pieces: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"\n<s>\n".to_vec(), b"\n</s>\n".to_vec()];
    let mut scores = vec![0.0, 0.0, 0.0];
    for b in 0..=255u8 {
        pieces.push(format!("<0x{b:02X}>").into_bytes());
        scores.push(0.0);
    }
    for &(p, s) in extra {
        pieces.push(p.replace(' ', space).into_bytes());
        scores.push(s);
    }
    (pieces, scores)
}

/// The hand-made vocabulary. Single characters score far below every merge, so only the
/// merge pieces' scores (higher merges first) matter. No "el", "lo", " h", "abc" or "xyz":
/// the hand traces below rely on those being absent. "yz" comes before "xy" so a tie broken
/// by lowest id would differ from run.c's leftmost pair.
const EXTRA: &[(&str, f32)] = &[
    (" ", -1000.0),
    ("h", -1000.0),
    ("e", -1000.0),
    ("l", -1000.0),
    ("o", -1000.0),
    ("a", -1000.0),
    ("b", -1000.0),
    ("c", -1000.0),
    ("x", -1000.0),
    ("y", -1000.0),
    ("z", -1000.0),
    ("w", -1000.0),
    ("r", -1000.0),
    ("d", -1000.0),
    ("é", -1000.0),
    ("\n", -1000.0),
    ("he", -1.0),
    ("ll", -2.0),
    ("or", -2.5),
    ("ld", -2.6),
    ("hell", -3.0),
    ("orld", -3.5),
    ("hello", -4.0),
    (" hello", -5.0),
    (" world", -5.5),
    (" w", -6.0),
    ("  ", -6.5),
    ("bc", -5.0),
    ("ab", -10.0),
    ("yz", -7.0),
    ("xy", -7.0),
    // A duplicate: lookups must give the first id (" hello" above).
    (" hello", -0.5),
];

/// Serializes a vocabulary in llama2.c's tokenizer.bin layout.
fn to_llama2c(pieces: &[Vec<u8>], scores: &[f32], max_token_length: i32) -> Vec<u8> {
    let mut out = max_token_length.to_le_bytes().to_vec();
    for (p, s) in pieces.iter().zip(scores) {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&(p.len() as i32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

fn max_len(pieces: &[Vec<u8>]) -> i32 {
    pieces.iter().map(Vec::len).max().unwrap() as i32
}

fn test_file() -> (Vec<u8>, usize) {
    let (pieces, scores) = vocab_with(EXTRA, " ");
    (to_llama2c(&pieces, &scores, max_len(&pieces)), pieces.len())
}

fn test_tok() -> SpmTokenizer {
    let (file, n) = test_file();
    SpmTokenizer::from_llama2c_bytes(&file, n).unwrap()
}

fn enc(tok: &SpmTokenizer, text: &[u8], bos: bool) -> Vec<u32> {
    let mut out = Vec::new();
    tok.encode(text, bos, &mut out);
    out
}

/// Joins the decoded tokens after the first (BOS) one, each decoded after its predecessor.
fn decode_all(tok: &SpmTokenizer, ids: &[u32]) -> Vec<u8> {
    ids.windows(2).flat_map(|w| tok.decode(w[0], w[1]).to_vec()).collect()
}

/// run.c's encode() transcribed literally (byte-by-byte grouping, full rescan of all pairs per
/// merge, best score starting at -1e10 with strict `>`), with llama2.c's b + 3 byte fallback
/// and the BOS excluded from merges; an independent reference for the cached merge loop.
fn reference_encode(pieces: &[Vec<u8>], scores: &[f32], text: &[u8]) -> Vec<u32> {
    let mut index: HashMap<&[u8], u32> = HashMap::new();
    for (i, p) in pieces.iter().enumerate() {
        index.entry(p.as_slice()).or_insert(i as u32);
    }
    let mut tokens = Vec::new();
    if text.is_empty() {
        return tokens;
    }
    tokens.push(index[&b" "[..]]);
    let mut buf: Vec<u8> = Vec::new();
    for (i, &c) in text.iter().enumerate() {
        if c & 0xC0 != 0x80 {
            buf.clear();
        }
        buf.push(c);
        if text.get(i + 1).is_some_and(|&n| n & 0xC0 == 0x80) && buf.len() < 4 {
            continue;
        }
        match index.get(buf.as_slice()) {
            Some(&id) => tokens.push(id),
            None => tokens.extend(buf.iter().map(|&b| b as u32 + 3)),
        }
        buf.clear();
    }
    loop {
        let (mut best_score, mut best_id, mut best_idx) = (-1e10f32, 0u32, None);
        for i in 0..tokens.len().saturating_sub(1) {
            let cat = [pieces[tokens[i] as usize].as_slice(), pieces[tokens[i + 1] as usize].as_slice()].concat();
            if let Some(&id) = index.get(cat.as_slice())
                && scores[id as usize] > best_score
            {
                (best_score, best_id, best_idx) = (scores[id as usize], id, Some(i));
            }
        }
        let Some(i) = best_idx else { break };
        tokens[i] = best_id;
        tokens.remove(i + 1);
    }
    tokens
}

#[test]
fn parses_llama2c_layout() {
    let tok = test_tok();
    let (pieces, scores) = vocab_with(EXTRA, " ");
    assert_eq!(tok.vocab_size(), pieces.len());
    assert_eq!((tok.bos(), tok.eos()), (Some(BOS), Some(EOS)));
    for (i, (p, s)) in pieces.iter().zip(&scores).enumerate() {
        assert_eq!(tok.piece(i as u32), Some(p.as_slice()));
        assert_eq!(tok.score(i as u32), Some(*s));
    }
    assert_eq!(tok.piece(pieces.len() as u32), None);
    assert_eq!(tok.score(u32::MAX), None);
    // The duplicate " hello" (last id) resolves to the first one.
    let first = pieces.iter().position(|p| p == b" hello").unwrap() as u32;
    assert_eq!(tok.id(b" hello"), Some(first));
    assert_ne!(first as usize, pieces.len() - 1);
    // Byte pieces sit at b + 3, as in llama2.c files.
    assert_eq!(tok.id(b"<0x41>"), Some(byte(b'A')));
}

#[test]
fn hello_merges_in_score_order() {
    let tok = test_tok();
    let t = |p: &str| tok.id(p.as_bytes()).unwrap();
    // Dummy prefix, then one token per character: [" ", h, e, l, l, o].
    // Pairs " h", "el", "lo" are not pieces; "he" (-1) beats "ll" (-2):  [" ", he, l, l, o]
    // then "ll" (-2) is the only pair:                                   [" ", he, ll, o]
    // then "hell" (-3):                                                  [" ", hell, o]
    // then "hello" (-4):                                                 [" ", hello]
    // then " hello" (-5):                                                [" hello"]
    assert_eq!(enc(&tok, b"hello", true), vec![BOS, t(" hello")]);
    assert_eq!(enc(&tok, b"hello", false), vec![t(" hello")]);
    // Both words reduce to [" ", hello, " ", hello] first (scores -1..-4 beat " hello"'s -5);
    // then the two " hello" pairs tie at -5 and merge left to right.
    assert_eq!(enc(&tok, b"hello hello", true), vec![BOS, t(" hello"), t(" hello")]);
    // [" ", h,e,l,l,o, " ", w,o,r,l,d]: he, ll, or (-2.5), ld (-2.6), hell, orld (-3.5), hello,
    // " hello" (-5), then " w" (-6) is the only pair left ("world" is no piece), then
    // " w" + "orld" = " world" (-5.5).
    assert_eq!(enc(&tok, b"hello world", true), vec![BOS, t(" hello"), t(" world")]);
}

#[test]
fn higher_score_wins_and_ties_go_left() {
    let tok = test_tok();
    let t = |p: &str| tok.id(p.as_bytes()).unwrap();
    // [" ", a, b, c]: "ab" scores -10, "bc" -5: "bc" wins although "ab" is further left;
    // then neither "abc" nor " a" is a piece.
    assert_eq!(enc(&tok, b"abc", true), vec![BOS, t(" "), t("a"), t("bc")]);
    // [" ", x, y, z]: "xy" and "yz" both score -7: the leftmost pair merges (run.c's strict >),
    // even though "yz" has the lower id; "xyz" is no piece.
    assert!(t("yz") < t("xy"));
    assert_eq!(enc(&tok, b"xyz", true), vec![BOS, t(" "), t("xy"), t("z")]);
    // [" ", a, " ", " ", b]: only "  " (-6.5) merges; "a  " and "  b" are no pieces.
    assert_eq!(enc(&tok, b"a  b", true), vec![BOS, t(" "), t("a"), t("  "), t("b")]);
}

#[test]
fn byte_fallback_for_characters_without_pieces() {
    let tok = test_tok();
    let t = |p: &str| tok.id(p.as_bytes()).unwrap();
    // "é" is a piece (one codepoint, two bytes); "f" is not: its byte piece <0x66>.
    assert_eq!(enc(&tok, "café".as_bytes(), true), vec![BOS, t(" "), t("c"), t("a"), byte(b'f'), t("é")]);
    // 中 = E4 B8 AD, no piece: its three byte pieces.
    assert_eq!(enc(&tok, "中".as_bytes(), true), vec![BOS, t(" "), byte(0xE4), byte(0xB8), byte(0xAD)]);
    // 😀 = F0 9F 98 80.
    assert_eq!(enc(&tok, "😀".as_bytes(), false), vec![t(" "), byte(0xF0), byte(0x9F), byte(0x98), byte(0x80)]);
    // The byte ids really are the "<0xXX>" pieces.
    assert_eq!(tok.piece(byte(0xE4)), Some(&b"<0xE4>"[..]));
}

#[test]
fn invalid_utf8_groups_like_run_c() {
    let tok = test_tok();
    let t = |p: &str| tok.id(p.as_bytes()).unwrap();
    // 0xFF cannot continue "h" (not 10xxxxxx), so it stands alone and falls back to <0xFF>;
    // "he" is not adjacent any more.
    assert_eq!(enc(&tok, b"h\xFFe", true), vec![BOS, t(" "), t("h"), byte(0xFF), t("e")]);
    // A stray continuation byte joins the codepoint before it (run.c groups by continuation
    // bytes, up to 4): "é\x80" is no piece, so all three bytes fall back, "é" included.
    assert_eq!(enc(&tok, b"\xC3\xA9\x80", true), vec![BOS, t(" "), byte(0xC3), byte(0xA9), byte(0x80)]);
    // Same for ASCII followed by a continuation byte.
    assert_eq!(enc(&tok, b"a\x80", true), vec![BOS, t(" "), byte(b'a'), byte(0x80)]);
    // A leading continuation byte is a group of its own; "a" after it is a piece.
    assert_eq!(enc(&tok, b"\x80a", true), vec![BOS, t(" "), byte(0x80), t("a")]);
    // Five continuation bytes: a group of 4 then a group of 1, all bytes.
    assert_eq!(enc(&tok, &[0x80; 5], false), [vec![t(" ")], vec![byte(0x80); 5]].concat());
    // A truncated sequence at the end of the text.
    assert_eq!(enc(&tok, b"\xE4\xB8", false), vec![t(" "), byte(0xE4), byte(0xB8)]);
    // NUL is encoded (run.c would stop at it).
    assert_eq!(enc(&tok, b"a\0", false), vec![t(" "), t("a"), byte(0)]);
}

#[test]
fn empty_text_has_no_dummy_prefix() {
    let tok = test_tok();
    assert_eq!(enc(&tok, b"", true), vec![BOS]);
    assert_eq!(enc(&tok, b"", false), Vec::<u32>::new());
    // encode appends.
    let mut out = vec![7];
    tok.encode(b"", true, &mut out);
    tok.encode(b"", true, &mut out);
    assert_eq!(out, vec![7, BOS, BOS]);
}

#[test]
fn decode_rules() {
    let tok = test_tok();
    let t = |p: &str| tok.id(p.as_bytes()).unwrap();
    // "<0xXX>" pieces are that raw byte, whatever came before.
    assert_eq!(tok.decode(t("a"), byte(b'A')), b"A");
    assert_eq!(tok.decode(BOS, byte(0x0A)), b"\n");
    assert_eq!(tok.decode(BOS, byte(0xFF)), b"\xFF");
    // A byte piece for space keeps its space even after BOS (run.c checks the piece's text).
    assert_eq!(tok.decode(BOS, byte(b' ')), b" ");
    // The leading space goes only right after BOS.
    assert_eq!(tok.decode(BOS, t(" hello")), b"hello");
    assert_eq!(tok.decode(t("a"), t(" hello")), b" hello");
    assert_eq!(tok.decode(EOS, t(" hello")), b" hello");
    assert_eq!(tok.decode(BOS, t(" ")), b"");
    assert_eq!(tok.decode(BOS, t("  ")), b" ");
    assert_eq!(tok.decode(BOS, t("he")), b"he");
    // Specials print as stored; ids outside the vocabulary print nothing.
    assert_eq!(tok.decode(0, BOS), b"\n<s>\n");
    assert_eq!(tok.decode(0, tok.vocab_size() as u32), b"");
    assert_eq!(tok.decode(BOS, u32::MAX), b"");
}

const TEXTS: &[&str] = &[
    "hello",
    "hello world",
    "Héllo, café crème brûlée",
    "日本語のテキストと中文",
    "emoji 😀🎉👍🏽 ok",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\n\n\r\n",
    "fn main() {\n    println!(\"{} <0x41> \\u{2581}\", 1 + 2);\n}\n",
    " ",
    "\u{2581}marker stays literal here",
    "abc xyz a  b   c",
];

#[test]
fn round_trips() {
    let tok = test_tok();
    for text in TEXTS {
        let ids = enc(&tok, text.as_bytes(), true);
        assert_eq!(decode_all(&tok, &ids), text.as_bytes(), "{text:?} -> {ids:?}");
    }
    let junk = b"\xFF\xFE a\x80\xC3 \xE4\xB8\x00 end";
    assert_eq!(decode_all(&tok, &enc(&tok, junk, true)), junk);
}

#[test]
fn matches_reference_transcription() {
    let tok = test_tok();
    let (pieces, scores) = vocab_with(EXTRA, " ");
    for text in TEXTS {
        let mut want = vec![BOS];
        want.extend(reference_encode(&pieces, &scores, text.as_bytes()));
        assert_eq!(enc(&tok, text.as_bytes(), true), want, "{text:?}");
    }
}

/// A Llama-2-sized vocabulary (32,000 tokens): bytes, then every 1-, 2- and 3-letter string
/// over "a".."z" and space, then pseudo-random 4..=8-letter strings (some duplicates), with
/// pseudo-random scores.
fn big_vocab() -> (Vec<Vec<u8>>, Vec<f32>) {
    let (mut pieces, mut scores) = vocab_with(&[], " ");
    let letters = b" abcdefghijklmnopqrstuvwxyz";
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for &a in letters {
        pieces.push(vec![a]);
    }
    for &a in letters {
        for &b in letters {
            pieces.push(vec![a, b]);
            for &c in letters {
                pieces.push(vec![a, b, c]);
            }
        }
    }
    while pieces.len() < 32_000 {
        let n = 4 + (next() % 5) as usize;
        pieces.push((0..n).map(|_| letters[(next() % 27) as usize]).collect());
    }
    scores.resize(pieces.len(), 0.0);
    for s in &mut scores[259..] {
        *s = -((next() % 100_000) as f32) / 10.0;
    }
    (pieces, scores)
}

fn prose(len: usize, seed: u64) -> Vec<u8> {
    let words = ["the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dog ", "and ", "zebra ", "q", "é ", "中 "];
    let mut s = seed;
    let mut out = Vec::new();
    while out.len() < len {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        out.extend_from_slice(words[(s >> 33) as usize % words.len()].as_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn big_vocabulary_is_fast_and_matches_reference() {
    let (pieces, scores) = big_vocab();
    let file = to_llama2c(&pieces, &scores, max_len(&pieces));
    let t0 = Instant::now();
    let tok = SpmTokenizer::from_llama2c_bytes(&file, pieces.len()).unwrap();
    let parse = t0.elapsed();
    // Short texts against the literal transcription (which is slow on long ones).
    for seed in 0..20 {
        let text = prose(300, seed);
        let mut want = vec![BOS];
        want.extend(reference_encode(&pieces, &scores, &text));
        assert_eq!(enc(&tok, &text, true), want, "seed {seed}");
    }
    let text = prose(5000, 99);
    let t0 = Instant::now();
    let ids = enc(&tok, &text, true);
    let encode = t0.elapsed();
    assert_eq!(decode_all(&tok, &ids), text);
    eprintln!("32000-token vocabulary: parse {parse:?}; 5000-byte prompt -> {} tokens in {encode:?}", ids.len());
    // Release builds take milliseconds; the bound leaves room for a busy machine and debug builds.
    let limit = if cfg!(debug_assertions) { 20.0 } else { 1.0 };
    assert!(encode.as_secs_f64() < limit, "encode took {encode:?}");
}

fn space_marker_tok(add_dummy_prefix: bool) -> SpmTokenizer {
    let (pieces, scores) = vocab_with(EXTRA, "\u{2581}");
    // GGUF spells BOS/EOS "<s>"/"</s>"; keep llama2.c's ids.
    let mut pieces = pieces;
    pieces[1] = b"<s>".to_vec();
    pieces[2] = b"</s>".to_vec();
    SpmTokenizer::new(pieces, scores, Some(BOS), Some(EOS), add_dummy_prefix, true).unwrap()
}

#[test]
fn space_marker_vocabulary() {
    let tok = space_marker_tok(true);
    let t = |p: &str| tok.id(p.as_bytes()).unwrap();
    // The same traces as above, with spaces spelled '▁' in the pieces and in the input.
    assert_eq!(enc(&tok, b"hello world", true), vec![BOS, t("\u{2581}hello"), t("\u{2581}world")]);
    assert_eq!(enc(&tok, b"xyz", false), vec![t("\u{2581}"), t("xy"), t("z")]);
    assert_eq!(enc(&tok, b"a  b", false), vec![t("\u{2581}"), t("a"), t("\u{2581}\u{2581}"), t("b")]);
    assert_eq!(enc(&tok, b"", true), vec![BOS]);
    // '▁' prints as a space; the leading one goes after BOS only.
    assert_eq!(tok.decode(BOS, t("\u{2581}hello")), b"hello");
    assert_eq!(tok.decode(t("a"), t("\u{2581}world")), b" world");
    assert_eq!(tok.decode(t("a"), t("\u{2581}\u{2581}")), b"  ");
    assert_eq!(tok.decode(BOS, t("\u{2581}")), b"");
    assert_eq!(tok.piece(t("\u{2581}hello")), Some("\u{2581}hello".as_bytes()));
    // A literal '▁' in the input is the space piece and prints as ' ' (as in SentencePiece).
    for text in TEXTS.iter().filter(|t| !t.contains('\u{2581}')) {
        let ids = enc(&tok, text.as_bytes(), true);
        assert_eq!(decode_all(&tok, &ids), text.as_bytes(), "{text:?} -> {ids:?}");
    }
    assert_eq!(decode_all(&tok, &enc(&tok, "\u{2581}x".as_bytes(), true)), b" x");
    // Without the dummy prefix: no leading '▁'.
    let bare = space_marker_tok(false);
    assert_eq!(enc(&bare, b"hello", true), vec![BOS, t("hello")]);
    assert_eq!(enc(&bare, b"hello world", false), vec![t("hello"), t("\u{2581}world")]);
}

#[test]
fn every_truncation_is_a_typed_error() {
    let (file, n) = test_file();
    for cut in 0..4 {
        assert_eq!(SpmTokenizer::from_llama2c_bytes(&file[..cut], n).err(), Some(SpmError::TooShort { len: cut }));
    }
    // Token i occupies file[starts[i]..starts[i + 1]].
    let (pieces, _) = vocab_with(EXTRA, " ");
    let mut starts = vec![4];
    for p in &pieces {
        starts.push(starts.last().unwrap() + 8 + p.len());
    }
    assert_eq!(*starts.last().unwrap(), file.len());
    for cut in 4..file.len() {
        let token = starts.iter().rposition(|&s| s <= cut).unwrap();
        let got = SpmTokenizer::from_llama2c_bytes(&file[..cut], n).err();
        assert_eq!(got, Some(SpmError::Truncated { token, vocab_size: n }), "cut at byte {cut}");
    }
    // A model with a larger vocabulary than the file.
    assert_eq!(SpmTokenizer::from_llama2c_bytes(&file, n + 1).err(), Some(SpmError::Truncated { token: n, vocab_size: n + 1 }));
}

/// The file with the i32/f32 field at byte `at` replaced.
fn patched(file: &[u8], at: usize, value: [u8; 4]) -> Vec<u8> {
    let mut f = file.to_vec();
    f[at..at + 4].copy_from_slice(&value);
    f
}

#[test]
fn bad_fields_are_typed_errors() {
    let (file, n) = test_file();
    let parse = |f: &[u8]| SpmTokenizer::from_llama2c_bytes(f, n).err();
    // Token 0 is "<unk>": score at byte 4, length at byte 8; token 1 starts at 4 + 8 + 5 = 17.
    let max = i32::from_le_bytes(file[..4].try_into().unwrap()) as usize;
    assert_eq!(parse(&patched(&file, 8, (-1i32).to_le_bytes())), Some(SpmError::BadLength { token: 0, len: -1 }));
    assert_eq!(parse(&patched(&file, 21, i32::MIN.to_le_bytes())), Some(SpmError::BadLength { token: 1, len: i32::MIN }));
    assert_eq!(parse(&patched(&file, 21, i32::MAX.to_le_bytes())), Some(SpmError::LengthOverMax { token: 1, len: i32::MAX as usize, max }));
    assert_eq!(parse(&patched(&file, 8, (max as i32 + 1).to_le_bytes())), Some(SpmError::LengthOverMax { token: 0, len: max + 1, max }));
    // A header that understates the longest piece: EOS "\n</s>\n" (6 bytes) is the first over 5.
    assert_eq!(parse(&patched(&file, 0, 5i32.to_le_bytes())), Some(SpmError::LengthOverMax { token: 2, len: 6, max: 5 }));
    assert_eq!(parse(&patched(&file, 0, (-1i32).to_le_bytes())), Some(SpmError::BadMaxLength { found: -1 }));
    assert_eq!(parse(&patched(&file, 0, i32::MAX.to_le_bytes())), Some(SpmError::BadMaxLength { found: i32::MAX }));
    assert_eq!(parse(&patched(&file, 17, f32::NAN.to_le_bytes())), Some(SpmError::BadScore { token: 1 }));
    assert_eq!(parse(&patched(&file, 4, f32::NEG_INFINITY.to_le_bytes())), Some(SpmError::BadScore { token: 0 }));
    // Trailing bytes, and a model with a smaller vocabulary than the file.
    let mut long = file.clone();
    long.extend_from_slice(b"xyz");
    assert_eq!(parse(&long), Some(SpmError::TrailingBytes { extra: 3 }));
    assert_eq!(SpmTokenizer::from_llama2c_bytes(&file, n - 1).err(), Some(SpmError::TrailingBytes { extra: 8 + 6 }));
    // Vocabulary sizes.
    assert_eq!(SpmTokenizer::from_llama2c_bytes(&file, 0).err(), Some(SpmError::BadVocab { vocab_size: 0 }));
    assert_eq!(SpmTokenizer::from_llama2c_bytes(&file, MAX_VOCAB + 1).err(), Some(SpmError::BadVocab { vocab_size: MAX_VOCAB + 1 }));
    assert_eq!(SpmTokenizer::from_llama2c_bytes(&file, usize::MAX).err(), Some(SpmError::BadVocab { vocab_size: usize::MAX }));
    // A huge claimed vocabulary on a tiny file fails on the file, not on allocation.
    assert_eq!(
        SpmTokenizer::from_llama2c_bytes(&file[..12], MAX_VOCAB).err(),
        Some(SpmError::Truncated { token: 0, vocab_size: MAX_VOCAB })
    );
}

#[test]
fn tiny_vocabularies_parse() {
    // One empty piece: no BOS or EOS (ids 1 and 2 do not exist). "hi" falls back to <unk>
    // twice, and as in run.c the pair "" ++ "" spells the piece "" (score 0), so they merge.
    let file = to_llama2c(&[vec![]], &[0.0], 0);
    let tok = SpmTokenizer::from_llama2c_bytes(&file, 1).unwrap();
    assert_eq!((tok.vocab_size(), tok.bos(), tok.eos()), (1, None, None));
    assert_eq!(enc(&tok, b"hi", true), vec![0]);
    assert_eq!(tok.decode(0, 0), b"");
}

#[test]
fn new_checks_its_arguments() {
    let p = || vec![b"a".to_vec(), b"b".to_vec()];
    assert_eq!(
        SpmTokenizer::new(p(), vec![0.0], None, None, true, false).err(),
        Some(SpmError::ScoreCountMismatch { pieces: 2, scores: 1 })
    );
    assert_eq!(SpmTokenizer::new(vec![], vec![], None, None, true, false).err(), Some(SpmError::BadVocab { vocab_size: 0 }));
    assert_eq!(SpmTokenizer::new(p(), vec![0.0, f32::NAN], None, None, true, false).err(), Some(SpmError::BadScore { token: 1 }));
    assert_eq!(
        SpmTokenizer::new(p(), vec![0.0; 2], Some(2), None, true, false).err(),
        Some(SpmError::BadSpecial { name: "BOS", id: 2, vocab_size: 2 })
    );
    assert_eq!(
        SpmTokenizer::new(p(), vec![0.0; 2], Some(0), Some(9), true, false).err(),
        Some(SpmError::BadSpecial { name: "EOS", id: 9, vocab_size: 2 })
    );
    let long = vec![b"a".to_vec(), vec![b'x'; MAX_PIECE_LEN + 1]];
    assert!(matches!(SpmTokenizer::new(long, vec![0.0; 2], None, None, true, false), Err(SpmError::LengthOverMax { token: 1, .. })));
    // No " " piece: no dummy prefix; no byte pieces: <unk> (0) for bytes without a piece.
    let tok =
        SpmTokenizer::new(vec![b"<unk>".to_vec(), b"a".to_vec(), b"aa".to_vec()], vec![0.0, -1.0, -2.0], None, None, true, false).unwrap();
    assert_eq!(enc(&tok, b"aaa!", true), vec![2, 1, 0]);
}

#[test]
fn error_messages_are_actionable() {
    let e = SpmError::Truncated { token: 17, vocab_size: 32000 };
    assert!(e.to_string().starts_with("tokenizer.bin is truncated at token 17 of 32000"), "{e}");
    assert!(SpmError::TrailingBytes { extra: 5 }.to_string().contains("smaller vocabulary"));
    assert!(SpmError::BadScore { token: 3 }.to_string().contains("token 3"));
    let boxed: Box<dyn std::error::Error> = Box::new(SpmError::BadVocab { vocab_size: 0 });
    assert!(boxed.to_string().contains("vocab_size"));
}

/// run.c's best score starts at -1e10 with a strict `>`: a piece scored -1e10 never merges.
#[test]
fn merges_at_or_below_minus_1e10_never_happen() {
    let pieces = vec![b"<unk>".to_vec(), b"a".to_vec(), b"aa".to_vec(), b"b".to_vec(), b"bb".to_vec()];
    let tok = SpmTokenizer::new(pieces, vec![0.0, 0.0, -1e10, 0.0, -9.9e9], None, None, false, false).unwrap();
    assert_eq!(enc(&tok, b"aabb", false), vec![1, 1, 4]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000), vocab in 0usize..400) {
        if let Ok(tok) = SpmTokenizer::from_llama2c_bytes(&bytes, vocab) {
            let ids = enc(&tok, &bytes, true);
            for w in ids.windows(2) {
                tok.decode(w[0], w[1]);
            }
        }
    }

    #[test]
    fn mutated_files_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
        delta in -2i64..3,
    ) {
        let (mut file, n) = test_file();
        for (at, b) in edits {
            let i = at % file.len();
            file[i] = b;
        }
        let len = file.len() - cut % 64;
        let vocab = (n as i64 + delta) as usize;
        match SpmTokenizer::from_llama2c_bytes(&file[..len], vocab) {
            Ok(tok) => {
                let ids = enc(&tok, "héllo wörld 中 😀 \u{2581}\0\x7F".as_bytes(), true);
                prop_assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
                for w in ids.windows(2) {
                    tok.decode(w[0], w[1]);
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn any_bytes_round_trip_and_match_reference(text in proptest::collection::vec(prop_oneof![
        4 => proptest::sample::select(b"helowrdabcxyz \n".to_vec()),
        1 => any::<u8>(),
    ], 0..60)) {
        let tok = test_tok();
        let ids = enc(&tok, &text, true);
        prop_assert_eq!(decode_all(&tok, &ids), text.clone());
        let (pieces, scores) = vocab_with(EXTRA, " ");
        prop_assert_eq!(&ids[1..], &reference_encode(&pieces, &scores, &text)[..]);
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd-length hex {hex:?}");
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// Compares with Google's sentencepiece library (an independent implementation) on a 2000-token
/// BPE model it trained on Tiny Shakespeare with Llama 2's settings: engine/tests/fixtures/spm/
/// holds that model as llama2.c's tokenizer.bin and cases.tsv with sentencepiece's ids and
/// decoded text per test text (see its README.md; regenerate with
/// `python3 scripts/check-spm-tokenizer.py`).
#[test]
fn sentencepiece_fixture() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/spm");
    let file = std::fs::read(format!("{dir}/tokenizer.bin")).unwrap_or_else(|e| panic!("{dir}/tokenizer.bin: {e}"));
    let cases = std::fs::read_to_string(format!("{dir}/cases.tsv")).unwrap_or_else(|e| panic!("{dir}/cases.tsv: {e}"));
    let mut lines = cases.lines();
    let n: usize = lines.next().unwrap().strip_prefix("vocab ").unwrap().parse().unwrap();
    let tok = SpmTokenizer::from_llama2c_bytes(&file, n).unwrap();
    assert_eq!((tok.bos(), tok.eos()), (Some(BOS), Some(EOS)));
    let (mut count, mut bad) = (0, 0);
    for (i, line) in lines.enumerate() {
        // Columns: text (UTF-8 hex), ids (BOS first), sentencepiece's decode (hex), text as JSON.
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 4, "cases.tsv line {}: {line:?}", i + 2);
        let text = unhex(cols[0]);
        let want: Vec<u32> = cols[1].split(' ').map(|s| s.parse().unwrap()).collect();
        let decoded = unhex(cols[2]);
        let shown = cols[3];
        count += 1;
        let got = enc(&tok, &text, true);
        if got != want {
            bad += 1;
            eprintln!("MISMATCH {shown}\n  sentencepiece {want:?}\n  spm.rs        {got:?}");
        }
        let back = decode_all(&tok, &got);
        if back != decoded || back != text {
            bad += 1;
            eprintln!(
                "ROUND TRIP {shown} -> {:?} (sentencepiece: {:?})",
                String::from_utf8_lossy(&back),
                String::from_utf8_lossy(&decoded)
            );
        }
    }
    assert!(count >= 30, "only {count} cases in {dir}/cases.tsv");
    assert_eq!(bad, 0, "{bad} differences from sentencepiece in {count} cases");
}
