//! SentencePiece-style BPE by piece scores, as llama2.c does it (Llama 2 vocabularies).
//!
//! Format and algorithm from Andrej Karpathy's llama2.c (MIT); this is an independent Rust
//! implementation of its `tokenizer.bin` layout, `encode()` and `decode()`.
//!
//! `tokenizer.bin` (written by llama2.c's `tokenizer.py`), all little-endian:
//!
//! ```text
//! i32 max_token_length                    longest piece, in bytes
//! vocab_size times:
//!     f32 score                           merge priority: higher merges first
//!     i32 len                             piece length in bytes, 0 ..= max_token_length
//!     len bytes                           the piece; SentencePiece's '▁' already replaced by ' '
//! ```
//!
//! The vocabulary size is not in the file: it comes from the model. In llama2.c files
//! BOS = 1 (piece "\n<s>\n"), EOS = 2 ("\n</s>\n"), and byte `b` is the piece "<0xXX>" at
//! id b + 3. [`SpmTokenizer::new`] takes the same data from elsewhere (GGUF's `llama`
//! tokenizer), where pieces spell spaces as U+2581 '▁'.
//!
//! Encoding (run.c's `encode()`): a dummy prefix piece " " when the text is non-empty, then one
//! token per UTF-8 codepoint (byte fallback to "<0xXX>" pieces for codepoints with no piece),
//! then repeatedly merge the adjacent pair whose concatenation is a piece with the highest
//! score, the leftmost pair on ties, until no adjacent pair spells a piece.

use alloc::vec::Vec;
use core::fmt;

/// Beginning-of-sequence id in llama2.c vocabularies.
pub const LLAMA2C_BOS: u32 = 1;
/// End-of-sequence id in llama2.c vocabularies.
pub const LLAMA2C_EOS: u32 = 2;
/// Unknown-piece id used when byte fallback finds no "<0xXX>" piece (SentencePiece's `<unk>`).
pub const UNK: u32 = 0;
/// Most tokens accepted: ids are u32 and real vocabularies stay far below (Gemma: 256,000).
pub const MAX_VOCAB: usize = 1 << 24;
/// Longest piece accepted, in bytes. Llama 2's longest is 16; this bound only stops absurd
/// lengths from a damaged file, long before they could cost memory.
pub const MAX_PIECE_LEN: usize = 1 << 16;

/// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space marker, in UTF-8.
const SPACE_MARKER: &[u8] = "\u{2581}".as_bytes();
/// run.c starts its best-merge search at this score with a strict `>`, so a piece scored at or
/// below it is never produced by a merge; kept so results match run.c for any scores.
const NO_MERGE_SCORE: f32 = -1e10;

