#!/usr/bin/env python3
"""(Re)generates engine/tests/fixtures/spm/, the fixture that checks engine/src/tokenizer/spm.rs
against Google's sentencepiece library (an independent implementation).

Trains a small Llama-2-style BPE model (byte fallback, dummy prefix, identity normalization,
extra whitespace kept, digits split) on data/tinyshakespeare/input.txt, writes it as llama2.c's
tokenizer.bin (the layout llama2.c's tokenizer.py writes: '▁' replaced by ' ', BOS/EOS spelled
"\\n<s>\\n" / "\\n</s>\\n"), and writes cases.tsv with sentencepiece's ids and decoded text for
each test text. The test `sentencepiece_fixture` in engine/tests/spm_tokenizer.rs (part of every
`cargo test`) encodes the same texts with SpmTokenizer and compares.

Needs `pip install sentencepiece` (nothing else).
Usage: python3 scripts/check-spm-tokenizer.py [--no-test]
  writes the fixture, then runs the Rust test unless --no-test is given.
"""
import json
import os
import struct
import subprocess
import sys

try:
    import sentencepiece as spm
except ImportError:
    sys.exit("check-spm-tokenizer: needs the sentencepiece package (pip install sentencepiece)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "data", "tinyshakespeare", "input.txt")
OUT = os.path.join(ROOT, "engine", "tests", "fixtures", "spm")
VOCAB = 2000  # tokens: 3 specials + 256 bytes + ~1700 merges; tokenizer.bin stays under 50 KB

# The trainer settings (Llama 2's tokenizer.model settings that matter for encoding: BPE, byte
# fallback, digits split, dummy prefix, identity normalization, whitespace kept as is). Recorded
# in the README as well.
TRAIN = dict(
    model_type="bpe",
    vocab_size=VOCAB,
    byte_fallback=True,
    split_digits=True,
    add_dummy_prefix=True,
    allow_whitespace_only_pieces=True,
    remove_extra_whitespaces=False,
    normalization_rule_name="identity",
    character_coverage=1.0,
    unk_id=0,
    bos_id=1,
    eos_id=2,
    pad_id=-1,
    num_threads=1,
    minloglevel=2,
)

TEXTS = [
    # ASCII
    "hello",
    "Hello world",
    "a",
    "The quick brown fox jumps over the lazy dog.",
    "What's this? I'll ne'er -- O, 'tis the king!",
    "UPPER lower MiXeD cAsE",
    "<s> </s> <unk> <0x41> are plain text here",
    # Tiny Shakespeare lines
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "All:\nSpeak, speak.",
    "ROMEO:\nBut, soft! what light through yonder window breaks?",
    "KING RICHARD III:\nNow is the winter of our discontent\nMade glorious summer by this sun of York;",
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?",
    "To be, or not to be, that is the question:",
    # Accents and other Latin-script text
    "Héllo, café crème brûlée",
    "Ångström, naïve, façade, Zürich, São Paulo, Łódź",
    "Straße ß ẞ œ æ ø",
    # CJK and other scripts
    "日本語のテキスト",
    "中文文本，还有标点。",
    "한국어 텍스트",
    "Ελληνικά και русский текст",
    "עברית ועربية",
    # Emoji
    "emoji 😀🎉 ok",
    "👍🏽 👨‍👩‍👧 🇫🇷",
    # Whitespace runs (sentencepiece keeps them: identity normalization, no extra-space removal)
    " ",
    "  ",
    "  two leading spaces, and   three inside",
    "trailing spaces   ",
    " leading space",
    "tabs\tand\nnewlines\n\n",
    "\t\tindented\r\nwindows line",
    "many      spaces          here",
    # Code
    'fn main() {\n    println!("{}", 1 + 2);\n}\n',
    "def f(x):\n    return x ** 2  # square\n",
    "if (a <= b && c != d) { x[i] = y->z; }",
    # Digits
    "numbers 12345 and 3.14159",
    "2024-01-15 10:30:00, 1,000,000 $99.99 0x1F",
    "007 and 1e-9",
    # Edge cases: the empty text (BOS only), a NUL byte (run.c would stop at it; spm.rs encodes
    # it, as sentencepiece does, as <0x00>)
    "",
    "a\x00b",
]
# Left out on purpose (see the fixture's README.md): texts containing a literal '▁' (U+2581).
# sentencepiece treats it as a space; llama2.c's tokenizer.bin spells spaces ' ', so run.c (and
# spm.rs on such files) sees '▁' as an ordinary character.


def main():
    if not os.path.exists(CORPUS):
        sys.exit(f"check-spm-tokenizer: training text {CORPUS} is missing")
    generate()
    if "--no-test" in sys.argv[1:]:
        return 0
    cmd = ["cargo", "test", "--release", "-p", "llm-engine", "--test", "spm_tokenizer", "--", "--exact",
           "sentencepiece_fixture", "--nocapture"]
    return subprocess.call(cmd, cwd=ROOT)


def generate():
    os.makedirs(OUT, exist_ok=True)
    prefix = os.path.join(OUT, "sp")
    spm.SentencePieceTrainer.train(input=CORPUS, model_prefix=prefix, **TRAIN)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    # Only tokenizer.bin is committed; the .model/.vocab files are intermediate.
    os.remove(prefix + ".model")
    os.remove(prefix + ".vocab")
    n = sp.vocab_size()

    # tokenizer.bin exactly as llama2.c's tokenizer.py writes it.
    pieces = []
    for i in range(n):
        t = sp.id_to_piece(i)
        if i == sp.bos_id():
            t = "\n<s>\n"
        elif i == sp.eos_id():
            t = "\n</s>\n"
        pieces.append((t.replace("\u2581", " ").encode("utf-8"), sp.get_score(i)))
    with open(os.path.join(OUT, "tokenizer.bin"), "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p, _ in pieces)))
        for p, s in pieces:
            f.write(struct.pack("<fi", s, len(p)))
            f.write(p)

    # cases.tsv: a "vocab N" line, then per text (tab-separated): its UTF-8 bytes in hex; the ids
    # llama2.c's encode(bos=1) should give (BOS, then sentencepiece's ids); sentencepiece's decode
    # of those ids, UTF-8 in hex; the text as a JSON string, for people only (the test ignores it).
    with open(os.path.join(OUT, "cases.tsv"), "w") as f:
        f.write(f"vocab {n}\n")
        for text in TEXTS:
            assert "\u2581" not in text, "'\u2581' is a space to sentencepiece only; see README.md"
            ids = sp.encode(text)
            decoded = sp.decode(ids)
            assert decoded == text, (text, decoded)
            f.write("\t".join([
                text.encode("utf-8").hex(),
                " ".join(map(str, [sp.bos_id()] + ids)),
                decoded.encode("utf-8").hex(),
                json.dumps(text, ensure_ascii=False),
            ]) + "\n")
    size = os.path.getsize(os.path.join(OUT, "tokenizer.bin"))
    print(f"check-spm-tokenizer: sentencepiece {spm.__version__}, {n}-token model ({size} bytes), "
          f"{len(TEXTS)} cases in {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
