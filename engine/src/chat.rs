//! The chat's line handling, shared by the host REPL and the UEFI console so both accept
//! the same slash commands and treat a prompt the same way.
//!
//! A turn: the user's line plus a newline is fed to the model, and the reply is generated
//! until a blank line ("\n\n"), the end-of-text token or `max_tokens`. The context carries
//! over between turns until `/reset`, which also re-seeds the sampler so a reset
//! conversation is reproducible.

use crate::model::EngineError;
use crate::parallel::Parallel;
use crate::sampler::SamplerConfig;
use crate::session::{Room, Session, StopFilter};
use crate::template::{MissingToken, Template};
use crate::tokenizer::Tokenizer;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The reply ends at a blank line: the natural paragraph break of the training text.
pub const REPLY_STOP: &[u8] = b"\n\n";

pub const HELP: &str = "\
Type text and press Enter: the model continues it.
Commands:
  /help           this list
  /temp X         sampling temperature (0 = greedy, as is below 0.001)
  /topk N         keep the N most likely tokens (0 = off)
  /topp X         nucleus sampling mass in (0, 1] (1 = off)
  /minp X         drop tokens below X * the top probability (0 = off)
  /seed N         re-seed the sampler
  /max N          maximum tokens per reply
  /cores N        cores used for inference
  /reset          forget the conversation
  /stats          speed and context of the last reply
  /quit           leave (power off on bare metal)
Esc or Ctrl-C stops a reply.";

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChatSettings {
    pub sampler: SamplerConfig,
    pub seed: u64,
    pub max_tokens: usize,
    pub cores: usize,
    /// End a reply at a blank line (the default); off, replies run to `max_tokens`.
    pub stop_at_blank_line: bool,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings { sampler: SamplerConfig::default(), seed: 42, max_tokens: 256, cores: 1, stop_at_blank_line: true }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Command {
    Help,
    Temp(f32),
    TopK(usize),
    TopP(f32),
    MinP(f32),
    Seed(u64),
    Max(usize),
    Cores(usize),
    Reset,
    Stats,
    Quit,
}

#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    Empty,
    Prompt(&'a str),
    Command(Command),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError<'a> {
    Unknown(&'a str),
    MissingValue(&'static str),
    BadValue { command: &'static str, value: &'a str, expected: &'static str },
}

impl fmt::Display for CommandError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown(c) => write!(f, "unknown command {c} (type /help)"),
            CommandError::MissingValue(c) => write!(f, "{c} needs a value (type /help)"),
            CommandError::BadValue { command, value, expected } => {
                write!(f, "{command}: '{value}' is not {expected}")
            }
        }
    }
}

/// Classifies one input line. Leading and trailing whitespace is ignored; a line starting
/// with '/' is a command.
pub fn parse_line(line: &str) -> Result<Line<'_>, CommandError<'_>> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Line::Empty);
    }
    if !line.starts_with('/') {
        return Ok(Line::Prompt(line));
    }
    let mut parts = line.split_whitespace();
    let name = parts.next().unwrap_or(line);
    let arg = parts.next();
    if let Some(extra) = parts.next() {
        return Err(CommandError::BadValue { command: "command", value: extra, expected: "expected (one value only)" });
    }
    fn need<'a>(cmd: &'static str, arg: Option<&'a str>) -> Result<&'a str, CommandError<'a>> {
        arg.ok_or(CommandError::MissingValue(cmd))
    }
    fn float<'a>(
        cmd: &'static str,
        arg: Option<&'a str>,
        lo: f32,
        hi: f32,
        lo_open: bool,
        expected: &'static str,
    ) -> Result<f32, CommandError<'a>> {
        let v = need(cmd, arg)?;
        let bad = CommandError::BadValue { command: cmd, value: v, expected };
        let x: f32 = v.parse().map_err(|_| bad.clone())?;
        let above = if lo_open { x > lo } else { x >= lo };
        if x.is_finite() && above && x <= hi { Ok(x) } else { Err(bad) }
    }
    fn int<'a>(cmd: &'static str, arg: Option<&'a str>, lo: u64, expected: &'static str) -> Result<u64, CommandError<'a>> {
        let v = need(cmd, arg)?;
        match v.parse::<u64>() {
            Ok(n) if n >= lo => Ok(n),
            _ => Err(CommandError::BadValue { command: cmd, value: v, expected }),
        }
    }
    let no_arg = |c: Command| match arg {
        None => Ok(Line::Command(c)),
        Some(v) => Err(CommandError::BadValue { command: "command", value: v, expected: "expected (it takes no value)" }),
    };
    let cmd = match name {
        "/help" | "/?" => return no_arg(Command::Help),
        "/reset" => return no_arg(Command::Reset),
        "/stats" => return no_arg(Command::Stats),
        "/quit" | "/exit" => return no_arg(Command::Quit),
        "/temp" => Command::Temp(float("/temp", arg, 0.0, 100.0, false, "a temperature between 0 and 100")?),
        "/topk" => Command::TopK(int("/topk", arg, 0, "a whole number >= 0")? as usize),
        "/topp" => Command::TopP(float("/topp", arg, 0.0, 1.0, true, "a number in (0, 1]")?),
        "/minp" => Command::MinP(float("/minp", arg, 0.0, 1.0, false, "a number in [0, 1]")?),
        "/seed" => Command::Seed(int("/seed", arg, 0, "a whole number >= 0")?),
        "/max" => Command::Max(int("/max", arg, 1, "a whole number >= 1")? as usize),
        "/cores" => Command::Cores(int("/cores", arg, 1, "a whole number >= 1")? as usize),
        other => return Err(CommandError::Unknown(other)),
    };
    Ok(Line::Command(cmd))
}

