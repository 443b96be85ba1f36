#!/usr/bin/env python3
"""(Re)generates engine/tests/fixtures/bpe/cases.tsv: expected ids and pre-tokenizer splits for the byte-level BPE
tokenizer (engine/src/tokenizer/bpe.rs) from Hugging Face's `tokenizers` library, an
independent implementation.

The vocabulary is GPT-2's (encoder.json and vocab.bpe, as shipped in the assets of the Rust
crate tiktoken-rs 0.12, a dev-dependency of llm-engine, so `cargo fetch` puts them in
~/.cargo/registry). For each pre-tokenizer a `tokenizers` pipeline is built the way HF's
tokenizer.json files for these models define it:
  pre_tokenizer = Sequence([Split(Regex(PATTERN), behavior="isolated"),
                            ByteLevel(add_prefix_space=False, use_regex=False)])
  model = BPE(vocab, merges, ignore_merges=<True for Llama 3, as llama.cpp and Llama 3's
                                             tokenizer.json; False otherwise>)
with no normalizer (llama.cpp applies none; note Qwen2's tokenizer.json has NFC).
The patterns are llama.cpp's (src/llama-vocab.cpp) for gpt2 / llama3 / qwen2.

Needs `pip install tokenizers`. Usage: python3 scripts/make-bpe-fixtures.py
"""
import glob
import hashlib
import json
import os
import random
import sys

import tokenizers
from tokenizers import Regex, Tokenizer, models, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "engine", "tests", "fixtures", "bpe")
SHAKESPEARE = os.path.join(ROOT, "data", "tinyshakespeare", "input.txt")
SHAKESPEARE_LINES = 1000

PATTERNS = {
    "gpt2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    "llama3": r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}

# The test texts (name, text). The Rust test also runs every one of them through tiktoken.
TEXTS = [
    ("empty", ""),
    ("hello", "Hello, world!"),
    ("contractions", "I'm sure he's done it; they'll say we've, you'd, 'tis ours. DON'T SHOUT, I'M HERE, "
     "WE'LL, THEY'RE, YOU'VE, HE'D. 'S 'T 'Re 'vE 'lL 'x ''s '"),
    ("numbers", "1 12 123 1234 12345 1234567 3.14159 1,000,000 2024-06-01 v2.0.1 x86_64 0x1F 1e-9 ½ ² Ⅻ ٣٤٥ १२३ ①②"),
    ("whitespace", "a  b   c\t\td\n\ne \n \n  f   \r\n\r\ng\u00a0h\u3000i  \u2003 j\u2028k   "),
    ("spaces-only", "     "),
    ("newlines-only", "\n\n\n"),
    ("leading-trailing", "  leading and trailing  "),
    ("mixed-ws-before-word", " \t \n x\n\n\ty \r\n  z"),
    ("accents", "Café naïve façade résumé — Ünïcödé ß Øresund Ærø İstanbul ǅemal"),
    ("cjk", "你好，世界！日本語のテキスト。ｶﾀｶﾅ 한국어 텍스트"),
    ("emoji", "👋🌍 hi 🎉🎉🎉 👨‍👩‍👧‍👦 ❤️ 🇫🇷 ok👍"),
    ("marks", "e\u0301 a\u0308 हिन्दी क्षत्रिय ไทย ภาษา مرحبا بالعالم שָׁלוֹם"),
    ("code-rust", "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{:?}\", x);\n\n    // done\n}\n"),
    ("code-python", "def f(a, b=2):\n    if a >= b and not a:\n        return {'k': [a, b]}  # comment\n\treturn None\n"),
    ("code-c", "if (a&&b||c!=d) { return x->y[i++]; } /* c */ #include <stdio.h>\r\n"),
    ("html", "<html><body class=\"x\">&amp;&lt;</body></html>\n<|endoftext|>"),
    ("punctuation", "!!!??? ... --- ***\n\n### (hello) [world] {foo} \"quoted\" 'single' «guillemets» ¿qué?"),
    ("chatml-text", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"),
]


# Random short texts from characters that meet the patterns' edges (contractions, digits,
# every kind of whitespace run, letters after punctuation/tabs, marks, CJK, emoji).
RANDOM_ALPHABET = list("aAsStTrReEvVlLdDmMxz09 5'\t\n\r.,;!?-(_\"") + [
    "\u00a0", "\u3000", "\u2028", "\u0301", "\u093f", "é", "ß", "你", "👋", "½", "٣", "  ", "\r\n", "'s", "'LL"]
RANDOM_CASES = 200


def random_texts():
    rng = random.Random(20240601)
    return [(f"random-{i}", "".join(rng.choice(RANDOM_ALPHABET) for _ in range(rng.randint(1, 24))))
            for i in range(RANDOM_CASES)]


def gpt2_files():
    hits = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/tiktoken-rs-0.12.*/assets")))
    if not hits:
        sys.exit("make-bpe-fixtures: tiktoken-rs 0.12 not in ~/.cargo/registry (run cargo fetch)")
    return os.path.join(hits[-1], "encoder.json"), os.path.join(hits[-1], "vocab.bpe")


def main():
    enc_path, bpe_path = gpt2_files()
    vocab = json.load(open(enc_path, encoding="utf-8"))
    merges = []
    for line in open(bpe_path, encoding="utf-8").read().split("\n")[1:]:
        if line:
            a, b = line.split(" ")
            merges.append((a, b))
    lines = open(SHAKESPEARE, encoding="utf-8").read().split("\n")
    shakespeare = "\n".join(lines[:SHAKESPEARE_LINES]) + "\n"
    texts = TEXTS + [("shakespeare", shakespeare)] + random_texts()

    splitters = {name: pre_tokenizers.Split(Regex(pat), behavior="isolated", invert=False)
                 for name, pat in PATTERNS.items()}

    def split_ends(name, text):
        """Byte offsets where the pre-tokenizer's pieces end (HF gives char offsets)."""
        pieces = splitters[name].pre_tokenize_str(text)
        ends, at = [], 0
        for piece, (a, b) in pieces:
            assert a == at and text[a:b] == piece, (name, text, pieces)
            at = b
            ends.append(len(text[:b].encode("utf-8")))
        assert at == len(text)
        return " ".join(map(str, ends))

    toks = {}
    for name, pat in PATTERNS.items():
        t = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=(name == "llama3")))
        t.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pat), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        toks[name] = t

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "cases.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# name\ttext (UTF-8 hex, or @shakespeare:LINES)\tgpt2 ids\tllama3 ids\tqwen2 ids"
                "\tgpt2 / llama3 / qwen2 piece end byte offsets (3 columns)\n")
        for name, text in texts:
            field = f"@shakespeare:{SHAKESPEARE_LINES}" if name == "shakespeare" else text.encode("utf-8").hex()
            cols = [name, field]
            for pre in ("gpt2", "llama3", "qwen2"):
                cols.append(" ".join(map(str, toks[pre].encode(text, add_special_tokens=False).ids)))
            for pre in ("gpt2", "llama3", "qwen2"):
                # Shakespeare's splits would triple the file; its ids are checked.
                cols.append("-" if name == "shakespeare" else split_ends(pre, text))
            f.write("\t".join(cols) + "\n")
    sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
    print(f"tokenizers {tokenizers.__version__}; {len(texts)} texts; encoder.json {sha(enc_path)[:16]}, "
          f"vocab.bpe {sha(bpe_path)[:16]}, input.txt {sha(SHAKESPEARE)[:16]}")


if __name__ == "__main__":
    main()
