//! Byte-level BPE by merge rank: GGUF's `tokenizer.ggml.model = gpt2` (GPT-2, Llama 3, Qwen2).
//!
//! GPT-2's byte-level BPE (OpenAI); pre-tokenizer rules as in llama.cpp's `llama-vocab.cpp`
//! (MIT). This is an independent Rust implementation: no regex engine, the three
//! pre-tokenizer patterns are matched by hand.
//!
//! Vocabulary strings are stored as GPT-2 writes them: every byte of the text is first mapped
//! to one printable character (`byte_to_unicode`: the printable Latin-1 bytes map to
//! themselves, the other 68 bytes to U+0100..=U+0143 in byte order, so a space is 'Ġ'
//! U+0120), and a token is the UTF-8 of those characters. Merges are "left right" strings in
//! rank order (rank 0 merges first).
//!
//! Encoding:
//! 1. Special tokens (GGUF types 2 unknown, 3 control, 4 user-defined) are not this file's
//!    business: [`super::gguf::GgufTokenizer`] splits them off the text first (user-defined
//!    ones always, control ones only when told to parse specials), and hands the text between
//!    them here. Encoding never produces a special token: merges, bytes and Llama 3's
//!    whole-piece lookup only ever yield normal tokens, so text stays text.
//! 2. The rest is split by the pre-tokenizer (see [`PreTokenizer`]). Bytes that are not valid
//!    UTF-8 are pieces of their own, one byte each; valid runs between them split normally.
//! 3. Each piece starts as one symbol per byte (the token of that byte's mapped character);
//!    the adjacent pair with the lowest merge rank (the leftmost on ties) is merged until no
//!    pair has a merge. Pairs are kept in a heap, so a long piece costs O(n log n). Llama 3
//!    first takes a piece that is a token as a whole as that token (llama.cpp's
//!    `ignore_merges`, `"ignore_merges": true` in Llama 3's tokenizer.json).
//!
//! Decoding maps the characters of normal tokens back to bytes; special tokens decode to their
//! stored text. The bytes of every token are computed once at construction.

use alloc::collections::BinaryHeap;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::fmt;

mod unicode_tables;
use unicode_tables::{LETTERS, NUMBERS};

/// Most tokens accepted (ids are u32; Qwen2 has 151,936).
pub const MAX_VOCAB: usize = 1 << 24;
/// Longest token accepted, in bytes (real ones stay under a few hundred).
pub const MAX_TOKEN_LEN: usize = 1 << 16;

/// GGUF token types (`tokenizer.ggml.token_type`).
pub const TOKEN_TYPE_NORMAL: i32 = 1;
pub const TOKEN_TYPE_UNKNOWN: i32 = 2;
pub const TOKEN_TYPE_CONTROL: i32 = 3;
pub const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Symbol id for a byte whose mapped character has no token: never merges, never emitted.
const NO_TOKEN: u32 = u32::MAX;
/// End of the symbol list.
const NONE: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BpeError {
    /// `tokenizer.ggml.pre` names a pre-tokenizer this engine does not implement.
    UnknownPreTokenizer { name: String },
    /// The vocabulary is empty or has over [`MAX_VOCAB`] tokens.
    BadVocab { vocab_size: usize },
    /// Token types were given, but not one per token.
    TokenTypeCountMismatch { tokens: usize, types: usize },
    /// Token `token` is empty or longer than [`MAX_TOKEN_LEN`].
    BadToken { token: usize, len: usize },
    /// Merge `index` (0-based rank) has no space separating its two parts.
    BadMerge { index: usize },
    /// More merges than fit a u32 rank.
    TooManyMerges,
    /// The BOS or EOS id is not in the vocabulary.
    BadSpecial { name: &'static str, id: u32, vocab_size: usize },
    /// All tokens together are over 4 GiB.
    TooLarge { bytes: usize },
}

impl fmt::Display for BpeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BpeError::UnknownPreTokenizer { name } => write!(
                f,
                "unsupported tokenizer.ggml.pre {name:?} (supported: default, gpt-2, gpt2, llama-bpe, llama3, qwen2): \
                 splitting text with another pre-tokenizer would give wrong tokens"
            ),
            BpeError::BadVocab { vocab_size } => write!(f, "bad BPE vocabulary size {vocab_size} (must be 1 to {MAX_VOCAB})"),
            BpeError::TokenTypeCountMismatch { tokens, types } => {
                write!(f, "BPE vocabulary has {tokens} tokens but {types} token types: they must match one to one")
            }
            BpeError::BadToken { token, len } => {
                write!(f, "BPE token {token} is {len} bytes (must be 1 to {MAX_TOKEN_LEN}): the file is damaged")
            }
            BpeError::BadMerge { index } => write!(f, "BPE merge {index} has no space between its two parts: the file is damaged"),
            BpeError::TooManyMerges => write!(f, "BPE vocabulary has more than 2^32 merges"),
            BpeError::BadSpecial { name, id, vocab_size } => {
                write!(f, "tokenizer {name} id {id} is outside the vocabulary of {vocab_size} tokens")
            }
            BpeError::TooLarge { bytes } => write!(f, "BPE tokens take {bytes} bytes, over the 4 GiB limit"),
        }
    }
}

