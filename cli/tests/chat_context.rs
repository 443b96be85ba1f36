//! Issue 23, finding 2: a chat turn that did not fit the context was cut silently
//! (`chat ... --context 3` with Qwen answered with exit 0, the ChatML turn cut to its last 3
//! tokens). Now a turn fits whole (the oldest whole turns leave first, the system message
//! stays, and it is said once on stderr / the console) or is refused with the numbers; a
//! templated reply that fills the context ends with a message instead of sliding out of its
//! template; a continuation (no template) still slides inside its own turn, as `generate`.

mod common;

use common::*;
use llm_engine::chat::{Chat, ChatSettings};
use llm_engine::template::Template;
use llm_engine::tokenizer::{Specials, Tokenizer};
use llm_engine::{Kernels, SamplerConfig, Session};
use std::io::Write;
use std::process::{Output, Stdio};

const QWEN_SYSTEM: &str = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
const IM_START: u32 = 151644;

fn chat_cli(args: &[&str], input: &str) -> Output {
    let model = real_model(QWEN);
    let mut child = cli()
        .arg("chat")
        .arg(&model)
        .args(["--temperature", "0", "--threads", "2"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The reproduction. The turn's 41 tokens are the prompt whose ids are pinned to
/// `llama-tokenize` in cli/tests/cli.rs (Qwen's system message, this question).
#[test]
fn a_turn_longer_than_the_context_is_refused_with_its_size() {
    let out = chat_cli(&["--context", "3"], "Write a Python function that checks whether a number is prime.\n/stats\n");
    let (s, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(err.contains("[turn of 41 tokens does not fit a context of 3: not sent]"), "{err}");
    assert!(s.trim() == "no reply yet", "a reply was printed: {s}");
    assert!(!out.status.success(), "a scripted chat with a refused turn exits with an error");
}

/// Text of the context as the template wrote it (control tokens by name).
fn context_text(tok: &Tokenizer, ids: &[u32]) -> String {
    let names = [(IM_START, "<|im_start|>"), (151645, "<|im_end|>")];
    let mut out = String::new();
    for &i in ids {
        match names.iter().find(|n| n.0 == i) {
            Some((_, name)) => out.push_str(name),
            None => out.push_str(&String::from_utf8_lossy(tok.decode(i))),
        }
    }
    out
}

#[test]
fn the_oldest_whole_turns_leave_and_the_system_message_stays() {
    let bytes = std::fs::read(real_model(QWEN)).unwrap();
    let loaded = llm_engine::load(&bytes).unwrap();
    let tok = loaded.tokenizer.as_ref().unwrap();
    let greedy = SamplerConfig { temperature: 0.0, ..SamplerConfig::default() };
    let mut session = Session::with_context(&loaded.model, Kernels::detect(), 128, greedy, 1).unwrap();
    let settings = ChatSettings { max_tokens: 12, ..ChatSettings::default() };
    let mut chat = Chat::new(settings, &mut session, tok).with_template(Template::ChatMl, Some(QWEN_SYSTEM.into())).unwrap();
    // The system message as llama.cpp tokenizes it (the ids of cli.rs's pinned prompt).
    let mut header = Vec::new();
    tok.encode_prompt_with(format!("<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n").as_bytes(), true, Specials::Parse, &mut header);
    let questions = ["Name a color.", "Name a fruit.", "Name an animal.", "Name a country.", "Name a planet.", "Name a metal."];
    let mut io = Recorder::default();
    let mut dropped_total = 0;
    for (n, q) in questions.iter().enumerate() {
        let stats = chat.turn(q, &mut io, &One).unwrap();
        dropped_total += stats.dropped_turns;
        let ctx = chat.session.context().to_vec();
        let text = context_text(tok, &ctx);
        // Whole turns only, after the system message: its header, then "user" openings.
        assert_eq!(ctx[..header.len()], header[..], "turn {n}: {text}");
        let kept = n + 1 - dropped_total;
        assert_eq!(ctx.iter().filter(|&&t| t == IM_START).count(), 1 + 2 * kept, "turn {n}: {text}");
        for (i, old) in questions[..=n].iter().enumerate() {
            let here = text.contains(&format!("<|im_start|>user\n{old}<|im_end|>\n<|im_start|>assistant\n"));
            assert_eq!(here, i >= n + 1 - kept, "turn {n}: question {i} {old:?} in {text}");
        }
        // The cache holds exactly this context: a fresh prefill of the prompt gives the
        // same greedy reply.
        let made = stats.reply_tokens;
        let mut fresh = Session::with_context(&loaded.model, Kernels::detect(), 128, greedy, 1).unwrap();
        fresh.feed(&ctx[..ctx.len() - made], &One).unwrap();
        for &want in &ctx[ctx.len() - made..] {
            assert_eq!(fresh.next_token(&One).unwrap(), want, "turn {n}");
        }
    }
    assert!(dropped_total >= 2, "the conversation never filled the context");
    // Said once per turn that dropped some, on the notice channel.
    assert!(io.notices.iter().all(|l| l.starts_with("[context full: the oldest ") && l.contains("the system message stays")));
    assert!(!io.notices.is_empty() && io.notices.len() <= dropped_total, "{:?}", io.notices);
    // /reset forgets the turns too: the next one opens a conversation again.
    chat.handle_line("/reset", &mut io, &mut One);
    let stats = chat.turn("Name a bird.", &mut io, &One).unwrap();
    assert_eq!(stats.dropped_turns, 0);
    assert_eq!(chat.session.context()[..header.len()], header[..]);
    assert_eq!(chat.session.context().iter().filter(|&&t| t == IM_START).count(), 3);
}

/// On the command line: every turn answered, the drop said on stderr, exit 0.
#[test]
fn chat_says_on_stderr_when_old_turns_leave() {
    let out = chat_cli(&["--context", "100", "--max-tokens", "12"], "Name a color.\nName a fruit.\nName an animal.\nName a country.\n");
    let (s, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{err}");
    assert!(err.contains("[context full: the oldest 1 turn(s) left the context; the system message stays]"), "{err}");
    assert_eq!(s.lines().filter(|l| !l.trim().is_empty()).count(), 4, "{s}");
}

/// A templated reply that fills the context ends with a message, not by sliding out of its
/// own template.
#[test]
fn a_templated_reply_that_fills_the_context_ends_with_a_message() {
    let out = chat_cli(&["--context", "56", "--max-tokens", "200"], "Write a long story about a dragon.\n/stats\n");
    let (s, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{err}");
    assert!(err.contains("[reply ended: it filled the context of 56 tokens"), "{err}");
    assert!(s.contains("| context 56/56 |"), "{s}");
}

/// Continuation mode (the byte-level default model, no template): the context always starts
/// at a turn's first byte, and a reply longer than the context slides inside its own turn.
#[test]
fn continuation_turns_leave_whole_too() {
    let bytes = std::fs::read(default_model()).unwrap();
    let loaded = llm_engine::load(&bytes).unwrap();
    let sampler = SamplerConfig { temperature: 0.8, ..SamplerConfig::default() };
    let mut session = Session::with_context(&loaded.model, Kernels::detect(), 128, sampler, 3).unwrap();
    let settings = ChatSettings { max_tokens: 30, stop_at_blank_line: false, ..ChatSettings::default() };
    let tok = Tokenizer::Bytes;
    let mut chat = Chat::new(settings, &mut session, &tok);
    let lines = ["ROMEO:", "JULIET:", "KING RICHARD:", "QUEEN:", "FIRST CITIZEN:", "GLOUCESTER:", "HAMLET:"];
    let mut io = Recorder::default();
    let mut dropped = 0;
    for (n, l) in lines.iter().enumerate() {
        let stats = chat.turn(l, &mut io, &One).unwrap();
        dropped += stats.dropped_turns;
        let ctx: Vec<u8> = chat.session.context().iter().map(|&t| t as u8).collect();
        let first_kept = lines[n + 1 - (n + 1 - dropped)];
        assert!(ctx.starts_with(format!("{first_kept}\n").as_bytes()), "turn {n}: {}", String::from_utf8_lossy(&ctx));
    }
    assert!(dropped >= 3);
    // One reply longer than the context: it slides (as generate does) and says so.
    chat.settings.max_tokens = 300;
    let stats = chat.turn("KING:", &mut io, &One).unwrap();
    assert_eq!(stats.reply_tokens, 300);
    assert!(io.notices.last().unwrap().contains("slides on past the start of this turn"), "{:?}", io.notices);
}
