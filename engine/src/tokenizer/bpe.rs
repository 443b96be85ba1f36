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

    pub fn pre_tokenizer(&self) -> PreTokenizer {
        self.pre
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

    /// The stored string of `token` (as in the GGUF vocabulary).
    pub fn token_text(&self, token: u32) -> Option<&[u8]> {
        self.tokens.get(token)
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

// BEGIN GENERATED UNICODE TABLES
// GENERATED by scripts/gen-bpe-unicode-tables.py: do not edit by hand.
// Unicode 16.0.0 general categories from unicodedata2:
// LETTERS = L (Lu Ll Lt Lm Lo), NUMBERS = N (Nd Nl No); inclusive codepoint ranges, sorted.
static LETTERS: [(u32, u32); 677] = [
    (0x41, 0x5A),
    (0x61, 0x7A),
    (0xAA, 0xAA),
    (0xB5, 0xB5),
    (0xBA, 0xBA),
    (0xC0, 0xD6),
    (0xD8, 0xF6),
    (0xF8, 0x2C1),
    (0x2C6, 0x2D1),
    (0x2E0, 0x2E4),
    (0x2EC, 0x2EC),
    (0x2EE, 0x2EE),
    (0x370, 0x374),
    (0x376, 0x377),
    (0x37A, 0x37D),
    (0x37F, 0x37F),
    (0x386, 0x386),
    (0x388, 0x38A),
    (0x38C, 0x38C),
    (0x38E, 0x3A1),
    (0x3A3, 0x3F5),
    (0x3F7, 0x481),
    (0x48A, 0x52F),
    (0x531, 0x556),
    (0x559, 0x559),
    (0x560, 0x588),
    (0x5D0, 0x5EA),
    (0x5EF, 0x5F2),
    (0x620, 0x64A),
    (0x66E, 0x66F),
    (0x671, 0x6D3),
    (0x6D5, 0x6D5),
    (0x6E5, 0x6E6),
    (0x6EE, 0x6EF),
    (0x6FA, 0x6FC),
    (0x6FF, 0x6FF),
    (0x710, 0x710),
    (0x712, 0x72F),
    (0x74D, 0x7A5),
    (0x7B1, 0x7B1),
    (0x7CA, 0x7EA),
    (0x7F4, 0x7F5),
    (0x7FA, 0x7FA),
    (0x800, 0x815),
    (0x81A, 0x81A),
    (0x824, 0x824),
    (0x828, 0x828),
    (0x840, 0x858),
    (0x860, 0x86A),
    (0x870, 0x887),
    (0x889, 0x88E),
    (0x8A0, 0x8C9),
    (0x904, 0x939),
    (0x93D, 0x93D),
    (0x950, 0x950),
    (0x958, 0x961),
    (0x971, 0x980),
    (0x985, 0x98C),
    (0x98F, 0x990),
    (0x993, 0x9A8),
    (0x9AA, 0x9B0),
    (0x9B2, 0x9B2),
    (0x9B6, 0x9B9),
    (0x9BD, 0x9BD),
    (0x9CE, 0x9CE),
    (0x9DC, 0x9DD),
    (0x9DF, 0x9E1),
    (0x9F0, 0x9F1),
    (0x9FC, 0x9FC),
    (0xA05, 0xA0A),
    (0xA0F, 0xA10),
    (0xA13, 0xA28),
    (0xA2A, 0xA30),
    (0xA32, 0xA33),
    (0xA35, 0xA36),
    (0xA38, 0xA39),
    (0xA59, 0xA5C),
    (0xA5E, 0xA5E),
    (0xA72, 0xA74),
    (0xA85, 0xA8D),
    (0xA8F, 0xA91),
    (0xA93, 0xAA8),
    (0xAAA, 0xAB0),
    (0xAB2, 0xAB3),
    (0xAB5, 0xAB9),
    (0xABD, 0xABD),
    (0xAD0, 0xAD0),
    (0xAE0, 0xAE1),
    (0xAF9, 0xAF9),
    (0xB05, 0xB0C),
    (0xB0F, 0xB10),
    (0xB13, 0xB28),
    (0xB2A, 0xB30),
    (0xB32, 0xB33),
    (0xB35, 0xB39),
    (0xB3D, 0xB3D),
    (0xB5C, 0xB5D),
    (0xB5F, 0xB61),
    (0xB71, 0xB71),
    (0xB83, 0xB83),
    (0xB85, 0xB8A),
    (0xB8E, 0xB90),
    (0xB92, 0xB95),
    (0xB99, 0xB9A),
    (0xB9C, 0xB9C),
    (0xB9E, 0xB9F),
    (0xBA3, 0xBA4),
    (0xBA8, 0xBAA),
    (0xBAE, 0xBB9),
    (0xBD0, 0xBD0),
    (0xC05, 0xC0C),
    (0xC0E, 0xC10),
    (0xC12, 0xC28),
    (0xC2A, 0xC39),
    (0xC3D, 0xC3D),
    (0xC58, 0xC5A),
    (0xC5D, 0xC5D),
    (0xC60, 0xC61),
    (0xC80, 0xC80),
    (0xC85, 0xC8C),
    (0xC8E, 0xC90),
    (0xC92, 0xCA8),
    (0xCAA, 0xCB3),
    (0xCB5, 0xCB9),
    (0xCBD, 0xCBD),
    (0xCDD, 0xCDE),
    (0xCE0, 0xCE1),
    (0xCF1, 0xCF2),
    (0xD04, 0xD0C),
    (0xD0E, 0xD10),
    (0xD12, 0xD3A),
    (0xD3D, 0xD3D),
    (0xD4E, 0xD4E),
    (0xD54, 0xD56),
    (0xD5F, 0xD61),
    (0xD7A, 0xD7F),
    (0xD85, 0xD96),
    (0xD9A, 0xDB1),
    (0xDB3, 0xDBB),
    (0xDBD, 0xDBD),
    (0xDC0, 0xDC6),
    (0xE01, 0xE30),
    (0xE32, 0xE33),
    (0xE40, 0xE46),
    (0xE81, 0xE82),
    (0xE84, 0xE84),
    (0xE86, 0xE8A),
    (0xE8C, 0xEA3),
    (0xEA5, 0xEA5),
    (0xEA7, 0xEB0),
    (0xEB2, 0xEB3),
    (0xEBD, 0xEBD),
    (0xEC0, 0xEC4),
    (0xEC6, 0xEC6),
    (0xEDC, 0xEDF),
    (0xF00, 0xF00),
    (0xF40, 0xF47),
    (0xF49, 0xF6C),
    (0xF88, 0xF8C),
    (0x1000, 0x102A),
    (0x103F, 0x103F),
    (0x1050, 0x1055),
    (0x105A, 0x105D),
    (0x1061, 0x1061),
    (0x1065, 0x1066),
    (0x106E, 0x1070),
    (0x1075, 0x1081),
    (0x108E, 0x108E),
    (0x10A0, 0x10C5),
    (0x10C7, 0x10C7),
    (0x10CD, 0x10CD),
    (0x10D0, 0x10FA),
    (0x10FC, 0x1248),
    (0x124A, 0x124D),
    (0x1250, 0x1256),
    (0x1258, 0x1258),
    (0x125A, 0x125D),
    (0x1260, 0x1288),
    (0x128A, 0x128D),
    (0x1290, 0x12B0),
    (0x12B2, 0x12B5),
    (0x12B8, 0x12BE),
    (0x12C0, 0x12C0),
    (0x12C2, 0x12C5),
    (0x12C8, 0x12D6),
    (0x12D8, 0x1310),
    (0x1312, 0x1315),
    (0x1318, 0x135A),
    (0x1380, 0x138F),
    (0x13A0, 0x13F5),
    (0x13F8, 0x13FD),
    (0x1401, 0x166C),
    (0x166F, 0x167F),
    (0x1681, 0x169A),
    (0x16A0, 0x16EA),
    (0x16F1, 0x16F8),
    (0x1700, 0x1711),
    (0x171F, 0x1731),
    (0x1740, 0x1751),
    (0x1760, 0x176C),
    (0x176E, 0x1770),
    (0x1780, 0x17B3),
    (0x17D7, 0x17D7),
    (0x17DC, 0x17DC),
    (0x1820, 0x1878),
    (0x1880, 0x1884),
    (0x1887, 0x18A8),
    (0x18AA, 0x18AA),
    (0x18B0, 0x18F5),
    (0x1900, 0x191E),
    (0x1950, 0x196D),
    (0x1970, 0x1974),
    (0x1980, 0x19AB),
    (0x19B0, 0x19C9),
    (0x1A00, 0x1A16),
    (0x1A20, 0x1A54),
    (0x1AA7, 0x1AA7),
    (0x1B05, 0x1B33),
    (0x1B45, 0x1B4C),
    (0x1B83, 0x1BA0),
    (0x1BAE, 0x1BAF),
    (0x1BBA, 0x1BE5),
    (0x1C00, 0x1C23),
    (0x1C4D, 0x1C4F),
    (0x1C5A, 0x1C7D),
    (0x1C80, 0x1C8A),
    (0x1C90, 0x1CBA),
    (0x1CBD, 0x1CBF),
    (0x1CE9, 0x1CEC),
    (0x1CEE, 0x1CF3),
    (0x1CF5, 0x1CF6),
    (0x1CFA, 0x1CFA),
    (0x1D00, 0x1DBF),
    (0x1E00, 0x1F15),
    (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45),
    (0x1F48, 0x1F4D),
    (0x1F50, 0x1F57),
    (0x1F59, 0x1F59),
    (0x1F5B, 0x1F5B),
    (0x1F5D, 0x1F5D),
    (0x1F5F, 0x1F7D),
    (0x1F80, 0x1FB4),
    (0x1FB6, 0x1FBC),
    (0x1FBE, 0x1FBE),
    (0x1FC2, 0x1FC4),
    (0x1FC6, 0x1FCC),
    (0x1FD0, 0x1FD3),
    (0x1FD6, 0x1FDB),
    (0x1FE0, 0x1FEC),
    (0x1FF2, 0x1FF4),
    (0x1FF6, 0x1FFC),
    (0x2071, 0x2071),
    (0x207F, 0x207F),
    (0x2090, 0x209C),
    (0x2102, 0x2102),
    (0x2107, 0x2107),
    (0x210A, 0x2113),
    (0x2115, 0x2115),
    (0x2119, 0x211D),
    (0x2124, 0x2124),
    (0x2126, 0x2126),
    (0x2128, 0x2128),
    (0x212A, 0x212D),
    (0x212F, 0x2139),
    (0x213C, 0x213F),
    (0x2145, 0x2149),
    (0x214E, 0x214E),
    (0x2183, 0x2184),
    (0x2C00, 0x2CE4),
    (0x2CEB, 0x2CEE),
    (0x2CF2, 0x2CF3),
    (0x2D00, 0x2D25),
    (0x2D27, 0x2D27),
    (0x2D2D, 0x2D2D),
    (0x2D30, 0x2D67),
    (0x2D6F, 0x2D6F),
    (0x2D80, 0x2D96),
    (0x2DA0, 0x2DA6),
    (0x2DA8, 0x2DAE),
    (0x2DB0, 0x2DB6),
    (0x2DB8, 0x2DBE),
    (0x2DC0, 0x2DC6),
    (0x2DC8, 0x2DCE),
    (0x2DD0, 0x2DD6),
    (0x2DD8, 0x2DDE),
    (0x2E2F, 0x2E2F),
    (0x3005, 0x3006),
    (0x3031, 0x3035),
    (0x303B, 0x303C),
    (0x3041, 0x3096),
    (0x309D, 0x309F),
    (0x30A1, 0x30FA),
    (0x30FC, 0x30FF),
    (0x3105, 0x312F),
    (0x3131, 0x318E),
    (0x31A0, 0x31BF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0xA48C),
    (0xA4D0, 0xA4FD),
    (0xA500, 0xA60C),
    (0xA610, 0xA61F),
    (0xA62A, 0xA62B),
    (0xA640, 0xA66E),
    (0xA67F, 0xA69D),
    (0xA6A0, 0xA6E5),
    (0xA717, 0xA71F),
    (0xA722, 0xA788),
    (0xA78B, 0xA7CD),
    (0xA7D0, 0xA7D1),
    (0xA7D3, 0xA7D3),
    (0xA7D5, 0xA7DC),
    (0xA7F2, 0xA801),
    (0xA803, 0xA805),
    (0xA807, 0xA80A),
    (0xA80C, 0xA822),
    (0xA840, 0xA873),
    (0xA882, 0xA8B3),
    (0xA8F2, 0xA8F7),
    (0xA8FB, 0xA8FB),
    (0xA8FD, 0xA8FE),
    (0xA90A, 0xA925),
    (0xA930, 0xA946),
    (0xA960, 0xA97C),
    (0xA984, 0xA9B2),
    (0xA9CF, 0xA9CF),
    (0xA9E0, 0xA9E4),
    (0xA9E6, 0xA9EF),
    (0xA9FA, 0xA9FE),
    (0xAA00, 0xAA28),
    (0xAA40, 0xAA42),
    (0xAA44, 0xAA4B),
    (0xAA60, 0xAA76),
    (0xAA7A, 0xAA7A),
    (0xAA7E, 0xAAAF),
    (0xAAB1, 0xAAB1),
    (0xAAB5, 0xAAB6),
    (0xAAB9, 0xAABD),
    (0xAAC0, 0xAAC0),
    (0xAAC2, 0xAAC2),
    (0xAADB, 0xAADD),
    (0xAAE0, 0xAAEA),
    (0xAAF2, 0xAAF4),
    (0xAB01, 0xAB06),
    (0xAB09, 0xAB0E),
    (0xAB11, 0xAB16),
    (0xAB20, 0xAB26),
    (0xAB28, 0xAB2E),
    (0xAB30, 0xAB5A),
    (0xAB5C, 0xAB69),
    (0xAB70, 0xABE2),
    (0xAC00, 0xD7A3),
    (0xD7B0, 0xD7C6),
    (0xD7CB, 0xD7FB),
    (0xF900, 0xFA6D),
    (0xFA70, 0xFAD9),
    (0xFB00, 0xFB06),
    (0xFB13, 0xFB17),
    (0xFB1D, 0xFB1D),
    (0xFB1F, 0xFB28),
    (0xFB2A, 0xFB36),
    (0xFB38, 0xFB3C),
    (0xFB3E, 0xFB3E),
    (0xFB40, 0xFB41),
    (0xFB43, 0xFB44),
    (0xFB46, 0xFBB1),
    (0xFBD3, 0xFD3D),
    (0xFD50, 0xFD8F),
    (0xFD92, 0xFDC7),
    (0xFDF0, 0xFDFB),
    (0xFE70, 0xFE74),
    (0xFE76, 0xFEFC),
    (0xFF21, 0xFF3A),
    (0xFF41, 0xFF5A),
    (0xFF66, 0xFFBE),
    (0xFFC2, 0xFFC7),
    (0xFFCA, 0xFFCF),
    (0xFFD2, 0xFFD7),
    (0xFFDA, 0xFFDC),
    (0x10000, 0x1000B),
    (0x1000D, 0x10026),
    (0x10028, 0x1003A),
    (0x1003C, 0x1003D),
    (0x1003F, 0x1004D),
    (0x10050, 0x1005D),
    (0x10080, 0x100FA),
    (0x10280, 0x1029C),
    (0x102A0, 0x102D0),
    (0x10300, 0x1031F),
    (0x1032D, 0x10340),
    (0x10342, 0x10349),
    (0x10350, 0x10375),
    (0x10380, 0x1039D),
    (0x103A0, 0x103C3),
    (0x103C8, 0x103CF),
    (0x10400, 0x1049D),
    (0x104B0, 0x104D3),
    (0x104D8, 0x104FB),
    (0x10500, 0x10527),
    (0x10530, 0x10563),
    (0x10570, 0x1057A),
    (0x1057C, 0x1058A),
    (0x1058C, 0x10592),
    (0x10594, 0x10595),
    (0x10597, 0x105A1),
    (0x105A3, 0x105B1),
    (0x105B3, 0x105B9),
    (0x105BB, 0x105BC),
    (0x105C0, 0x105F3),
    (0x10600, 0x10736),
    (0x10740, 0x10755),
    (0x10760, 0x10767),
    (0x10780, 0x10785),
    (0x10787, 0x107B0),
    (0x107B2, 0x107BA),
    (0x10800, 0x10805),
    (0x10808, 0x10808),
    (0x1080A, 0x10835),
    (0x10837, 0x10838),
    (0x1083C, 0x1083C),
    (0x1083F, 0x10855),
    (0x10860, 0x10876),
    (0x10880, 0x1089E),
    (0x108E0, 0x108F2),
    (0x108F4, 0x108F5),
    (0x10900, 0x10915),
    (0x10920, 0x10939),
    (0x10980, 0x109B7),
    (0x109BE, 0x109BF),
    (0x10A00, 0x10A00),
    (0x10A10, 0x10A13),
    (0x10A15, 0x10A17),
    (0x10A19, 0x10A35),
    (0x10A60, 0x10A7C),
    (0x10A80, 0x10A9C),
    (0x10AC0, 0x10AC7),
    (0x10AC9, 0x10AE4),
    (0x10B00, 0x10B35),
    (0x10B40, 0x10B55),
    (0x10B60, 0x10B72),
    (0x10B80, 0x10B91),
    (0x10C00, 0x10C48),
    (0x10C80, 0x10CB2),
    (0x10CC0, 0x10CF2),
    (0x10D00, 0x10D23),
    (0x10D4A, 0x10D65),
    (0x10D6F, 0x10D85),
    (0x10E80, 0x10EA9),
    (0x10EB0, 0x10EB1),
    (0x10EC2, 0x10EC4),
    (0x10F00, 0x10F1C),
    (0x10F27, 0x10F27),
    (0x10F30, 0x10F45),
    (0x10F70, 0x10F81),
    (0x10FB0, 0x10FC4),
    (0x10FE0, 0x10FF6),
    (0x11003, 0x11037),
    (0x11071, 0x11072),
    (0x11075, 0x11075),
    (0x11083, 0x110AF),
    (0x110D0, 0x110E8),
    (0x11103, 0x11126),
    (0x11144, 0x11144),
    (0x11147, 0x11147),
    (0x11150, 0x11172),
    (0x11176, 0x11176),
    (0x11183, 0x111B2),
    (0x111C1, 0x111C4),
    (0x111DA, 0x111DA),
    (0x111DC, 0x111DC),
    (0x11200, 0x11211),
    (0x11213, 0x1122B),
    (0x1123F, 0x11240),
    (0x11280, 0x11286),
    (0x11288, 0x11288),
    (0x1128A, 0x1128D),
    (0x1128F, 0x1129D),
    (0x1129F, 0x112A8),
    (0x112B0, 0x112DE),
    (0x11305, 0x1130C),
    (0x1130F, 0x11310),
    (0x11313, 0x11328),
    (0x1132A, 0x11330),
    (0x11332, 0x11333),
    (0x11335, 0x11339),
    (0x1133D, 0x1133D),
    (0x11350, 0x11350),
    (0x1135D, 0x11361),
    (0x11380, 0x11389),
    (0x1138B, 0x1138B),
    (0x1138E, 0x1138E),
    (0x11390, 0x113B5),
    (0x113B7, 0x113B7),
    (0x113D1, 0x113D1),
    (0x113D3, 0x113D3),
    (0x11400, 0x11434),
    (0x11447, 0x1144A),
    (0x1145F, 0x11461),
    (0x11480, 0x114AF),
    (0x114C4, 0x114C5),
    (0x114C7, 0x114C7),
    (0x11580, 0x115AE),
    (0x115D8, 0x115DB),
    (0x11600, 0x1162F),
    (0x11644, 0x11644),
    (0x11680, 0x116AA),
    (0x116B8, 0x116B8),
    (0x11700, 0x1171A),
    (0x11740, 0x11746),
    (0x11800, 0x1182B),
    (0x118A0, 0x118DF),
    (0x118FF, 0x11906),
    (0x11909, 0x11909),
    (0x1190C, 0x11913),
    (0x11915, 0x11916),
    (0x11918, 0x1192F),
    (0x1193F, 0x1193F),
    (0x11941, 0x11941),
    (0x119A0, 0x119A7),
    (0x119AA, 0x119D0),
    (0x119E1, 0x119E1),
    (0x119E3, 0x119E3),
    (0x11A00, 0x11A00),
    (0x11A0B, 0x11A32),
    (0x11A3A, 0x11A3A),
    (0x11A50, 0x11A50),
    (0x11A5C, 0x11A89),
    (0x11A9D, 0x11A9D),
    (0x11AB0, 0x11AF8),
    (0x11BC0, 0x11BE0),
    (0x11C00, 0x11C08),
    (0x11C0A, 0x11C2E),
    (0x11C40, 0x11C40),
    (0x11C72, 0x11C8F),
    (0x11D00, 0x11D06),
    (0x11D08, 0x11D09),
    (0x11D0B, 0x11D30),
    (0x11D46, 0x11D46),
    (0x11D60, 0x11D65),
    (0x11D67, 0x11D68),
    (0x11D6A, 0x11D89),
    (0x11D98, 0x11D98),
    (0x11EE0, 0x11EF2),
    (0x11F02, 0x11F02),
    (0x11F04, 0x11F10),
    (0x11F12, 0x11F33),
    (0x11FB0, 0x11FB0),
    (0x12000, 0x12399),
    (0x12480, 0x12543),
    (0x12F90, 0x12FF0),
    (0x13000, 0x1342F),
    (0x13441, 0x13446),
    (0x13460, 0x143FA),
    (0x14400, 0x14646),
    (0x16100, 0x1611D),
    (0x16800, 0x16A38),
    (0x16A40, 0x16A5E),
    (0x16A70, 0x16ABE),
    (0x16AD0, 0x16AED),
    (0x16B00, 0x16B2F),
    (0x16B40, 0x16B43),
    (0x16B63, 0x16B77),
    (0x16B7D, 0x16B8F),
    (0x16D40, 0x16D6C),
    (0x16E40, 0x16E7F),
    (0x16F00, 0x16F4A),
    (0x16F50, 0x16F50),
    (0x16F93, 0x16F9F),
    (0x16FE0, 0x16FE1),
    (0x16FE3, 0x16FE3),
    (0x17000, 0x187F7),
    (0x18800, 0x18CD5),
    (0x18CFF, 0x18D08),
    (0x1AFF0, 0x1AFF3),
    (0x1AFF5, 0x1AFFB),
    (0x1AFFD, 0x1AFFE),
    (0x1B000, 0x1B122),
    (0x1B132, 0x1B132),
    (0x1B150, 0x1B152),
    (0x1B155, 0x1B155),
    (0x1B164, 0x1B167),
    (0x1B170, 0x1B2FB),
    (0x1BC00, 0x1BC6A),
    (0x1BC70, 0x1BC7C),
    (0x1BC80, 0x1BC88),
    (0x1BC90, 0x1BC99),
    (0x1D400, 0x1D454),
    (0x1D456, 0x1D49C),
    (0x1D49E, 0x1D49F),
    (0x1D4A2, 0x1D4A2),
    (0x1D4A5, 0x1D4A6),
    (0x1D4A9, 0x1D4AC),
    (0x1D4AE, 0x1D4B9),
    (0x1D4BB, 0x1D4BB),
    (0x1D4BD, 0x1D4C3),
    (0x1D4C5, 0x1D505),
    (0x1D507, 0x1D50A),
    (0x1D50D, 0x1D514),
    (0x1D516, 0x1D51C),
    (0x1D51E, 0x1D539),
    (0x1D53B, 0x1D53E),
    (0x1D540, 0x1D544),
    (0x1D546, 0x1D546),
    (0x1D54A, 0x1D550),
    (0x1D552, 0x1D6A5),
    (0x1D6A8, 0x1D6C0),
    (0x1D6C2, 0x1D6DA),
    (0x1D6DC, 0x1D6FA),
    (0x1D6FC, 0x1D714),
    (0x1D716, 0x1D734),
    (0x1D736, 0x1D74E),
    (0x1D750, 0x1D76E),
    (0x1D770, 0x1D788),
    (0x1D78A, 0x1D7A8),
    (0x1D7AA, 0x1D7C2),
    (0x1D7C4, 0x1D7CB),
    (0x1DF00, 0x1DF1E),
    (0x1DF25, 0x1DF2A),
    (0x1E030, 0x1E06D),
    (0x1E100, 0x1E12C),
    (0x1E137, 0x1E13D),
    (0x1E14E, 0x1E14E),
    (0x1E290, 0x1E2AD),
    (0x1E2C0, 0x1E2EB),
    (0x1E4D0, 0x1E4EB),
    (0x1E5D0, 0x1E5ED),
    (0x1E5F0, 0x1E5F0),
    (0x1E7E0, 0x1E7E6),
    (0x1E7E8, 0x1E7EB),
    (0x1E7ED, 0x1E7EE),
    (0x1E7F0, 0x1E7FE),
    (0x1E800, 0x1E8C4),
    (0x1E900, 0x1E943),
    (0x1E94B, 0x1E94B),
    (0x1EE00, 0x1EE03),
    (0x1EE05, 0x1EE1F),
    (0x1EE21, 0x1EE22),
    (0x1EE24, 0x1EE24),
    (0x1EE27, 0x1EE27),
    (0x1EE29, 0x1EE32),
    (0x1EE34, 0x1EE37),
    (0x1EE39, 0x1EE39),
    (0x1EE3B, 0x1EE3B),
    (0x1EE42, 0x1EE42),
    (0x1EE47, 0x1EE47),
    (0x1EE49, 0x1EE49),
    (0x1EE4B, 0x1EE4B),
    (0x1EE4D, 0x1EE4F),
    (0x1EE51, 0x1EE52),
    (0x1EE54, 0x1EE54),
    (0x1EE57, 0x1EE57),
    (0x1EE59, 0x1EE59),
    (0x1EE5B, 0x1EE5B),
    (0x1EE5D, 0x1EE5D),
    (0x1EE5F, 0x1EE5F),
    (0x1EE61, 0x1EE62),
    (0x1EE64, 0x1EE64),
    (0x1EE67, 0x1EE6A),
    (0x1EE6C, 0x1EE72),
    (0x1EE74, 0x1EE77),
    (0x1EE79, 0x1EE7C),
    (0x1EE7E, 0x1EE7E),
    (0x1EE80, 0x1EE89),
    (0x1EE8B, 0x1EE9B),
    (0x1EEA1, 0x1EEA3),
    (0x1EEA5, 0x1EEA9),
    (0x1EEAB, 0x1EEBB),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B739),
    (0x2B740, 0x2B81D),
    (0x2B820, 0x2CEA1),
    (0x2CEB0, 0x2EBE0),
    (0x2EBF0, 0x2EE5D),
    (0x2F800, 0x2FA1D),
    (0x30000, 0x3134A),
    (0x31350, 0x323AF),
];
static NUMBERS: [(u32, u32); 144] = [
    (0x30, 0x39),
    (0xB2, 0xB3),
    (0xB9, 0xB9),
    (0xBC, 0xBE),
    (0x660, 0x669),
    (0x6F0, 0x6F9),
    (0x7C0, 0x7C9),
    (0x966, 0x96F),
    (0x9E6, 0x9EF),
    (0x9F4, 0x9F9),
    (0xA66, 0xA6F),
    (0xAE6, 0xAEF),
    (0xB66, 0xB6F),
    (0xB72, 0xB77),
    (0xBE6, 0xBF2),
    (0xC66, 0xC6F),
    (0xC78, 0xC7E),
    (0xCE6, 0xCEF),
    (0xD58, 0xD5E),
    (0xD66, 0xD78),
    (0xDE6, 0xDEF),
    (0xE50, 0xE59),
    (0xED0, 0xED9),
    (0xF20, 0xF33),
    (0x1040, 0x1049),
    (0x1090, 0x1099),
    (0x1369, 0x137C),
    (0x16EE, 0x16F0),
    (0x17E0, 0x17E9),
    (0x17F0, 0x17F9),
    (0x1810, 0x1819),
    (0x1946, 0x194F),
    (0x19D0, 0x19DA),
    (0x1A80, 0x1A89),
    (0x1A90, 0x1A99),
    (0x1B50, 0x1B59),
    (0x1BB0, 0x1BB9),
    (0x1C40, 0x1C49),
    (0x1C50, 0x1C59),
    (0x2070, 0x2070),
    (0x2074, 0x2079),
    (0x2080, 0x2089),
    (0x2150, 0x2182),
    (0x2185, 0x2189),
    (0x2460, 0x249B),
    (0x24EA, 0x24FF),
    (0x2776, 0x2793),
    (0x2CFD, 0x2CFD),
    (0x3007, 0x3007),
    (0x3021, 0x3029),
    (0x3038, 0x303A),
    (0x3192, 0x3195),
    (0x3220, 0x3229),
    (0x3248, 0x324F),
    (0x3251, 0x325F),
    (0x3280, 0x3289),
    (0x32B1, 0x32BF),
    (0xA620, 0xA629),
    (0xA6E6, 0xA6EF),
    (0xA830, 0xA835),
    (0xA8D0, 0xA8D9),
    (0xA900, 0xA909),
    (0xA9D0, 0xA9D9),
    (0xA9F0, 0xA9F9),
    (0xAA50, 0xAA59),
    (0xABF0, 0xABF9),
    (0xFF10, 0xFF19),
    (0x10107, 0x10133),
    (0x10140, 0x10178),
    (0x1018A, 0x1018B),
    (0x102E1, 0x102FB),
    (0x10320, 0x10323),
    (0x10341, 0x10341),
    (0x1034A, 0x1034A),
    (0x103D1, 0x103D5),
    (0x104A0, 0x104A9),
    (0x10858, 0x1085F),
    (0x10879, 0x1087F),
    (0x108A7, 0x108AF),
    (0x108FB, 0x108FF),
    (0x10916, 0x1091B),
    (0x109BC, 0x109BD),
    (0x109C0, 0x109CF),
    (0x109D2, 0x109FF),
    (0x10A40, 0x10A48),
    (0x10A7D, 0x10A7E),
    (0x10A9D, 0x10A9F),
    (0x10AEB, 0x10AEF),
    (0x10B58, 0x10B5F),
    (0x10B78, 0x10B7F),
    (0x10BA9, 0x10BAF),
    (0x10CFA, 0x10CFF),
    (0x10D30, 0x10D39),
    (0x10D40, 0x10D49),
    (0x10E60, 0x10E7E),
    (0x10F1D, 0x10F26),
    (0x10F51, 0x10F54),
    (0x10FC5, 0x10FCB),
    (0x11052, 0x1106F),
    (0x110F0, 0x110F9),
    (0x11136, 0x1113F),
    (0x111D0, 0x111D9),
    (0x111E1, 0x111F4),
    (0x112F0, 0x112F9),
    (0x11450, 0x11459),
    (0x114D0, 0x114D9),
    (0x11650, 0x11659),
    (0x116C0, 0x116C9),
    (0x116D0, 0x116E3),
    (0x11730, 0x1173B),
    (0x118E0, 0x118F2),
    (0x11950, 0x11959),
    (0x11BF0, 0x11BF9),
    (0x11C50, 0x11C6C),
    (0x11D50, 0x11D59),
    (0x11DA0, 0x11DA9),
    (0x11F50, 0x11F59),
    (0x11FC0, 0x11FD4),
    (0x12400, 0x1246E),
    (0x16130, 0x16139),
    (0x16A60, 0x16A69),
    (0x16AC0, 0x16AC9),
    (0x16B50, 0x16B59),
    (0x16B5B, 0x16B61),
    (0x16D70, 0x16D79),
    (0x16E80, 0x16E96),
    (0x1CCF0, 0x1CCF9),
    (0x1D2C0, 0x1D2D3),
    (0x1D2E0, 0x1D2F3),
    (0x1D360, 0x1D378),
    (0x1D7CE, 0x1D7FF),
    (0x1E140, 0x1E149),
    (0x1E2F0, 0x1E2F9),
    (0x1E4F0, 0x1E4F9),
    (0x1E5F1, 0x1E5FA),
    (0x1E8C7, 0x1E8CF),
    (0x1E950, 0x1E959),
    (0x1EC71, 0x1ECAB),
    (0x1ECAD, 0x1ECAF),
    (0x1ECB1, 0x1ECB4),
    (0x1ED01, 0x1ED2D),
    (0x1ED2F, 0x1ED3D),
    (0x1F100, 0x1F10C),
    (0x1FBF0, 0x1FBF9),
];
// END GENERATED UNICODE TABLES