impl core::error::Error for BpeError {}

/// How text is split into pieces before BPE (a piece never merges with its neighbours).
/// Each is a regex in its model's tokenizer; here each is matched by hand with the regex's
/// semantics (alternatives tried in order, greedy quantifiers that give back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2 (encoder.py): `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    Gpt2,
    /// Llama 3 (`llama-bpe`): `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    Llama3,
    /// Qwen2: as Llama 3 with single digits (`\p{N}` for `\p{N}{1,3}`).
    Qwen2,
}

impl PreTokenizer {
    /// The pre-tokenizer named by GGUF's `tokenizer.ggml.pre`. Unknown names are an error,
    /// never a silent fallback to a split that would give different tokens.
    pub fn from_gguf_name(name: &str) -> Result<PreTokenizer, BpeError> {
        match name {
            "default" | "gpt-2" | "gpt2" => Ok(PreTokenizer::Gpt2),
            "llama-bpe" | "llama3" => Ok(PreTokenizer::Llama3),
            "qwen2" => Ok(PreTokenizer::Qwen2),
            _ => Err(BpeError::UnknownPreTokenizer { name: String::from(name) }),
        }
    }

    /// Appends the pieces of `text` to `out` as byte ranges covering it in order. Bytes that
    /// are not valid UTF-8 are one-byte pieces; the valid runs between them split as if each
    /// were a whole text.
    pub fn split(self, text: &[u8], out: &mut Vec<(usize, usize)>) {
        let mut chars = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let (valid, bad) = match core::str::from_utf8(&text[at..]) {
                Ok(s) => (s.len(), 0),
                Err(e) => (e.valid_up_to(), e.error_len().unwrap_or(text.len() - at - e.valid_up_to())),
            };
            if valid > 0 {
                // from_utf8 said these bytes are valid, so this never gives "".
                let s = core::str::from_utf8(&text[at..at + valid]).unwrap_or("");
                chars.clear();
                chars.extend(s.char_indices().map(|(i, c)| (at + i, c)));
                self.split_chars(&chars, at + valid, out);
            }
            at += valid;
            for _ in 0..bad {
                out.push((at, at + 1));
                at += 1;
            }
        }
    }

    /// Splits valid text given as (byte offset, char) pairs ending at byte `end`.
    fn split_chars(self, chars: &[(usize, char)], end: usize, out: &mut Vec<(usize, usize)>) {
        let c: Vec<Class> = chars.iter().map(|&(_, ch)| Class::of(ch)).collect();
        let mut i = 0;
        while i < c.len() {
            let len = match self {
                PreTokenizer::Gpt2 => gpt2_match(chars, &c, i),
                PreTokenizer::Llama3 => llama3_match(chars, &c, i, 3),
                PreTokenizer::Qwen2 => llama3_match(chars, &c, i, 1),
            };
            debug_assert!(len > 0);
            let len = len.max(1);
            let j = i + len;
            out.push((chars[i].0, if j < chars.len() { chars[j].0 } else { end }));
            i = j;
        }
    }
}

/// What the pre-tokenizer patterns ask of a character.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    /// White_Space (`\s`).
    Space,
    /// Anything else: `[^\s\p{L}\p{N}]`.
    Other,
}