/// Every byte value once, so `decode` can return a byte piece without allocating.
static ALL_BYTES: [u8; 256] = {
    let mut a = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        a[i] = i as u8;
        i += 1;
    }
    a
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpmError {
    /// The model's vocabulary size is 0 or above [`MAX_VOCAB`].
    BadVocab { vocab_size: usize },
    /// The file is shorter than its 4-byte header.
    TooShort { len: usize },
    /// The header's max_token_length is negative or above [`MAX_PIECE_LEN`].
    BadMaxLength { found: i32 },
    /// The file ends inside token `token` (0-based) of `vocab_size`.
    Truncated { token: usize, vocab_size: usize },
    /// Token `token` has a negative length.
    BadLength { token: usize, len: i32 },
    /// Token `token` is longer than the file's max_token_length (or [`MAX_PIECE_LEN`]).
    LengthOverMax { token: usize, len: usize, max: usize },
    /// `extra` bytes follow the last token.
    TrailingBytes { extra: usize },
    /// Token `token` has a NaN or infinite score.
    BadScore { token: usize },
    /// `new` got a different number of pieces and scores.
    ScoreCountMismatch { pieces: usize, scores: usize },
    /// The BOS or EOS id is not in the vocabulary.
    BadSpecial { name: &'static str, id: u32, vocab_size: usize },
    /// All pieces together are over 4 GiB.
    TooLarge { bytes: usize },
}

impl fmt::Display for SpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpmError::BadVocab { vocab_size } => {
                write!(f, "bad tokenizer vocabulary size {vocab_size} (must be 1 to {MAX_VOCAB}): check the model's vocab_size")
            }
            SpmError::TooShort { len } => {
                write!(f, "tokenizer.bin is {len} bytes, shorter than its 4-byte header: is it a llama2.c tokenizer?")
            }
            SpmError::BadMaxLength { found } => {
                write!(f, "tokenizer.bin has max_token_length {found} (must be 0 to {MAX_PIECE_LEN}): not a llama2.c tokenizer, or damaged")
            }
            SpmError::Truncated { token, vocab_size } => write!(
                f,
                "tokenizer.bin is truncated at token {token} of {vocab_size}: the file is damaged, \
                 or the model has a larger vocabulary than this tokenizer"
            ),
            SpmError::BadLength { token, len } => {
                write!(f, "tokenizer.bin gives token {token} the negative length {len}: the file is damaged")
            }
            SpmError::LengthOverMax { token, len, max } => {
                write!(f, "tokenizer token {token} is {len} bytes, over the maximum of {max}: the file is damaged")
            }
            SpmError::TrailingBytes { extra } => write!(
                f,
                "tokenizer.bin has {extra} bytes after its last token: the model has a smaller \
                 vocabulary than this tokenizer, or the file is damaged"
            ),
            SpmError::BadScore { token } => write!(f, "tokenizer token {token} has a NaN or infinite score: the file is damaged"),
            SpmError::ScoreCountMismatch { pieces, scores } => {
                write!(f, "tokenizer has {pieces} pieces but {scores} scores: they must match one to one")
            }
            SpmError::BadSpecial { name, id, vocab_size } => {
                write!(f, "tokenizer {name} id {id} is outside the vocabulary of {vocab_size} tokens")
            }
            SpmError::TooLarge { bytes } => write!(f, "tokenizer pieces take {bytes} bytes, over the 4 GiB limit"),
        }
    }
}

impl core::error::Error for SpmError {}

/// Pieces stored back to back: piece i is `blob[starts[i]..starts[i + 1]]`.
struct Pieces {
    blob: Vec<u8>,
    starts: Vec<u32>,
}

impl Pieces {
    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    fn get(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        let (&start, &end) = (self.starts.get(i)?, self.starts.get(i.checked_add(1)?)?);
        self.blob.get(start as usize..end as usize)
    }

    /// Piece `id`, for ids known to be in range.
    fn at(&self, id: u32) -> &[u8] {
        self.get(id).unwrap_or(&[])
    }
}

/// A SentencePiece-style BPE vocabulary: pieces, their merge scores, and the lookups encoding
/// needs. Built once; encoding and decoding only read it.
pub struct SpmTokenizer {
    pieces: Pieces,
    scores: Vec<f32>,
    /// Ids sorted by piece bytes, one per distinct piece (the lowest id among duplicates).
    sorted: Vec<u32>,
    /// Id of the piece "<0xXX>" for each byte value, if the vocabulary has it.
    byte_ids: [Option<u32>; 256],
    /// Id of the dummy prefix piece (" " or "▁"), if used and present.
    dummy: Option<u32>,
    /// With `space_marker`, the pieces with '▁' turned into ' ' (what decode prints).
    shown: Option<Pieces>,
    /// Longest piece in bytes: a pair longer than this cannot be a piece.
    max_piece_len: usize,
    bos: Option<u32>,
    eos: Option<u32>,
    space_marker: bool,
    /// What a byte with no piece becomes ([`UNK`] unless set otherwise), or nothing.
    unk: Option<u32>,
}

/// Reads little-endian fields; `None` when the input ends first.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
    }
}