impl ChatSettings {
    /// Applies a settings command; true when it was one (the others are actions for the
    /// caller: help, reset, stats, quit).
    pub fn apply(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Temp(t) => self.sampler.temperature = t,
            Command::TopK(k) => self.sampler.top_k = k,
            Command::TopP(p) => self.sampler.top_p = p,
            Command::MinP(p) => self.sampler.min_p = p,
            Command::Seed(s) => self.seed = s,
            Command::Max(n) => self.max_tokens = n,
            Command::Cores(n) => self.cores = n,
            Command::Help | Command::Reset | Command::Stats | Command::Quit => return false,
        }
        true
    }
}

impl fmt::Display for ChatSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.sampler;
        write!(
            f,
            "temp {} topk {} topp {} minp {} seed {} max {} cores {}",
            s.temperature, s.top_k, s.top_p, s.min_p, self.seed, self.max_tokens, self.cores
        )
    }
}

/// What the caller must do after a command (settings are already applied to the session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A setting changed; show the settings.
    Updated,
    Help,
    /// The conversation was forgotten and the sampler re-seeded.
    Reset,
    Stats,
    Quit,
}

/// Applies a command to the settings and the session, the same way on every front end.
pub(crate) fn handle_command(settings: &mut ChatSettings, session: &mut Session<'_>, cmd: Command) -> Action {
    match cmd {
        Command::Help => Action::Help,
        Command::Stats => Action::Stats,
        Command::Quit => Action::Quit,
        Command::Reset => {
            session.reset();
            session.sampler.reseed(settings.seed);
            Action::Reset
        }
        other => {
            settings.apply(other);
            session.sampler.config = settings.sampler;
            if let Command::Seed(s) = other {
                session.sampler.reseed(s);
            }
            Action::Updated
        }
    }
}

/// The stop strings of a chat reply.
pub(crate) fn reply_stops(settings: &ChatSettings) -> StopFilter {
    if settings.stop_at_blank_line { StopFilter::new(&[REPLY_STOP]) } else { StopFilter::none() }
}

/// What a front end (the host terminal, the firmware console) gives the chat driver.
pub trait ChatIo {
    /// Model output as it is generated (a UTF-8 sequence may be split across calls).
    fn reply_bytes(&mut self, bytes: &[u8]);
    /// The reply is over: flush a partial character and end the line.
    fn reply_end(&mut self);
    /// One line of information: help, settings, stats, errors.
    fn line(&mut self, text: &str);
    /// A line about the conversation itself (turns that left a full context, a turn that was
    /// refused): standard error on the host, the console on bare metal.
    fn notice(&mut self, text: &str) {
        self.line(text)
    }
    /// Polled before each generated token is shown; true stops the reply.
    fn cancel_requested(&mut self) -> bool;
    /// Seconds on a monotonic clock.
    fn now(&self) -> f64;
}

/// The cores a front end can put to work: the engine's `Parallel` plus a way to resize.
pub trait Cores: Parallel {
    /// Uses `n` workers (0 = all); returns how many are in use now.
    fn set_active(&mut self, n: usize) -> usize;
}