impl Class {
    fn of(c: char) -> Class {
        if c.is_ascii() {
            return match c {
                'a'..='z' | 'A'..='Z' => Class::Letter,
                '0'..='9' => Class::Number,
                '\t' | '\n' | '\x0B' | '\x0C' | '\r' | ' ' => Class::Space,
                _ => Class::Other,
            };
        }
        // White_Space is a stable property and core's is_whitespace is exactly it.
        if c.is_whitespace() {
            Class::Space
        } else if in_table(&LETTERS, c) {
            Class::Letter
        } else if in_table(&NUMBERS, c) {
            Class::Number
        } else {
            Class::Other
        }
    }
}

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                core::cmp::Ordering::Less
            } else if lo > c {
                core::cmp::Ordering::Greater
            } else {
                core::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Length of the run of `class` characters starting at `i`.
fn run(c: &[Class], i: usize, class: Class) -> usize {
    c[i..].iter().take_while(|&&k| k == class).count()
}

/// The whitespace alternatives shared by all patterns, `\s+(?!\S)|\s+`, at a Space char `i`:
/// the whole run when it ends the text, else the run less its last char (which then starts
/// the next piece, e.g. " word"), but at least one char.
fn space_tail(c: &[Class], i: usize) -> usize {
    let n = run(c, i, Class::Space);
    if i + n == c.len() || n == 1 { n } else { n - 1 }
}

/// GPT-2's pattern at char `i`; returns the match length in chars (at least 1).
fn gpt2_match(ch: &[(usize, char)], c: &[Class], i: usize) -> usize {
    // 's|'t|'re|'ve|'m|'ll|'d (lowercase only)
    if ch[i].1 == '\'' {
        let next = |k: usize| ch.get(i + k).map(|&(_, x)| x);
        match (next(1), next(2)) {
            (Some('s' | 't' | 'm' | 'd'), _) => return 2,
            (Some('r' | 'v'), Some('e')) | (Some('l'), Some('l')) => return 3,
            _ => {}
        }
    }
    //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
    let space = ch[i].1 == ' ';
    for class in [Class::Letter, Class::Number, Class::Other] {
        if space && c.get(i + 1) == Some(&class) {
            return 1 + run(c, i + 1, class);
        }
        if c[i] == class {
            return run(c, i, class);
        }
    }
    // \s+(?!\S) | \s+ (c[i] is Space here)
    space_tail(c, i)
}

fn is_crlf(x: char) -> bool {
    x == '\r' || x == '\n'
}

/// The Llama 3 pattern at char `i` with `\p{N}{1,max_digits}` (Qwen2: 1); returns the match
/// length in chars (at least 1).
fn llama3_match(ch: &[(usize, char)], c: &[Class], i: usize, max_digits: usize) -> usize {
    let n = c.len();
    // (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])
    if ch[i].1 == '\'' {
        let next = |k: usize| ch.get(i + k).map(|&(_, x)| x.to_ascii_lowercase());
        match (next(1), next(2)) {
            (Some('s' | 't' | 'm' | 'd'), _) => return 2,
            (Some('r' | 'v'), Some('e')) | (Some('l'), Some('l')) => return 3,
            _ => {}
        }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (c[i] == Class::Other || (c[i] == Class::Space && !is_crlf(ch[i].1))) && c.get(i + 1) == Some(&Class::Letter) {
        return 1 + run(c, i + 1, Class::Letter);
    }
    if c[i] == Class::Letter {
        return run(c, i, Class::Letter);
    }
    // \p{N}{1,max}
    if c[i] == Class::Number {
        return run(c, i, Class::Number).min(max_digits);
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    let start = if ch[i].1 == ' ' && c.get(i + 1) == Some(&Class::Other) { i + 1 } else { i };
    if c[start] == Class::Other {
        let mut j = start + run(c, start, Class::Other);
        while j < n && is_crlf(ch[j].1) {
            j += 1;
        }
        return j - i;
    }
    // \s*[\r\n]+ : the whitespace run up to and including its last \r or \n.
    let len = run(c, i, Class::Space);
    if let Some(k) = (i..i + len).rev().find(|&k| is_crlf(ch[k].1)) {
        return k + 1 - i;
    }
    // \s+(?!\S) | \s+
    space_tail(c, i)
}

/// Bytes GPT-2's `bytes_to_unicode` writes as themselves.
const fn printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// GPT-2's `bytes_to_unicode`: the character each byte is written as in the vocabulary. The
/// printable bytes are themselves; the others take U+0100.. in byte order.
static BYTE_CHAR: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut n = 0;
    let mut b = 0;
    while b < 256 {
        if printable(b as u8) {
            t[b] = b as u32;
        } else {
            t[b] = 256 + n;
            n += 1;
        }
        b += 1;
    }
    t
};

/// Inverse of [`BYTE_CHAR`]: the byte for each character up to U+0143, or -1.
static CHAR_BYTE: [i16; 0x144] = {
    let mut t = [-1i16; 0x144];
    let mut b = 0;
    while b < 256 {
        t[BYTE_CHAR[b] as usize] = b as i16;
        b += 1;
    }
    t
};

/// The byte a vocabulary character stands for.
fn char_byte(c: char) -> Option<u8> {
    CHAR_BYTE.get(c as usize).and_then(|&b| u8::try_from(b).ok())
}

/// Strings stored back to back: string i is `blob[starts[i]..starts[i + 1]]`.
struct Strings {
    blob: Vec<u8>,
    starts: Vec<u32>,
}

impl Strings {
    fn with_capacity(n: usize, bytes: usize) -> Strings {
        let mut starts = Vec::with_capacity(n + 1);
        starts.push(0);
        Strings { blob: Vec::with_capacity(bytes), starts }
    }

    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Ends the current string (its bytes already pushed to `blob`).
    fn end(&mut self) {
        self.starts.push(self.blob.len() as u32);
    }

    fn get(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        let (&start, &end) = (self.starts.get(i)?, self.starts.get(i.checked_add(1)?)?);
        self.blob.get(start as usize..end as usize)
    }

    fn at(&self, id: u32) -> &[u8] {
        self.get(id).unwrap_or(&[])
    }
}

/// One merge: the pair (left id, right id) packed in a u64, its rank, and the merged token.
#[derive(Clone, Copy)]
struct Merge {
    pair: u64,
    rank: u32,
    id: u32,
}

/// A byte-level BPE vocabulary with its merges. Built once; encoding and decoding only read it.
pub struct BpeTokenizer {
    /// Tokens as stored in GGUF (byte-to-unicode mapped for normal tokens).
    tokens: Strings,
    /// The raw bytes each token stands for (what `decode` returns).
    decoded: Strings,
    /// Ids sorted by stored string, one per distinct string (the lowest id among duplicates).
    sorted: Vec<u32>,
    /// Merges sorted by pair, one per pair (the lowest rank among duplicates).
    merges: Vec<Merge>,
    /// Token of each byte's mapped character, or [`NO_TOKEN`].
    byte_token: [u32; 256],
    /// Unknown, control and user-defined token ids, ascending: never the result of encoding.
    specials: Vec<u32>,
    pre: PreTokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
}

/// A symbol of a piece being merged: a doubly linked list over the piece's bytes.
#[derive(Clone, Copy)]
struct Sym {
    id: u32,
    prev: u32,
    next: u32,
}

/// Scratch space for encoding, reused across pieces.
#[derive(Default)]
struct Scratch {
    syms: Vec<Sym>,
    heap: BinaryHeap<Reverse<(u32, u32)>>,
    pieces: Vec<(usize, usize)>,
    mapped: Vec<u8>,
}

impl BpeTokenizer {
    /// A vocabulary from GGUF's parts: `tokens` as stored (byte-to-unicode mapped, 'Ġ' for a
    /// space), `merges` as "left right" strings in rank order, `token_types` one GGUF type per
    /// token or empty (all normal). Merges whose parts or result are not tokens are skipped
    /// (they could only build strings with no id).
    pub fn new<M: AsRef<[u8]>>(
        tokens: Vec<Vec<u8>>,
        merges: impl IntoIterator<Item = M>,
        token_types: &[i32],
        pre: PreTokenizer,
        bos: Option<u32>,
        eos: Option<u32>,
        add_bos: bool,
    ) -> Result<BpeTokenizer, BpeError> {
        let n = tokens.len();
        if n == 0 || n > MAX_VOCAB {
            return Err(BpeError::BadVocab { vocab_size: n });
        }
        if !token_types.is_empty() && token_types.len() != n {
            return Err(BpeError::TokenTypeCountMismatch { tokens: n, types: token_types.len() });
        }
        for (name, id) in [("BOS", bos), ("EOS", eos)] {
            if let Some(id) = id.filter(|&id| id as usize >= n) {
                return Err(BpeError::BadSpecial { name, id, vocab_size: n });
            }
        }
        let total: usize = tokens.iter().map(Vec::len).sum();
        // Decoded tokens are never longer than stored ones, so both blobs fit u32 offsets.
        if total > u32::MAX as usize {
            return Err(BpeError::TooLarge { bytes: total });
        }
        let special = |i: usize| matches!(token_types.get(i), Some(&(TOKEN_TYPE_UNKNOWN | TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED)));
        let mut stored = Strings::with_capacity(n, total);
        let mut decoded = Strings::with_capacity(n, total);
        for (i, t) in tokens.iter().enumerate() {
            if t.is_empty() || t.len() > MAX_TOKEN_LEN {
                return Err(BpeError::BadToken { token: i, len: t.len() });
            }
            stored.blob.extend_from_slice(t);
            stored.end();
            if special(i) {
                decoded.blob.extend_from_slice(t);
            } else {
                push_unmapped(&mut decoded.blob, t);
            }
            decoded.end();
        }
        drop(tokens);

        // A stable sort keeps equal strings in id order, so dedup keeps the lowest id.
        let mut sorted: Vec<u32> = (0..n as u32).collect();
        sorted.sort_by(|&a, &b| stored.at(a).cmp(stored.at(b)));
        sorted.dedup_by(|later, earlier| stored.at(*later) == stored.at(*earlier));

        let mut tok = BpeTokenizer {
            tokens: stored,
            decoded,
            sorted,
            merges: Vec::new(),
            byte_token: [NO_TOKEN; 256],
            specials: Vec::new(),
            pre,
            bos,
            eos,
            add_bos,
        };
        tok.specials = (0..n as u32).filter(|&i| special(i as usize)).collect();
        for (b, &c) in BYTE_CHAR.iter().enumerate() {
            let mut buf = [0u8; 4];
            let c = char::from_u32(c).unwrap_or('\0');
            tok.byte_token[b] = tok.normal_id(c.encode_utf8(&mut buf).as_bytes()).unwrap_or(NO_TOKEN);
        }

        let mut list = Vec::new();
        let mut joined = Vec::new();
        for (index, m) in merges.into_iter().enumerate() {
            let m = m.as_ref();
            let rank = u32::try_from(index).map_err(|_| BpeError::TooManyMerges)?;
            // As llama.cpp: the first space after the first byte separates the parts.
            let sep = m.iter().skip(1).position(|&b| b == b' ').map(|p| p + 1).ok_or(BpeError::BadMerge { index })?;
            let (a, b) = (&m[..sep], &m[sep + 1..]);
            joined.clear();
            joined.extend_from_slice(a);
            joined.extend_from_slice(b);
            if let (Some(a), Some(b), Some(id)) = (tok.normal_id(a), tok.normal_id(b), tok.normal_id(&joined)) {
                list.push(Merge { pair: pair_key(a, b), rank, id });
            }
        }
        // Stable: among duplicate pairs the lowest rank comes first and is kept.
        list.sort_by_key(|m| m.pair);
        list.dedup_by_key(|m| m.pair);
        tok.merges = list;

        Ok(tok)
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether the model expects BOS before a prompt (GGUF's `tokenizer.ggml.add_bos_token`).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// The id of the stored string `piece` (byte-to-unicode mapped for normal tokens; the
    /// lowest id if it occurs more than once).
    pub fn token_id(&self, piece: &[u8]) -> Option<u32> {
        let i = self.sorted.binary_search_by(|&id| self.tokens.at(id).cmp(piece)).ok()?;
        Some(self.sorted[i])
    }

    /// As [`token_id`](Self::token_id), but None for a special token: what encoding may emit.
    fn normal_id(&self, piece: &[u8]) -> Option<u32> {
        self.token_id(piece).filter(|id| self.specials.binary_search(id).is_err())
    }

    /// The raw bytes of `token`: byte-to-unicode mapping undone for normal tokens, the stored
    /// text for control, user-defined and unknown tokens. Empty for ids outside the
    /// vocabulary. Never allocates.
    pub fn decode(&self, token: u32) -> &[u8] {
        self.decoded.get(token).unwrap_or(&[])
    }

    /// Appends the tokens of a prompt: BOS first when `at_start` and the model adds one.
    pub fn encode_prompt(&self, text: &[u8], at_start: bool, out: &mut Vec<u32>) {
        if at_start
            && self.add_bos
            && let Some(b) = self.bos
        {
            out.push(b);
        }
        self.encode(text, out);
    }

    /// Appends the tokens of `text` (no BOS; see [`encode_prompt`](Self::encode_prompt)): the
    /// pre-tokenizer split, then BPE. Special tokens spelled out in the text are text here.
    /// Any bytes are accepted.
    pub fn encode(&self, text: &[u8], out: &mut Vec<u32>) {
        let mut scratch = Scratch::default();
        self.encode_ordinary(text, &mut scratch, out);
    }

    /// Pre-tokenizer split then BPE, with no special-token matching.
    fn encode_ordinary(&self, text: &[u8], scratch: &mut Scratch, out: &mut Vec<u32>) {
        let mut pieces = core::mem::take(&mut scratch.pieces);
        pieces.clear();
        self.pre.split(text, &mut pieces);
        for &(s, e) in &pieces {
            self.bpe(&text[s..e], scratch, out);
        }
        scratch.pieces = pieces;
    }

    /// The merge for the pair (a, b): (rank, merged id).
    fn merge_of(&self, a: u32, b: u32) -> Option<(u32, u32)> {
        if a == NO_TOKEN || b == NO_TOKEN {
            return None;
        }
        let key = pair_key(a, b);
        let i = self.merges.binary_search_by_key(&key, |m| m.pair).ok()?;
        let m = self.merges[i];
        Some((m.rank, m.id))
    }

    /// BPE of one piece: byte symbols, then the lowest-rank pair (leftmost on ties) merged
    /// until no pair has a merge.
    fn bpe(&self, piece: &[u8], scratch: &mut Scratch, out: &mut Vec<u32>) {
        if let [b] = piece {
            out.extend((self.byte_token[*b as usize] != NO_TOKEN).then_some(self.byte_token[*b as usize]));
            return;
        }
        // Llama 3 (llama.cpp's `ignore_merges`, HF's tokenizer.json): a piece that is a token
        // as a whole is that token, whatever the merges would give.
        if self.pre == PreTokenizer::Llama3 {
            let mapped = &mut scratch.mapped;
            mapped.clear();
            for &b in piece {
                let mut buf = [0u8; 4];
                let c = char::from_u32(BYTE_CHAR[b as usize]).unwrap_or('\0');
                mapped.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            if let Some(id) = self.normal_id(mapped) {
                out.push(id);
                return;
            }
        }
        let syms = &mut scratch.syms;
        let heap = &mut scratch.heap;
        syms.clear();
        heap.clear();
        let n = piece.len() as u32;
        syms.extend(piece.iter().enumerate().map(|(i, &b)| Sym {
            id: self.byte_token[b as usize],
            prev: if i == 0 { NONE } else { i as u32 - 1 },
            next: if i as u32 + 1 == n { NONE } else { i as u32 + 1 },
        }));
        for i in 0..n.saturating_sub(1) {
            if let Some((rank, _)) = self.merge_of(syms[i as usize].id, syms[i as usize + 1].id) {
                heap.push(Reverse((rank, i)));
            }
        }
        while let Some(Reverse((rank, left))) = heap.pop() {
            let l = syms[left as usize];
            // Stale entries: the left symbol was merged away (id NO_TOKEN and unlinked), or
            // either side changed since the entry was pushed (the pair's rank differs then,
            // since each rank belongs to one pair).
            if l.next == NONE || l.id == NO_TOKEN {
                continue;
            }
            let right = l.next;
            let r = syms[right as usize];
            let Some((now, id)) = self.merge_of(l.id, r.id) else { continue };
            if now != rank {
                continue;
            }
            syms[left as usize].id = id;
            syms[left as usize].next = r.next;
            if r.next != NONE {
                syms[r.next as usize].prev = left;
            }
            syms[right as usize] = Sym { id: NO_TOKEN, prev: NONE, next: NONE };
            if l.prev != NONE
                && let Some((rank, _)) = self.merge_of(syms[l.prev as usize].id, id)
            {
                heap.push(Reverse((rank, l.prev)));
            }
            if r.next != NONE
                && let Some((rank, _)) = self.merge_of(id, syms[r.next as usize].id)
            {
                heap.push(Reverse((rank, left)));
            }
        }
        let mut i = 0;
        while i != NONE {
            let s = syms[i as usize];
            if s.id != NO_TOKEN {
                out.push(s.id);
            }
            i = s.next;
        }
    }
}

fn pair_key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

/// Appends the raw bytes a normal token stands for: each character mapped back through
/// byte-to-unicode; characters outside that mapping (not produced by GPT-2's tokenizers) and
/// invalid UTF-8 are kept as they are.
fn push_unmapped(out: &mut Vec<u8>, token: &[u8]) {
    for chunk in token.utf8_chunks() {
        for c in chunk.valid().chars() {
            match char_byte(c) {
                Some(b) => out.push(b),
                None => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        out.extend_from_slice(chunk.invalid());
    }
}
