#!/usr/bin/env python3
"""Independent check of engine/src/tokenizer/spm.rs against Google's sentencepiece library.

Trains a small Llama-2-style BPE model (byte fallback, dummy prefix, identity normalization,
digits split) on data/tinyshakespeare/input.txt, writes it as llama2.c's tokenizer.bin (the
same layout llama2.c's tokenizer.py writes: '▁' replaced by ' ', BOS/EOS as "\\n<s>\\n" /
"\\n</s>\\n"), encodes test texts with sentencepiece, then runs the ignored Rust test
`sentencepiece_reference`, which encodes the same texts with SpmTokenizer and compares ids
and decoded bytes.

Needs `pip install sentencepiece` (nothing else). Usage: python3 scripts/check-spm-tokenizer.py
"""
import os
import struct
import subprocess
import sys
import tempfile

try:
    import sentencepiece as spm
except ImportError:
    sys.exit("check-spm-tokenizer: needs the sentencepiece package (pip install sentencepiece)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "data", "tinyshakespeare", "input.txt")
VOCAB = 2000  # tokens: 3 specials + 256 bytes + ~1700 merges, trained in a few seconds

TEXTS = [
    "hello",
    "Hello world",
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "  two leading spaces, and   three inside",
    "tabs\tand\nnewlines\n\n",
    "Héllo, café crème brûlée",
    "日本語のテキスト",
    "emoji 😀🎉 ok",
    "numbers 12345 and 3.14159",
    'fn main() {\n    println!("{}", 1 + 2);\n}\n',
    "ROMEO:\nBut, soft! what light through yonder window breaks?",
    "What's this? I'll ne'er -- O, 'tis the king!",
    "a",
    " ",
]


def main():
    if not os.path.exists(CORPUS):
        sys.exit(f"check-spm-tokenizer: training text {CORPUS} is missing")
    with tempfile.TemporaryDirectory(prefix="spm-check-") as out:
        sys.exit(check(out))


def check(out):
    prefix = os.path.join(out, "sp")
    # Llama 2's trainer settings that matter for encoding (its tokenizer.model's normalizer
    # and trainer spec): BPE, byte fallback, identity normalization, whitespace kept as is.
    spm.SentencePieceTrainer.train(
        input=CORPUS,
        model_prefix=prefix,
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
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
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
    with open(os.path.join(out, "tokenizer.bin"), "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p, _ in pieces)))
        for p, s in pieces:
            f.write(struct.pack("<fi", s, len(p)))
            f.write(p)

    # cases.txt: "vocab N", then per text: its UTF-8 bytes in hex, a tab, sentencepiece's ids.
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write(f"vocab {n}\n")
        for text in TEXTS:
            ids = sp.encode(text)
            assert sp.decode(ids) == text, (text, sp.decode(ids))
            f.write(text.encode("utf-8").hex() + "\t" + " ".join(map(str, ids)) + "\n")
    print(f"check-spm-tokenizer: {n}-token model and {len(TEXTS)} cases in {out}")

    env = dict(os.environ, SPM_CHECK_DIR=out)
    cmd = ["cargo", "test", "--release", "-p", "llm-engine", "--test", "spm_tokenizer", "--", "--ignored", "--exact",
           "sentencepiece_reference", "--nocapture"]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    main()