/// The chat-turn driver shared by the host REPL and the UEFI app: they read lines and print;
/// everything else (commands, feeding a turn, generating with a cancel check, stats) is here.
///
/// A turn is never cut: when the context cannot take the next turn (with room for a reply of
/// `max_tokens`, up to a quarter of the context), the oldest whole turns leave it (the system
/// message stays: the first kept turn is written again as the first, with it) and the rest
/// is run again as one prefill; a turn that does not fit even alone is refused with the
/// numbers. A reply that fills the context drops older turns the same way; when only its own
/// turn is left, a templated reply ends with a message, and a continuation (no template)
/// lets the window slide as `generate` does.
pub struct Chat<'s, 'm> {
    pub settings: ChatSettings,
    pub session: &'s mut Session<'m>,
    /// Print the stats line after each reply (the host does only on a terminal).
    pub show_stats: bool,
    /// Turns that failed (refused or an engine error) since the start: a scripted session
    /// reports them in its exit status.
    pub failed_turns: usize,
    conv: Conversation<'s>,
    /// The template's end-of-turn token in this vocabulary.
    end_of_turn: Option<u32>,
    last: String,
}

/// The conversation in the context, turn by turn, to write it again without its oldest turns.
struct Conversation<'s> {
    tokenizer: &'s Tokenizer,
    template: Template,
    system: Option<String>,
    /// The turns in the context, oldest first (empty when the context is).
    turns: Vec<Turn>,
}

enum Turn {
    /// A user's text and the reply's tokens (with its end-of-turn token when it ended so).
    Text { user: String, reply: Vec<u32> },
    /// A context that slid inside a turn (continuation mode): kept as tokens, dropped whole.
    Tokens(Vec<u32>),
}

/// A context that fits: its tokens, where the new turn and its reply start, turns dropped.
struct Fitted {
    tokens: Vec<u32>,
    turn_at: usize,
    reply_at: usize,
    dropped: usize,
}

impl Conversation<'_> {
    /// Appends the tokens of the user turn `text`; `first` opens the conversation.
    fn encode_turn(&self, text: &str, first: bool, out: &mut Vec<u32>) -> Result<(), MissingToken> {
        let mut pieces = Vec::with_capacity(16);
        self.template.user_turn(self.system.as_deref(), text, first, &mut pieces);
        // The user's text is encoded as text: only the template's pieces are control tokens.
        self.template.encode(self.tokenizer, &pieces, first, out)
    }

    /// The context without the `drop` oldest turns, then the user turn `text` and `reply`;
    /// None when it leaves fewer than `free` positions of `max`.
    fn render(&self, drop: usize, text: &str, reply: &[u32], free: usize, max: usize) -> Result<Option<Fitted>, MissingToken> {
        let mut tokens = Vec::new();
        for (i, turn) in self.turns[drop..].iter().enumerate() {
            match turn {
                Turn::Text { user, reply } => {
                    self.encode_turn(user, i == 0, &mut tokens)?;
                    tokens.extend_from_slice(reply);
                }
                Turn::Tokens(t) => tokens.extend_from_slice(t),
            }
            if tokens.len() + free > max {
                return Ok(None);
            }
        }
        let turn_at = tokens.len();
        self.encode_turn(text, drop == self.turns.len(), &mut tokens)?;
        let reply_at = tokens.len();
        tokens.extend_from_slice(reply);
        Ok((tokens.len() + free <= max).then_some(Fitted { tokens, turn_at, reply_at, dropped: drop }))
    }

    /// Makes `session` hold the fitted context: run again as one prefill, without the turns
    /// it dropped.
    fn refill(&mut self, session: &mut Session<'_>, f: &Fitted, par: &dyn Parallel) -> Result<(), EngineError> {
        session.reset();
        session.feed(&f.tokens, par)?;
        self.turns.drain(..f.dropped);
        Ok(())
    }

    /// The fewest oldest turns to drop (at least one) for `text` and `reply` to leave `free`
    /// positions of `max`.
    fn fit(&self, text: &str, reply: &[u32], free: usize, max: usize) -> Result<Option<Fitted>, MissingToken> {
        for drop in 1..=self.turns.len() {
            if let Some(f) = self.render(drop, text, reply, free, max)? {
                return Ok(Some(f));
            }
        }
        Ok(None)
    }
}

/// Why a turn was not taken or did not finish.
#[derive(Clone, Debug, PartialEq)]
pub enum TurnError {
    Engine(EngineError),
    Template(MissingToken),
    /// The turn alone (with the system message, and one position for the reply) is longer
    /// than the context: it was not sent.
    DoesNotFit {
        tokens: usize,
        context: usize,
    },
}

impl From<EngineError> for TurnError {
    fn from(e: EngineError) -> TurnError {
        TurnError::Engine(e)
    }
}

impl From<MissingToken> for TurnError {
    fn from(e: MissingToken) -> TurnError {
        TurnError::Template(e)
    }
}

