//! A generation session: the model, the run state it built, the sampler and the tokens in
//! context.
//! The host CLI and the UEFI app both generate through [`Session::generate`], so the same
//! checkpoint, prompt, settings and seed give the same bytes on both.
//!
//! Sliding window: when the next token would not fit in the state's T positions, the session
//! keeps the most recent ceil(T / 2) tokens (of the context plus the new tokens), clears the
//! cache and re-runs them as one prefill, then continues. Generation can therefore run for
//! any length; the model always sees at least T / 2 tokens of history.

use crate::kernels::Kernels;
use crate::model::{EngineError, Model, RunState};
use crate::parallel::Parallel;
use crate::sampler::{Sampler, SamplerConfig};
use crate::tokenizer::Tokenizer;
use alloc::vec::Vec;

/// The context a session allocates when not told otherwise: min(model's, this). Keeps the KV
/// cache of long-context models (32,768 positions) bounded.
pub const DEFAULT_MAX_CONTEXT: usize = 2048;

pub struct Session<'m> {
    pub model: &'m Model<'m>,
    state: RunState,
    pub sampler: Sampler,
    /// Tokens whose keys and values are in the cache, oldest first (len <= maxT).
    context: Vec<u32>,
    /// Room to assemble the window when sliding (capacity maxT).
    window: Vec<u32>,
    has_logits: bool,
    /// How many times the window slid (for /stats and tests).
    pub slides: usize,
}

impl<'m> Session<'m> {
    /// A session over the model's whole context.
    pub fn new(model: &'m Model<'m>, kernels: Kernels, sampler: SamplerConfig, seed: u64) -> Session<'m> {
        Session::with_state(model, model.new_state(kernels), sampler, seed)
    }

    /// A session with a shorter context than the model's (bounds the KV cache).
    pub fn with_context(
        model: &'m Model<'m>,
        kernels: Kernels,
        context: usize,
        sampler: SamplerConfig,
        seed: u64,
    ) -> Result<Session<'m>, EngineError> {
        Ok(Session::with_state(model, model.new_state_with_context(kernels, context)?, sampler, seed))
    }

    fn with_state(model: &'m Model<'m>, state: RunState, sampler: SamplerConfig, seed: u64) -> Session<'m> {
        let t = state.context();
        Session {
            model,
            state,
            sampler: Sampler::new(model.spec().vocab_size, sampler, seed),
            context: Vec::with_capacity(t),
            window: Vec::with_capacity(t),
            has_logits: false,
            slides: 0,
        }
    }

    pub fn kernels(&self) -> Kernels {
        self.state.kernels()
    }

    /// The positions this session holds before the window slides.
    pub fn max_context(&self) -> usize {
        self.state.context()
    }

    /// Forgets the conversation (the cache is simply overwritten from position 0).
    pub fn reset(&mut self) {
        self.context.clear();
        self.has_logits = false;
    }

    pub fn context(&self) -> &[u32] {
        &self.context
    }

    /// Logits for the token after the context (after at least one `feed`).
    pub fn logits(&self) -> Option<&[f32]> {
        self.has_logits.then(|| self.state.logits())
    }

    /// Appends tokens to the context, running them through the model as one prefill.
    /// Invalid tokens are rejected before anything changes.
    pub fn feed(&mut self, tokens: &[u32], par: &dyn Parallel) -> Result<(), EngineError> {
        let vocab = self.model.spec().vocab_size;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(EngineError::TokenOutOfRange { token: bad, vocab });
        }
        if tokens.is_empty() {
            return Ok(());
        }
        let maxt = self.state.context();
        if self.context.len() + tokens.len() <= maxt {
            self.model.forward_with(&mut self.state, tokens, self.context.len(), par)?;
            self.context.extend_from_slice(tokens);
        } else {
            let keep = maxt.div_ceil(2);
            let from_new = tokens.len().min(keep);
            let from_ctx = keep - from_new;
            self.window.clear();
            self.window.extend_from_slice(&self.context[self.context.len() - from_ctx..]);
            self.window.extend_from_slice(&tokens[tokens.len() - from_new..]);
            core::mem::swap(&mut self.context, &mut self.window);
            self.model.forward_with(&mut self.state, &self.context, 0, par)?;
            self.slides += 1;
        }
        self.has_logits = true;
        Ok(())
    }

    /// Samples the next token from the current logits and feeds it. Allocates nothing.
    pub fn next_token(&mut self, par: &dyn Parallel) -> Result<u32, EngineError> {
        if !self.has_logits {
            return Err(EngineError::EmptyInput);
        }
        let logits = self.state.logits();
        if let Some(token) = crate::tensor::first_non_finite_f32(logits) {
            return Err(EngineError::NonFiniteLogits { token });
        }
        let token = self.sampler.sample(logits, &self.context);
        self.feed(&[token], par)?;
        Ok(token)
    }

    /// Generates up to `max_tokens` tokens, passing their bytes (with stop strings held
    /// back and removed) to `out`, which returns false to cancel. Stops early at one of the
    /// tokenizer's end tokens or a stop string. Returns the number of tokens made.
    pub fn generate(
        &mut self,
        tokenizer: &Tokenizer,
        max_tokens: usize,
        stops: &mut StopFilter,
        par: &dyn Parallel,
        out: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<usize, EngineError> {
        self.generate_until(tokenizer, None, max_tokens, stops, par, out)
    }

    /// As [`Session::generate`], also ending at `end` (a chat template's end-of-turn token).
    /// The end token is fed to the model (it closes the turn in the context) but not printed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn generate_until(
        &mut self,
        tokenizer: &Tokenizer,
        end: Option<u32>,
        max_tokens: usize,
        stops: &mut StopFilter,
        par: &dyn Parallel,
        out: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<usize, EngineError> {
        self.generate_with(tokenizer, end, max_tokens, stops, par, out, &mut |_| Ok(Room::Slide)).map(|g| g.tokens)
    }

    /// As [`Session::generate_until`]; when the context is full before a token, `make_room`
    /// decides: it re-fills the session with a shorter context ([`Room::Made`]: a chat drops
    /// its oldest turns), lets the window slide ([`Room::Slide`]), or ends the generation
    /// ([`Room::Full`], reported in [`Generated::context_full`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn generate_with(
        &mut self,
        tokenizer: &Tokenizer,
        end: Option<u32>,
        max_tokens: usize,
        stops: &mut StopFilter,
        par: &dyn Parallel,
        out: &mut dyn FnMut(&[u8]) -> bool,
        make_room: &mut dyn FnMut(&mut Session<'m>) -> Result<Room, EngineError>,
    ) -> Result<Generated, EngineError> {
        let mut made = 0;
        let mut go_on = true;
        let mut context_full = false;
        while made < max_tokens && go_on {
            if self.context.len() >= self.state.context() && make_room(self)? == Room::Full {
                context_full = true;
                break;
            }
            let prev = self.context.last().copied();
            let token = self.next_token(par)?;
            made += 1;
            if tokenizer.is_end(token) || Some(token) == end {
                break;
            }
            let mut emit = |b: &[u8]| go_on &= out(b);
            if stops.push(tokenizer.decode_after(prev, token), &mut emit) {
                return Ok(Generated { tokens: made, context_full });
            }
        }
        stops.finish(&mut |b| {
            out(b);
        });
        Ok(Generated { tokens: made, context_full })
    }
}