impl SpmTokenizer {
    /// Parses a llama2.c tokenizer.bin for a model with `vocab_size` tokens. Never panics; every
    /// length is checked against the file and max_token_length before use, and allocations are
    /// bounded by the input size.
    pub fn from_llama2c_bytes(bytes: &[u8], vocab_size: usize) -> Result<SpmTokenizer, SpmError> {
        if vocab_size == 0 || vocab_size > MAX_VOCAB {
            return Err(SpmError::BadVocab { vocab_size });
        }
        let mut r = Reader { bytes, at: 0 };
        let found = r.u32().ok_or(SpmError::TooShort { len: bytes.len() })? as i32;
        if found < 0 || found as usize > MAX_PIECE_LEN {
            return Err(SpmError::BadMaxLength { found });
        }
        let max = found as usize;
        // Each token takes at least 8 bytes (score + length), so a wrong vocab_size from the
        // model cannot make us reserve more than the file could describe.
        let cap = vocab_size.min(bytes.len() / 8);
        let mut starts = Vec::with_capacity(cap + 1);
        let mut scores = Vec::with_capacity(cap);
        let mut blob = Vec::with_capacity(bytes.len().saturating_sub(4 + 8 * cap));
        starts.push(0u32);
        for token in 0..vocab_size {
            let truncated = SpmError::Truncated { token, vocab_size };
            let score = f32::from_bits(r.u32().ok_or(truncated.clone())?);
            if !score.is_finite() {
                return Err(SpmError::BadScore { token });
            }
            let len = r.u32().ok_or(truncated.clone())? as i32;
            if len < 0 {
                return Err(SpmError::BadLength { token, len });
            }
            let len = len as usize;
            if len > max {
                return Err(SpmError::LengthOverMax { token, len, max });
            }
            blob.extend_from_slice(r.take(len).ok_or(truncated)?);
            starts.push(u32::try_from(blob.len()).map_err(|_| SpmError::TooLarge { bytes: blob.len() })?);
            scores.push(score);
        }
        if r.at != bytes.len() {
            return Err(SpmError::TrailingBytes { extra: bytes.len() - r.at });
        }
        let special = |id: u32| (id < vocab_size as u32).then_some(id);
        Self::build(Pieces { blob, starts }, scores, special(LLAMA2C_BOS), special(LLAMA2C_EOS), true, false)
    }

    /// A vocabulary from its parts (GGUF's `tokenizer.ggml.model = llama`): piece i has score
    /// `scores[i]`; `add_dummy_prefix` puts a space piece before non-empty text (SentencePiece's
    /// default); `space_marker` means pieces spell spaces as U+2581 '▁' rather than ' '.
    pub fn new(
        pieces: Vec<Vec<u8>>,
        scores: Vec<f32>,
        bos: Option<u32>,
        eos: Option<u32>,
        add_dummy_prefix: bool,
        space_marker: bool,
    ) -> Result<SpmTokenizer, SpmError> {
        if pieces.len() != scores.len() {
            return Err(SpmError::ScoreCountMismatch { pieces: pieces.len(), scores: scores.len() });
        }
        if pieces.is_empty() || pieces.len() > MAX_VOCAB {
            return Err(SpmError::BadVocab { vocab_size: pieces.len() });
        }
        let total: usize = pieces.iter().map(Vec::len).sum();
        if total > u32::MAX as usize {
            return Err(SpmError::TooLarge { bytes: total });
        }
        let mut blob = Vec::with_capacity(total);
        let mut starts = Vec::with_capacity(pieces.len() + 1);
        starts.push(0u32);
        for (token, p) in pieces.iter().enumerate() {
            if p.len() > MAX_PIECE_LEN {
                return Err(SpmError::LengthOverMax { token, len: p.len(), max: MAX_PIECE_LEN });
            }
            blob.extend_from_slice(p);
            starts.push(blob.len() as u32); // total <= u32::MAX, checked above
        }
        Self::build(Pieces { blob, starts }, scores, bos, eos, add_dummy_prefix, space_marker)
    }