impl fmt::Display for TurnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TurnError::Engine(e) => e.fmt(f),
            TurnError::Template(e) => e.fmt(f),
            TurnError::DoesNotFit { tokens, context } => write!(f, "turn of {tokens} tokens does not fit a context of {context}"),
        }
    }
}

/// What one turn did, for stats and tests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TurnStats {
    pub prompt_tokens: usize,
    /// Tokens the prefill ran: prompt_tokens, or the whole kept context when turns were
    /// dropped to make room.
    pub prompt_computed: usize,
    pub prompt_seconds: f64,
    pub reply_tokens: usize,
    pub reply_seconds: f64,
    pub stopped: bool,
    /// Oldest turns that left the context during this turn (before it or during the reply).
    pub dropped_turns: usize,
    /// The reply ended because it filled the context (templated chats).
    pub context_full: bool,
}

impl<'s, 'm> Chat<'s, 'm> {
    /// A chat in continuation mode (no template): each line plus a newline is fed as is.
    pub fn new(settings: ChatSettings, session: &'s mut Session<'m>, tokenizer: &'s Tokenizer) -> Chat<'s, 'm> {
        Chat {
            settings,
            session,
            show_stats: true,
            failed_turns: 0,
            conv: Conversation { tokenizer, template: Template::Raw, system: None, turns: Vec::new() },
            end_of_turn: None,
            last: String::from("no reply yet"),
        }
    }

    /// Writes turns in a chat template's layout (with an optional system message); replies
    /// end at the template's end-of-turn token instead of a blank line. Refused when the
    /// vocabulary lacks one of the template's control tokens.
    pub fn with_template(mut self, template: Template, system: Option<String>) -> Result<Chat<'s, 'm>, MissingToken> {
        template.check(self.conv.tokenizer)?;
        self.end_of_turn = template.end_of_turn().and_then(|p| self.conv.tokenizer.token_id(p.as_bytes()));
        self.conv.template = template;
        self.conv.system = system;
        Ok(self)
    }

    pub fn template(&self) -> Template {
        self.conv.template
    }