/// What [`Session::generate_with`]'s caller did about a full context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Room {
    /// The session holds a shorter context now (with logits for its last token).
    Made,
    /// Let the window slide (keep the last half, as [`Session::feed`] does).
    Slide,
    /// Stop generating.
    Full,
}

/// What a generation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generated {
    pub tokens: usize,
    /// It ended because the context was full and nothing could be dropped ([`Room::Full`]).
    pub context_full: bool,
}

/// Holds back output that might be the start of a stop string, and ends generation when
/// one completes (the stop string itself is not printed).
pub struct StopFilter {
    stops: Vec<Vec<u8>>,
    pending: Vec<u8>,
}

impl StopFilter {
    pub fn new(stops: &[&[u8]]) -> StopFilter {
        let stops: Vec<Vec<u8>> = stops.iter().filter(|s| !s.is_empty()).map(|s| s.to_vec()).collect();
        let longest = stops.iter().map(|s| s.len()).max().unwrap_or(0);
        // Room for a held-back prefix plus a long BPE token: pushes never reallocate.
        StopFilter { stops, pending: Vec::with_capacity(longest + 256) }
    }

    pub fn none() -> StopFilter {
        StopFilter::new(&[])
    }

    /// Adds a token's bytes; emits what is certainly output. True when a stop string ended it.
    pub fn push(&mut self, bytes: &[u8], emit: &mut dyn FnMut(&[u8])) -> bool {
        if self.stops.is_empty() {
            emit(bytes);
            return false;
        }
        self.pending.extend_from_slice(bytes);
        // A complete stop string: print what came before it and stop.
        let mut first_stop: Option<usize> = None;
        for s in &self.stops {
            if let Some(at) = find(&self.pending, s) {
                first_stop = Some(first_stop.map_or(at, |f| f.min(at)));
            }
        }
        if let Some(at) = first_stop {
            if at > 0 {
                emit(&self.pending[..at]);
            }
            self.pending.clear();
            return true;
        }
        // Keep the shortest tail that is a prefix of some stop string.
        let hold_from =
            (0..self.pending.len()).find(|&i| self.stops.iter().any(|s| s.starts_with(&self.pending[i..]))).unwrap_or(self.pending.len());
        if hold_from > 0 {
            emit(&self.pending[..hold_from]);
            self.pending.drain(..hold_from);
        }
        false
    }

    /// Emits whatever is still held back (generation ended without a stop string).
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}