    fn build(
        pieces: Pieces,
        scores: Vec<f32>,
        bos: Option<u32>,
        eos: Option<u32>,
        add_dummy_prefix: bool,
        space_marker: bool,
    ) -> Result<SpmTokenizer, SpmError> {
        let n = pieces.len();
        if let Some(token) = scores.iter().position(|s| !s.is_finite()) {
            return Err(SpmError::BadScore { token });
        }
        for (name, id) in [("BOS", bos), ("EOS", eos)] {
            if let Some(id) = id.filter(|&id| id as usize >= n) {
                return Err(SpmError::BadSpecial { name, id, vocab_size: n });
            }
        }
        // A stable sort keeps equal pieces in id order, so dedup keeps the lowest id.
        let mut sorted: Vec<u32> = (0..n as u32).collect();
        sorted.sort_by(|&a, &b| pieces.at(a).cmp(pieces.at(b)));
        sorted.dedup_by(|later, earlier| pieces.at(*later) == pieces.at(*earlier));
        let max_piece_len = (0..n as u32).map(|i| pieces.at(i).len()).max().unwrap_or(0);
        let shown = space_marker.then(|| {
            let mut blob = Vec::with_capacity(pieces.blob.len());
            let mut starts = Vec::with_capacity(n + 1);
            starts.push(0u32);
            for i in 0..n as u32 {
                push_unmarked(&mut blob, pieces.at(i));
                starts.push(blob.len() as u32); // never longer than the marked blob
            }
            Pieces { blob, starts }
        });
        let mut tok = SpmTokenizer {
            pieces,
            scores,
            sorted,
            byte_ids: [None; 256],
            dummy: None,
            shown,
            max_piece_len,
            bos,
            eos,
            space_marker,
            unk: Some(UNK),
        };
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for b in 0..256 {
            let name = [b'<', b'0', b'x', HEX[b >> 4], HEX[b & 15], b'>'];
            tok.byte_ids[b] = tok.id(&name);
        }
        if add_dummy_prefix {
            tok.dummy = tok.id(if space_marker { SPACE_MARKER } else { b" " });
        }
        Ok(tok)
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// The raw piece of `token` as stored (with '▁' in space-marker vocabularies).
    pub fn piece(&self, token: u32) -> Option<&[u8]> {
        self.pieces.get(token)
    }

    pub fn score(&self, token: u32) -> Option<f32> {
        self.scores.get(token as usize).copied()
    }

    /// Leaves the tokens with `excluded[id]` (a GGUF vocabulary's control tokens) out of
    /// encoding: no lookup or merge yields them any more, and [`id`](Self::id) does not
    /// find them. Byte pieces and the dummy prefix were looked up already.
    pub(crate) fn exclude_from_encoding(&mut self, excluded: &[bool]) {
        let pieces = &self.pieces;
        let mut sorted: Vec<u32> = (0..pieces.len() as u32).filter(|&i| !excluded.get(i as usize).copied().unwrap_or(false)).collect();
        sorted.sort_by(|&a, &b| pieces.at(a).cmp(pieces.at(b)));
        sorted.dedup_by(|later, earlier| pieces.at(*later) == pieces.at(*earlier));
        self.sorted = sorted;
    }

    /// What a byte with no piece becomes (default [`UNK`]); None drops such bytes.
    pub(crate) fn set_unknown(&mut self, unk: Option<u32>) {
        self.unk = unk.filter(|&u| (u as usize) < self.pieces.len());
    }

    /// The id of the raw piece `piece` (the lowest id if it occurs more than once).
    pub fn id(&self, piece: &[u8]) -> Option<u32> {
        let i = self.sorted.binary_search_by(|&id| self.pieces.at(id).cmp(piece)).ok()?;
        Some(self.sorted[i])
    }

    /// Appends the ids of `text` to `out`, BOS first when `bos` is true (and the vocabulary has
    /// one). Any bytes are accepted: invalid UTF-8 goes through byte fallback.
    ///
    /// Matches run.c's `encode()` except in three edge cases where run.c misbehaves: NUL bytes
    /// are encoded rather than ending the text, no dummy prefix is added when the vocabulary
    /// lacks its piece (run.c would push id -1), and BOS never takes part in merges.
    pub fn encode(&self, text: &[u8], bos: bool, out: &mut Vec<u32>) {
        if bos && let Some(b) = self.bos {
            out.push(b);
        }
        if text.is_empty() {
            return;
        }
        let marked;
        let text = if self.space_marker && text.contains(&b' ') {
            marked = mark_spaces(text);
            &marked[..]
        } else {
            text
        };
        let mut toks = Vec::with_capacity(text.len() + 1);
        toks.extend(self.dummy);
        let mut at = 0;
        while at < text.len() {
            // One byte and the continuation bytes (10xxxxxx) after it, at most 4 bytes: one
            // codepoint when the text is valid UTF-8, and exactly run.c's grouping when not.
            let mut end = at + 1;
            while end < text.len() && end - at < 4 && text[end] & 0xC0 == 0x80 {
                end += 1;
            }
            let group = &text[at..end];
            match self.id(group) {
                Some(id) => toks.push(id),
                None => toks.extend(group.iter().filter_map(|&b| self.byte_ids[b as usize].or(self.unk))),
            }
            at = end;
        }
        self.merge(&mut toks);
        out.extend_from_slice(&toks);
    }

    /// run.c's merge loop: while some adjacent pair spells a piece, replace the pair whose piece
    /// scores highest (the leftmost on ties) by that piece. Pair results are cached and only the
    /// two pairs next to a merge are looked up again, which gives run.c's result with one lookup
    /// per merge instead of one per pair; the scan and the shift stay O(n) per merge, as in run.c.
    fn merge(&self, toks: &mut Vec<u32>) {
        if toks.len() < 2 {
            return;
        }
        let mut buf = Vec::with_capacity(2 * self.max_piece_len);
        // pairs[i] is the piece toks[i] ++ toks[i + 1] spells, with its score, if any.
        let mut pairs: Vec<Option<(u32, f32)>> = toks.windows(2).map(|w| self.pair(w[0], w[1], &mut buf)).collect();
        loop {
            let mut best: Option<(usize, u32)> = None;
            let mut best_score = NO_MERGE_SCORE;
            for (i, p) in pairs.iter().enumerate() {
                if let Some((id, score)) = *p
                    && score > best_score
                {
                    best = Some((i, id));
                    best_score = score;
                }
            }
            let Some((i, id)) = best else { break };
            toks[i] = id;
            toks.remove(i + 1);
            pairs.remove(i);
            if i < pairs.len() {
                pairs[i] = self.pair(toks[i], toks[i + 1], &mut buf);
            }
            if i > 0 {
                pairs[i - 1] = self.pair(toks[i - 1], toks[i], &mut buf);
            }
        }
    }

    /// The piece spelled by `a` then `b`, with its score; `buf` is scratch space.
    fn pair(&self, a: u32, b: u32, buf: &mut Vec<u8>) -> Option<(u32, f32)> {
        let (a, b) = (self.pieces.at(a), self.pieces.at(b));
        if a.len() + b.len() > self.max_piece_len {
            return None;
        }
        buf.clear();
        buf.extend_from_slice(a);
        buf.extend_from_slice(b);
        let id = self.id(buf)?;
        Some((id, self.scores[id as usize]))
    }

    /// The bytes to print for `token` following `prev` (llama2.c's decode): a "<0xXX>" piece is
    /// that one raw byte; right after BOS a leading space is dropped (SentencePiece's dummy
    /// prefix); in space-marker vocabularies '▁' prints as ' '. Empty for ids outside the
    /// vocabulary. Never allocates.
    pub fn decode(&self, prev: u32, token: u32) -> &[u8] {
        let Some(raw) = self.pieces.get(token) else { return &[] };
        if let Some(b) = byte_piece(raw) {
            return &ALL_BYTES[b as usize..b as usize + 1];
        }
        let text = match &self.shown {
            Some(shown) => shown.at(token),
            None => raw,
        };
        match text {
            [b' ', rest @ ..] if Some(prev) == self.bos => rest,
            _ => text,
        }
    }
}

/// The byte a "<0xXX>" piece stands for (hex digits in either case, as run.c's sscanf accepts).
fn byte_piece(p: &[u8]) -> Option<u8> {
    let [b'<', b'0', b'x', hi, lo, b'>'] = *p else { return None };
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    Some((hex(hi)? << 4) | hex(lo)?)
}

/// `text` with every ' ' replaced by '▁'.
fn mark_spaces(text: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 2 * text.iter().filter(|&&b| b == b' ').count());
    for &b in text {
        if b == b' ' {
            v.extend_from_slice(SPACE_MARKER);
        } else {
            v.push(b);
        }
    }
    v
}

/// Appends `piece` with every '▁' replaced by ' '.
fn push_unmarked(out: &mut Vec<u8>, mut piece: &[u8]) {
    while !piece.is_empty() {
        if piece.starts_with(SPACE_MARKER) {
            out.push(b' ');
            piece = &piece[SPACE_MARKER.len()..];
        } else {
            out.push(piece[0]);
            piece = &piece[1..];
        }
    }
}
