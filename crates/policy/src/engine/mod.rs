//! The compiled form of a policy: a finite automaton over "atoms" of the alphabet
//! (this module), the forbidden-substring automaton it embeds ([`automaton`]), the
//! exact table of completion counts ([`table`]), the two samplers ([`sample`]) and
//! the sources of uniform characters they draw from ([`rng`]).
//!
//! See the crate documentation ("Algorithm") for the construction and the proofs.

mod automaton;
mod rng;
mod sample;
mod table;

use std::collections::BTreeMap;

use rand::RngCore;
use zeroize::Zeroize;

use crate::bigint;
use crate::error::ComplexityLimit;
use automaton::SubstringAutomaton;
use rng::{ByteSource, U16Source};
use sample::{AutomatonCheck, BigWalker, NativeWalker, Packed, PackedCheck, Walker};
use table::{CountTable, Shape};

/// Budget for the counting table, in 64-bit words (32 MiB).
pub(crate) const MAX_TABLE_WORDS: u128 = 1 << 22;
/// Budget for the work to fill the table (word operations).
pub(crate) const MAX_TABLE_WORK: u128 = 1 << 30;
/// Use rejection of whole candidates when at least this fraction of uniformly random
/// strings over the alphabet is valid (at most 8 candidates on average).
pub(crate) const REJECTION_THRESHOLD: f64 = 0.125;

/// One counter: "how many characters of this set", capped at `min`.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    /// Minimum count (the cap).
    pub(crate) min: usize,
}

/// A rule over counters: at least `at_least` of `counters` reached their minimum.
#[derive(Debug, Clone)]
pub(crate) struct CounterRule {
    pub(crate) counters: Vec<usize>,
    pub(crate) at_least: usize,
}

/// Everything the engine needs, already validated by the policy layer.
pub(crate) struct EngineSpec<'a> {
    pub(crate) length: usize,
    /// Sorted, de-duplicated alphabet.
    pub(crate) alphabet: &'a [char],
    /// For each alphabet character, the bit set of counters it belongs to.
    pub(crate) char_counters: &'a [u64],
    pub(crate) counters: &'a [Counter],
    pub(crate) rules: &'a [CounterRule],
    /// Case-folded forbidden substrings (each non-empty).
    pub(crate) forbidden: &'a [Vec<char>],
}

/// Reasons the engine could not be built (mapped to `PolicyError` by the caller).
#[derive(Debug)]
pub(crate) enum EngineError {
    TooComplex {
        limit: ComplexityLimit,
        needed: u128,
        max: u128,
    },
}

/// Which sampler a policy uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Rejection,
    Exact,
}