    pub fn tokenizer(&self) -> &'s Tokenizer {
        self.conv.tokenizer
    }

    /// One input line: a command or a prompt. Returns false when the user quits.
    pub fn handle_line(&mut self, line: &str, io: &mut dyn ChatIo, cores: &mut dyn Cores) -> bool {
        match parse_line(line) {
            Err(e) => io.line(&format!("{e}")),
            Ok(Line::Empty) => {}
            Ok(Line::Command(cmd)) => match handle_command(&mut self.settings, self.session, cmd) {
                Action::Help => io.line(HELP),
                Action::Quit => return false,
                Action::Reset => {
                    self.conv.turns.clear();
                    io.line("[conversation reset]")
                }
                Action::Stats => io.line(&self.last),
                Action::Updated => {
                    self.settings.cores = cores.set_active(self.settings.cores);
                    io.line(&format!("[{}]", self.settings));
                }
            },
            Ok(Line::Prompt(text)) => match self.turn(text, io, &*cores) {
                Ok(_) => {}
                Err(e) => {
                    self.failed_turns += 1;
                    match e {
                        TurnError::DoesNotFit { .. } => io.notice(&format!("[{e}: not sent]")),
                        e => io.line(&format!("error: {e}")),
                    }
                }
            },
        }
        true
    }

    /// Feeds the user's line as a turn and streams the reply until a blank line (if set), an
    /// end token, `max_tokens` or a cancel. The oldest turns leave the context when it is
    /// full (see [`Chat`]); a turn that cannot fit is refused and changes nothing.
    pub fn turn(&mut self, text: &str, io: &mut dyn ChatIo, par: &dyn Parallel) -> Result<TurnStats, TurnError> {
        let t0 = io.now();
        let max = self.session.max_context();
        if self.session.context().is_empty() {
            self.conv.turns.clear();
        }
        let first = self.conv.turns.is_empty();
        let mut tokens = Vec::with_capacity(text.len() + 16);
        self.conv.encode_turn(text, first, &mut tokens)?;
        // Room for a reply of max_tokens, up to a quarter of the context.
        let want = self.settings.max_tokens.clamp(1, (max / 4).max(1));
        let before = self.session.context().len();
        // In order: all of it with room for the reply; without the fewest oldest turns; all
        // of it with room for one token; without the fewest oldest turns; refused.
        let fitted = if before + tokens.len() + want <= max {
            None
        } else if let Some(f) = self.conv.fit(text, &[], want, max)? {
            Some(f)
        } else if before + tokens.len() < max {
            None
        } else if let Some(f) = self.conv.fit(text, &[], 1, max)? {
            Some(f)
        } else {
            // Alone, the turn is written as the first, with the system message.
            let mut alone = Vec::new();
            self.conv.encode_turn(text, true, &mut alone)?;
            return Err(TurnError::DoesNotFit { tokens: alone.len(), context: max });
        };
        let (mut dropped, mut reply_at, prompt_tokens, computed) = match fitted {
            None => {
                self.session.feed(&tokens, par)?;
                (0, before + tokens.len(), tokens.len(), tokens.len())
            }
            Some(f) => {
                self.conv.refill(self.session, &f, par)?;
                (f.dropped, f.reply_at, f.reply_at - f.turn_at, f.tokens.len())
            }
        };
        let t1 = io.now();
        let mut stopped = false;
        // A template ends the reply with its own token; a blank line is part of an answer.
        let raw = self.conv.template == Template::Raw;
        let mut stops = if raw { reply_stops(&self.settings) } else { StopFilter::none() };
        let (end, max_tokens, slides) = (self.end_of_turn, self.settings.max_tokens, self.session.slides);
        let conv = &mut self.conv;
        let tokenizer = conv.tokenizer;
        let mut slid = false;
        let mut make_room = |s: &mut Session<'m>| -> Result<Room, EngineError> {
            if slid {
                return Ok(Room::Slide);
            }
            let reply = s.context()[reply_at.min(s.context().len())..].to_vec();
            let mut fitted = None;
            for free in [(max / 4).max(1), 1] {
                // (The template's tokens were all there when this turn started.)
                if let Ok(Some(f)) = conv.fit(text, &reply, free, max) {
                    fitted = Some(f);
                    break;
                }
            }
            match fitted {
                Some(f) => {
                    conv.refill(s, &f, par)?;
                    dropped += f.dropped;
                    reply_at = f.reply_at;
                    Ok(Room::Made)
                }
                // Only this turn is left: a continuation slides (the older turns are out of
                // the window then), a templated reply ends.
                None if raw => {
                    slid = true;
                    dropped += conv.turns.len();
                    conv.turns.clear();
                    Ok(Room::Slide)
                }
                None => Ok(Room::Full),
            }
        };
        let result = self.session.generate_with(
            tokenizer,
            end,
            max_tokens,
            &mut stops,
            par,
            &mut |b| {
                if io.cancel_requested() {
                    stopped = true;
                    return false;
                }
                io.reply_bytes(b);
                true
            },
            &mut make_room,
        );
        io.reply_end();
        // The turn is in the context now (also when the reply failed half-way).
        let context = self.session.context();
        if self.session.slides != slides {
            self.conv.turns.clear();
            self.conv.turns.push(Turn::Tokens(context.to_vec()));
        } else {
            let reply = context.get(reply_at..).unwrap_or_default().to_vec();
            self.conv.turns.push(Turn::Text { user: String::from(text), reply });
        }
        let generated = result?;
        let made = generated.tokens;
        let t2 = io.now();
        if slid {
            io.notice("[context full: the continuation slides on past the start of this turn]");
        } else if dropped > 0 {
            let kept = if self.conv.system.is_some() { "; the system message stays" } else { "" };
            io.notice(&format!("[context full: the oldest {dropped} turn(s) left the context{kept}]"));
        }
        if generated.context_full {
            io.notice(&format!("[reply ended: it filled the context of {max} tokens (/reset, /max or a longer context)]"));
        }
        if stopped {
            io.line("[stopped]");
        }
        let stats = TurnStats {
            prompt_tokens,
            prompt_computed: computed,
            prompt_seconds: t1 - t0,
            reply_tokens: made,
            reply_seconds: t2 - t1,
            stopped,
            dropped_turns: dropped,
            context_full: generated.context_full,
        };
        let full = if computed != prompt_tokens { format!(" (context full: ran the kept {computed})") } else { String::new() };
        self.last = format!(
            "[prompt {} tokens{full} at {:.1} tok/s | reply {made} tokens in {:.2} s, {:.1} tok/s | context {}/{} | {} core(s)]",
            stats.prompt_tokens,
            computed as f64 / stats.prompt_seconds.max(1e-9),
            stats.reply_seconds,
            made as f64 / stats.reply_seconds.max(1e-9),
            self.session.context().len(),
            self.session.max_context(),
            par.workers()
        );
        if self.show_stats {
            io.line(&self.last);
        }
        Ok(stats)
    }
}