pub(crate) struct Engine {
    length: usize,
    alphabet: Vec<char>,
    /// Characters (alphabet indices) of each atom, concatenated; `atom_start[a]..atom_start[a+1]`.
    atom_chars: Vec<u16>,
    atom_start: Vec<usize>,
    atom_size: Vec<u64>,
    n_atoms: usize,
    /// Number of live states; `n_states` itself is the absorbing dead state.
    n_states: usize,
    /// `trans[s * n_atoms + a]`, for `s` in `0..=n_states`.
    trans: Vec<u32>,
    accept: Vec<bool>,
    /// States from which every continuation is valid.
    free: Vec<bool>,
    init: u32,
    /// Valid completions of `l` characters from each state (every layer only when
    /// it fits the budget; the exact sampler needs them all).
    table: CountTable,
    /// Alphabet index -> atom index (the 16-bit path's codes are alphabet indices;
    /// 256 entries, zero past the alphabet).
    char_atom16: [u16; 256],
    /// Byte -> alphabet index for bytes below `byte_limit` (a multiple of the alphabet size).
    byte_index: [u8; 256],
    /// Byte -> atom of `byte_index[b]`.
    byte_atom: [u16; 256],
    byte_limit: u16,
    /// Packed-counter fast check (no forbidden substrings, at most 8 counters,
    /// length at most 255): per-alphabet-character increments of 8-bit lanes.
    packed: Option<Packed>,
    /// Worst-case UTF-8 size of a password.
    max_bytes: usize,
    /// `trans` with pre-multiplied offsets: `trans_pm[s * n_atoms + a] = next * n_atoms`.
    trans_pm: Vec<u32>,
    log2_count: f64,
    acceptance: f64,
    method: Method,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("atoms", &self.n_atoms)
            .field("states", &self.n_states)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

fn fold(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Public so the policy layer can fold for `check`.
pub(crate) fn fold_char(c: char) -> char {
    fold(c)
}

impl Engine {
    pub(crate) fn build(spec: &EngineSpec<'_>) -> Result<Engine, EngineError> {
        let length = spec.length;
        let n = spec.alphabet.len();
        let auto = SubstringAutomaton::build(spec.forbidden);

        // Atoms: characters with identical counter membership and automaton symbol.
        let mut groups: BTreeMap<(u64, u32), Vec<u16>> = BTreeMap::new();
        for (i, &c) in spec.alphabet.iter().enumerate() {
            let sym = auto.symbol(fold(c));
            groups
                .entry((spec.char_counters[i], sym))
                .or_default()
                .push(i as u16);
        }
        let mut char_atom = vec![0u32; n];
        let mut atom_chars = Vec::with_capacity(n);
        let mut atom_start = vec![0usize];
        let mut atom_size = Vec::new();
        let mut atom_key = Vec::new();
        for (a, (key, chars)) in groups.into_iter().enumerate() {
            for &i in &chars {
                char_atom[i as usize] = a as u32;
            }
            atom_size.push(chars.len() as u64);
            atom_chars.extend_from_slice(&chars);
            atom_start.push(atom_chars.len());
            atom_key.push(key);
        }
        let n_atoms = atom_size.len();

        // Counter states: mixed radix over capped counts.
        let mut strides = Vec::with_capacity(spec.counters.len());
        let mut n_cs: u128 = 1;
        for c in spec.counters {
            strides.push(n_cs as usize);
            n_cs = n_cs.saturating_mul(c.min.min(length) as u128 + 1);
            if n_cs > MAX_TABLE_WORDS {
                return Err(EngineError::TooComplex {
                    limit: ComplexityLimit::TableWords,
                    needed: n_cs,
                    max: MAX_TABLE_WORDS,
                });
            }
        }
        let q_count = auto.states() as u128;
        let n_states_wide = n_cs * q_count;
        let bits_per_char = if n <= 1 {
            0
        } else {
            64 - ((n - 1) as u64).leading_zeros() as usize
        };
        let width = bits_per_char * length / 64 + 1;
        let words = (length as u128 + 1) * n_states_wide * width as u128;
        // Layer `l` touches about `l / length` of the limbs, so half on average.
        let work = length as u128 * n_states_wide * n_atoms as u128 * (width as u128 / 2 + 1);
        let trans_words = (n_states_wide + 1) * n_atoms as u128;
        let layer_words = 2 * n_states_wide * width as u128;
        if layer_words > MAX_TABLE_WORDS || trans_words > MAX_TABLE_WORDS {
            return Err(EngineError::TooComplex {
                limit: ComplexityLimit::TableWords,
                needed: layer_words.max(trans_words),
                max: MAX_TABLE_WORDS,
            });
        }
        // Keep every layer (needed by the exact sampler) when it fits; otherwise count
        // with two rolling layers, which suffices when rejection is chosen.
        let keep_table = words <= MAX_TABLE_WORDS;
        if work > MAX_TABLE_WORK {
            return Err(EngineError::TooComplex {
                limit: ComplexityLimit::FillOperations,
                needed: work,
                max: MAX_TABLE_WORK,
            });
        }
        let n_cs = n_cs as usize;
        let q_count = q_count as usize;
        let n_states = n_cs * q_count;
        let dead = n_states as u32;

        // Per counter state: decoded counts, accept flag, per-atom successor.
        let caps: Vec<usize> = spec.counters.iter().map(|c| c.min.min(length)).collect();
        let mut counts = vec![0usize; caps.len()];
        let mut cs_accept = vec![false; n_cs];
        let mut cs_next = vec![0u32; n_cs * n_atoms];
        for cs in 0..n_cs {
            let mut rest = cs;
            for (k, cap) in caps.iter().enumerate() {
                counts[k] = rest % (cap + 1);
                rest /= cap + 1;
            }
            cs_accept[cs] = spec.rules.iter().all(|r| {
                r.counters.iter().filter(|&&k| counts[k] >= caps[k]).count() >= r.at_least
            });
            for (a, &(mask, _)) in atom_key.iter().enumerate() {
                let mut next = cs;
                for (k, cap) in caps.iter().enumerate() {
                    if mask & (1u64 << k) != 0 && counts[k] < *cap {
                        next += strides[k];
                    }
                }
                cs_next[cs * n_atoms + a] = next as u32;
            }
        }

        let mut trans = vec![dead; (n_states + 1) * n_atoms];
        let mut accept = vec![false; n_states + 1];
        for cs in 0..n_cs {
            for q in 0..q_count {
                let s = cs * q_count + q;
                accept[s] = cs_accept[cs] && !auto.is_terminal(q);
                if auto.is_terminal(q) {
                    continue; // unreachable in valid strings; all successors stay dead
                }
                for (a, &(_, sym)) in atom_key.iter().enumerate() {
                    let q2 = auto.next(q, sym);
                    if !auto.is_terminal(q2) {
                        let cs2 = cs_next[cs * n_atoms + a] as usize;
                        trans[s * n_atoms + a] = (cs2 * q_count + q2) as u32;
                    }
                }
            }
        }

        let free = free_states(&trans, &accept, n_states, n_atoms);

        let init = 0u32;
        let table = CountTable::fill(
            &Shape {
                length,
                n_states,
                n_atoms,
                trans: &trans,
                accept: &accept,
                atom_size: &atom_size,
                bits_per_char,
                width,
                init: init as usize,
            },
            keep_table,
        );
        let total = table.total();
        let log2_count = bigint::log2(total);
        let acceptance = if bigint::is_zero(total) {
            0.0
        } else {
            (log2_count - length as f64 * (n as f64).log2()).exp2()
        };
        if !table.is_complete() && !bigint::is_zero(total) && acceptance < REJECTION_THRESHOLD {
            // The exact sampler needs the whole table, which is over budget.
            return Err(EngineError::TooComplex {
                limit: ComplexityLimit::TableWords,
                needed: words,
                max: MAX_TABLE_WORDS,
            });
        }
        let method = if acceptance >= REJECTION_THRESHOLD {
            Method::Rejection
        } else {
            Method::Exact
        };

        let mut byte_index = [0u8; 256];
        let byte_limit = (256 / n * n) as u16;
        let mut byte_atom = [0u16; 256];
        for (b, slot) in byte_index.iter_mut().enumerate() {
            *slot = (b % n) as u8;
            byte_atom[b] = char_atom[b % n] as u16;
        }
        let trans_pm: Vec<u32> = trans.iter().map(|&t| t * n_atoms as u32).collect();
        // At most 256 characters, so at most 256 atoms.
        let mut char_atom16 = [0u16; 256];
        for (slot, &a) in char_atom16.iter_mut().zip(&char_atom) {
            *slot = a as u16;
        }
        let packed = (spec.forbidden.is_empty() && spec.counters.len() <= 8 && length <= 255)
            .then(|| Packed::new(spec));

        Ok(Engine {
            length,
            alphabet: spec.alphabet.to_vec(),
            atom_chars,
            atom_start,
            atom_size,
            n_atoms,
            n_states,
            trans,
            accept,
            free,
            init,
            table,
            char_atom16,
            byte_index,
            byte_atom,
            byte_limit,
            packed,
            max_bytes: spec
                .alphabet
                .iter()
                .map(|c| c.len_utf8())
                .max()
                .unwrap_or(1)
                * length,
            trans_pm,
            log2_count,
            acceptance,
            method,
        })
    }

    pub(crate) fn is_satisfiable(&self) -> bool {
        !bigint::is_zero(self.table.total())
    }

    pub(crate) fn log2_count(&self) -> f64 {
        self.log2_count
    }

    pub(crate) fn acceptance(&self) -> f64 {
        self.acceptance
    }

    pub(crate) fn method(&self) -> Method {
        self.method
    }

    /// The exact number of valid passwords, as little-endian 64-bit limbs.
    pub(crate) fn count_limbs(&self) -> &[u64] {
        self.table.total()
    }

    /// Worst-case UTF-8 size of a password.
    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Runs the automaton over a string of alphabet indices; true if it is valid.
    #[cfg(test)]
    pub(crate) fn accepts_indices(&self, idx: &[usize]) -> bool {
        let mut s = self.init as usize;
        for &i in idx {
            s = self.trans[s * self.n_atoms + usize::from(self.char_atom16[i])] as usize;
        }
        idx.len() == self.length && self.accept[s]
    }

    pub(crate) fn alphabet(&self) -> &[char] {
        &self.alphabet
    }

    /// Appends one valid password to `out` using the policy's chosen method.
    pub(crate) fn generate<R: RngCore + ?Sized>(&self, rng: &mut R, out: &mut String) {
        match self.method {
            Method::Rejection => self.generate_rejection(rng, out),
            Method::Exact => self.generate_exact(rng, out),
        }
    }

    /// Rejection sampling of whole candidates: draw `length` independent uniform
    /// characters, accept if the automaton ends in an accepting state, else retry.
    ///
    /// Characters come from single bytes when at most 4 of the 256 byte values are
    /// rejected (a byte below the largest multiple of the alphabet size, reduced
    /// modulo it through `byte_index`), otherwise from 16-bit Lemire draws; the
    /// candidate is checked with the packed counters when they apply, otherwise by
    /// stepping the automaton. One loop ([`sample::rejection`]) serves all four.
    pub(crate) fn generate_rejection<R: RngCore + ?Sized>(&self, rng: &mut R, out: &mut String) {
        const STACK: usize = 128;
        let mut stack = [0u8; STACK];
        let mut heap;
        let idx: &mut [u8] = if self.length <= STACK {
            &mut stack[..self.length]
        } else {
            heap = zeroize::Zeroizing::new(vec![0u8; self.length]);
            &mut heap[..]
        };
        let n = self.alphabet.len();
        let bytes = 256 % n <= 4;
        let automaton = |atom_of| AutomatonCheck {
            atom_of,
            trans_pm: &self.trans_pm,
            accept: &self.accept,
            init: self.init as usize,
            n_atoms: self.n_atoms,
        };
        match (&self.packed, bytes) {
            (Some(packed), true) => {
                let check = PackedCheck {
                    inc: &packed.byte_inc,
                    packed,
                };
                let src = ByteSource::new(self.byte_limit);
                sample::rejection(rng, src, &check, &self.byte_index, idx);
            }
            (Some(packed), false) => {
                let check = PackedCheck {
                    inc: &packed.char_inc,
                    packed,
                };
                let src = U16Source::new(n as u32);
                sample::rejection(rng, src, &check, &IDENTITY, idx);
            }
            (None, true) => {
                let check = automaton(&self.byte_atom);
                let src = ByteSource::new(self.byte_limit);
                sample::rejection(rng, src, &check, &self.byte_index, idx);
            }
            (None, false) => {
                let check = automaton(&self.char_atom16);
                let src = U16Source::new(n as u32);
                sample::rejection(rng, src, &check, &IDENTITY, idx);
            }
        }
        for &i in idx.iter() {
            out.push(self.alphabet[i as usize]);
        }
        idx.zeroize();
    }

    /// Exact sampling by walking the counting table: from state `s` with `l`
    /// characters left, choose the next character `c` with probability
    /// `count(l-1, next(s, c)) / count(l, s)`. Counts below 2^128 use native
    /// integers, larger ones big integers.
    pub(crate) fn generate_exact<R: RngCore + ?Sized>(&self, rng: &mut R, out: &mut String) {
        if self.table.width() <= 2 {
            self.walk(rng, &mut NativeWalker::default(), out);
        } else {
            self.generate_exact_big(rng, out);
        }
    }

    /// [`Engine::generate_exact`] with big integers of any width.
    pub(crate) fn generate_exact_big<R: RngCore + ?Sized>(&self, rng: &mut R, out: &mut String) {
        self.walk(rng, &mut BigWalker::new(self.table.width()), out);
    }

    /// The exact walk, once for every integer representation.
    fn walk<R: RngCore + ?Sized, W: Walker>(&self, rng: &mut R, w: &mut W, out: &mut String) {
        let na = self.n_atoms;
        let mut s = self.init as usize;
        let mut l = self.length;
        while l > 0 {
            if self.free[s] {
                // Every completion is valid: the remaining characters are independent
                // and uniform over the whole alphabet.
                for _ in 0..l {
                    let i = bigint::uniform_u32(rng, self.alphabet.len() as u32) as usize;
                    out.push(self.alphabet[i]);
                }
                break;
            }
            w.draw(rng, self.table.at(l, s));
            let mut chosen = None;
            for a in 0..na {
                let t = self.trans[s * na + a] as usize;
                if t != self.n_states && w.take(self.table.at(l - 1, t), self.atom_size[a]) {
                    chosen = Some((a, t));
                    break;
                }
            }
            // `r < count(l, s)` = the sum of all weights, so some atom is chosen; the
            // fallback keeps the function total without a panic path.
            let Some((a, t)) = chosen else { break };
            let k = bigint::uniform_u32(rng, self.atom_size[a] as u32) as usize;
            let i = self.atom_chars[self.atom_start[a] + k] as usize;
            out.push(self.alphabet[i]);
            s = t;
            l -= 1;
        }
    }
}

/// States from which every continuation is valid (the greatest fixpoint of
/// "accepting, and every successor free").
fn free_states(trans: &[u32], accept: &[bool], n_states: usize, n_atoms: usize) -> Vec<bool> {
    let mut free: Vec<bool> = accept.to_vec();
    loop {
        let mut changed = false;
        for s in 0..n_states {
            if free[s]
                && (0..n_atoms).any(|a| {
                    let t = trans[s * n_atoms + a] as usize;
                    t == n_states || !free[t]
                })
            {
                free[s] = false;
                changed = true;
            }
        }
        if !changed {
            return free;
        }
    }
}

/// The 16-bit path's codes are alphabet indices already.
static IDENTITY: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t
};
