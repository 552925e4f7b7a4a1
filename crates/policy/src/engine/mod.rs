//! The compiled form of a policy: a finite automaton over "atoms" of the alphabet, an
//! exact table of completion counts, and the two samplers.
//!
//! See the crate documentation ("Algorithm") for the construction and the proofs.

use std::collections::BTreeMap;

use rand::RngCore;
use zeroize::Zeroize;

use crate::bigint;
use crate::error::ComplexityLimit;

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

/// Counting in 8-bit lanes of a `u64`, one lane per counter: adding a character is
/// one add (no dependency on a lookup), and the final check is a table lookup on the
/// mask of counters that reached their minimum.
struct Packed {
    /// Alphabet index -> lane increments.
    char_inc: Vec<u64>,
    /// Byte -> lane increments of `byte_index[b]`.
    byte_inc: [u64; 256],
    mins: Vec<u8>,
    /// Met-counters mask -> every rule met.
    accept_mask: Vec<bool>,
}

impl Packed {
    #[inline]
    fn accepts(&self, acc: u64) -> bool {
        let mut mask = 0usize;
        for (k, &m) in self.mins.iter().enumerate() {
            if ((acc >> (8 * k)) & 0xff) as u8 >= m {
                mask |= 1 << k;
            }
        }
        self.accept_mask[mask]
    }
}

/// Bytes shifted out of 64-bit draws.
#[derive(Default)]
struct ByteSource {
    word: u64,
    left: u32,
}

impl ByteSource {
    /// A uniform byte below `limit` (by rejection), as an index.
    #[inline(always)]
    fn below<R: RngCore + ?Sized>(&mut self, rng: &mut R, limit: u16) -> usize {
        loop {
            if self.left == 0 {
                self.word = rng.next_u64();
                self.left = 8;
            }
            let b = self.word as u8;
            self.word >>= 8;
            self.left -= 1;
            if u16::from(b) < limit {
                return b as usize;
            }
        }
    }
}

/// 16-bit values shifted out of 64-bit draws.
#[derive(Default)]
struct U16Source {
    word: u64,
    left: u32,
}

impl U16Source {
    /// A uniform integer below `n` (Lemire; `threshold = (65536 - n) % n`).
    #[inline(always)]
    fn uniform<R: RngCore + ?Sized>(&mut self, rng: &mut R, n: u32, threshold: u32) -> usize {
        loop {
            if self.left == 0 {
                self.word = rng.next_u64();
                self.left = 4;
            }
            let x = (self.word & 0xffff) as u32;
            self.word >>= 16;
            self.left -= 1;
            let m = x * n;
            if (m & 0xffff) >= threshold {
                return (m >> 16) as usize;
            }
        }
    }
}

pub(crate) struct Engine {
    length: usize,
    alphabet: Vec<char>,
    /// Alphabet index -> atom index.
    char_atom: Vec<u32>,
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
    /// Limbs per table entry.
    width: usize,
    /// `table[(l * n_states + s) * width ..][..width]`: valid completions of `l`
    /// characters from state `s`. Empty when it exceeds the budget and rejection
    /// is used (then only `count` is kept).
    table: Vec<u64>,
    /// Valid passwords: `C(length, init)`.
    count: Vec<u64>,
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

/// A complete Aho–Corasick automaton over symbol classes: symbol 0 is "any character
/// in no forbidden substring", the others are the distinct folded characters.
struct Automaton {
    n_symbols: usize,
    /// `goto[q * n_symbols + sym]`.
    goto: Vec<u32>,
    /// Whether reaching the node means a forbidden substring just ended.
    terminal: Vec<bool>,
    symbol_of: BTreeMap<char, u32>,
}

impl Automaton {
    fn build(forbidden: &[Vec<char>]) -> Self {
        let mut symbol_of = BTreeMap::new();
        for tok in forbidden {
            for &c in tok {
                let next = symbol_of.len() as u32 + 1;
                symbol_of.entry(c).or_insert(next);
            }
        }
        let n_symbols = symbol_of.len() + 1;
        const NONE: u32 = u32::MAX;
        let mut goto: Vec<u32> = vec![NONE; n_symbols];
        let mut terminal = vec![false];
        for tok in forbidden {
            let mut q = 0usize;
            for c in tok {
                let s = symbol_of.get(c).copied().unwrap_or(0) as usize;
                let nxt = goto[q * n_symbols + s];
                q = if nxt == NONE {
                    let id = terminal.len();
                    terminal.push(false);
                    goto.extend(std::iter::repeat_n(NONE, n_symbols));
                    goto[q * n_symbols + s] = id as u32;
                    id
                } else {
                    nxt as usize
                };
            }
            terminal[q] = true;
        }
        // Breadth-first completion with failure links.
        let n = terminal.len();
        let mut fail = vec![0u32; n];
        let mut queue = std::collections::VecDeque::new();
        for slot in goto.iter_mut().take(n_symbols) {
            if *slot == NONE {
                *slot = 0;
            } else {
                fail[*slot as usize] = 0;
                queue.push_back(*slot as usize);
            }
        }
        while let Some(u) = queue.pop_front() {
            let fu = fail[u] as usize;
            terminal[u] = terminal[u] || terminal[fu];
            for s in 0..n_symbols {
                let v = goto[u * n_symbols + s];
                let via_fail = goto[fu * n_symbols + s];
                if v == NONE {
                    goto[u * n_symbols + s] = via_fail;
                } else {
                    fail[v as usize] = via_fail;
                    queue.push_back(v as usize);
                }
            }
        }
        Automaton {
            n_symbols,
            goto,
            terminal,
            symbol_of,
        }
    }

    fn states(&self) -> usize {
        self.terminal.len()
    }
}

impl Engine {
    pub(crate) fn build(spec: &EngineSpec<'_>) -> Result<Engine, EngineError> {
        let length = spec.length;
        let n = spec.alphabet.len();
        let auto = Automaton::build(spec.forbidden);

        // Atoms: characters with identical counter membership and automaton symbol.
        let mut groups: BTreeMap<(u64, u32), Vec<u16>> = BTreeMap::new();
        for (i, &c) in spec.alphabet.iter().enumerate() {
            let sym = auto.symbol_of.get(&fold(c)).copied().unwrap_or(0);
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
                accept[s] = cs_accept[cs] && !auto.terminal[q];
                if auto.terminal[q] {
                    continue; // unreachable in valid strings; all successors stay dead
                }
                for (a, &(_, sym)) in atom_key.iter().enumerate() {
                    let q2 = auto.goto[q * auto.n_symbols + sym as usize] as usize;
                    if !auto.terminal[q2] {
                        let cs2 = cs_next[cs * n_atoms + a] as usize;
                        trans[s * n_atoms + a] = (cs2 * q_count + q2) as u32;
                    }
                }
            }
        }

        // Free states (greatest fixpoint): accepting, and every successor free.
        let mut free: Vec<bool> = accept.clone();
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
                break;
            }
        }

        // Counting table. Entries of layer `l` are at most n^l, so only the low
        // `bits_per_char * l / 64 + 1` limbs can be non-zero.
        let layer = n_states * width;
        let stored_layers = if keep_table { length + 1 } else { 2 };
        let mut table = vec![0u64; stored_layers * layer];
        for s in 0..n_states {
            if accept[s] {
                table[s * width] = 1;
            }
        }
        for l in 1..=length {
            let wl = (bits_per_char * l / 64 + 1).min(width);
            let (cur_at, prev_at) = if keep_table {
                (l * layer, (l - 1) * layer)
            } else {
                ((l % 2) * layer, ((l - 1) % 2) * layer)
            };
            let (prev, cur) = if prev_at < cur_at {
                let (a, b) = table.split_at_mut(cur_at);
                (&a[prev_at..prev_at + layer], &mut b[..layer])
            } else {
                let (a, b) = table.split_at_mut(prev_at);
                (&b[..layer], &mut a[cur_at..cur_at + layer])
            };
            for s in 0..n_states {
                let acc = &mut cur[s * width..(s + 1) * width];
                acc.fill(0);
                let acc = &mut acc[..wl];
                for a in 0..n_atoms {
                    let t = trans[s * n_atoms + a] as usize;
                    if t == n_states {
                        continue;
                    }
                    bigint::mul_small_add(acc, &prev[t * width..t * width + wl], atom_size[a]);
                }
            }
        }

        // Initial state: counters all zero, automaton at its root.
        let init = 0u32;
        let last = if keep_table { length } else { length % 2 };
        let count: Vec<u64> = table[last * layer + init as usize * width..][..width].to_vec();
        let total = &count[..];
        let log2_count = bigint::log2(total);
        let acceptance = if bigint::is_zero(total) {
            0.0
        } else {
            (log2_count - length as f64 * (n as f64).log2()).exp2()
        };
        if !keep_table && !bigint::is_zero(total) && acceptance < REJECTION_THRESHOLD {
            // The exact sampler needs the whole table, which is over budget.
            return Err(EngineError::TooComplex {
                limit: ComplexityLimit::TableWords,
                needed: words,
                max: MAX_TABLE_WORDS,
            });
        }
        if !keep_table {
            table = Vec::new();
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
        let packed = if spec.forbidden.is_empty() && spec.counters.len() <= 8 && length <= 255 {
            let char_inc: Vec<u64> = spec
                .char_counters
                .iter()
                .map(|&mask| {
                    (0..spec.counters.len())
                        .filter(|k| mask & (1u64 << k) != 0)
                        .map(|k| 1u64 << (8 * k))
                        .sum()
                })
                .collect();
            let mut byte_inc = [0u64; 256];
            for (b, slot) in byte_inc.iter_mut().enumerate() {
                *slot = char_inc[b % n];
            }
            let k = spec.counters.len();
            let accept_mask = (0..1usize << k)
                .map(|m| {
                    spec.rules.iter().all(|r| {
                        r.counters.iter().filter(|&&c| m & (1 << c) != 0).count() >= r.at_least
                    })
                })
                .collect();
            Some(Packed {
                char_inc,
                byte_inc,
                mins: spec.counters.iter().map(|c| c.min as u8).collect(),
                accept_mask,
            })
        } else {
            None
        };

        Ok(Engine {
            length,
            alphabet: spec.alphabet.to_vec(),
            char_atom,
            atom_chars,
            atom_start,
            atom_size,
            n_atoms,
            n_states,
            trans,
            accept,
            free,
            init,
            width,
            table,
            count,
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
        !bigint::is_zero(&self.count)
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
        &self.count
    }

    fn count_at(&self, l: usize, s: usize) -> &[u64] {
        let off = (l * self.n_states + s) * self.width;
        &self.table[off..off + self.width]
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
            s = self.trans[s * self.n_atoms + self.char_atom[i] as usize] as usize;
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
        if 256 % self.alphabet.len() <= 4 {
            self.fill_candidates_bytes(rng, idx);
        } else {
            self.fill_candidates_u16(rng, idx);
        }
        for &i in idx.iter() {
            out.push(self.alphabet[i as usize]);
        }
        idx.zeroize();
    }

    /// Candidates from single bytes (used when at most 4 of 256 byte values are
    /// rejected): a byte below the largest multiple of the alphabet size, modulo it.
    /// Bytes are taken from 64-bit draws, so only what is needed is drawn.
    fn fill_candidates_bytes<R: RngCore + ?Sized>(&self, rng: &mut R, idx: &mut [u8]) {
        let mut src = ByteSource::default();
        let limit = self.byte_limit;
        if let Some(p) = &self.packed {
            loop {
                let mut acc = 0u64;
                for slot in idx.iter_mut() {
                    let b = src.below(rng, limit);
                    acc += p.byte_inc[b];
                    *slot = self.byte_index[b];
                }
                if p.accepts(acc) {
                    break;
                }
            }
        } else {
            let na = self.n_atoms;
            let init = self.init as usize * na;
            loop {
                let mut s = init;
                for slot in idx.iter_mut() {
                    let b = src.below(rng, limit);
                    s = self.trans_pm[s + self.byte_atom[b] as usize] as usize;
                    *slot = self.byte_index[b];
                }
                if self.accept[s / na] {
                    break;
                }
            }
        }
        src.word.zeroize();
    }

    /// Candidates from 16-bit draws with Lemire's exact multiply-and-reject (rejects
    /// fewer than `n / 65536` of the draws).
    fn fill_candidates_u16<R: RngCore + ?Sized>(&self, rng: &mut R, idx: &mut [u8]) {
        let mut src = U16Source::default();
        let n = self.alphabet.len() as u32;
        let threshold = (65536 - n) % n;
        if let Some(p) = &self.packed {
            loop {
                let mut acc = 0u64;
                for slot in idx.iter_mut() {
                    let i = src.uniform(rng, n, threshold);
                    acc += p.char_inc[i];
                    *slot = i as u8;
                }
                if p.accepts(acc) {
                    break;
                }
            }
        } else {
            let na = self.n_atoms;
            let init = self.init as usize * na;
            loop {
                let mut s = init;
                for slot in idx.iter_mut() {
                    let i = src.uniform(rng, n, threshold);
                    s = self.trans_pm[s + self.char_atom[i] as usize] as usize;
                    *slot = i as u8;
                }
                if self.accept[s / na] {
                    break;
                }
            }
        }
        src.word.zeroize();
    }

    fn count_u128(&self, l: usize, s: usize) -> u128 {
        let c = self.count_at(l, s);
        u128::from(c[0]) | (c.get(1).map_or(0, |&h| u128::from(h)) << 64)
    }

    /// [`Engine::generate_exact`] for counts below 2^128: the same walk in native
    /// integers, without allocation.
    fn generate_exact_u128<R: RngCore + ?Sized>(&self, rng: &mut R, out: &mut String) {
        let na = self.n_atoms;
        let mut s = self.init as usize;
        let mut l = self.length;
        let mut r: u128 = 0;
        while l > 0 {
            if self.free[s] {
                for _ in 0..l {
                    let i = bigint::uniform_u32(rng, self.alphabet.len() as u32) as usize;
                    out.push(self.alphabet[i]);
                }
                break;
            }
            let total = self.count_u128(l, s);
            let bits = 128 - total.leading_zeros();
            let mask = if bits == 128 {
                u128::MAX
            } else {
                (1u128 << bits) - 1
            };
            r = loop {
                let x = if bits <= 64 {
                    u128::from(rng.next_u64())
                } else {
                    u128::from(rng.next_u64()) | (u128::from(rng.next_u64()) << 64)
                } & mask;
                if x < total {
                    break x;
                }
            };
            let mut chosen = None;
            for a in 0..na {
                let t = self.trans[s * na + a] as usize;
                if t == self.n_states {
                    continue;
                }
                let w = self.count_u128(l - 1, t) * u128::from(self.atom_size[a]);
                if r < w {
                    chosen = Some((a, t));
                    break;
                }
                r -= w;
            }
            let Some((a, t)) = chosen else { break };
            let k = bigint::uniform_u32(rng, self.atom_size[a] as u32) as usize;
            let i = self.atom_chars[self.atom_start[a] + k] as usize;
            out.push(self.alphabet[i]);
            s = t;
            l -= 1;
        }
        r.zeroize();
    }

    /// Exact sampling by walking the counting table: from state `s` with `l`
    /// characters left, choose the next character `c` with probability
    /// `count(l-1, next(s, c)) / count(l, s)`.
    pub(crate) fn generate_exact<R: RngCore + ?Sized>(&self, rng: &mut R, out: &mut String) {
        if self.width <= 2 {
            self.generate_exact_u128(rng, out);
        } else {
            self.generate_exact_big(rng, out);
        }
    }

    /// [`Engine::generate_exact`] with big integers of any width.
    pub(crate) fn generate_exact_big<R: RngCore + ?Sized>(&self, rng: &mut R, out: &mut String) {
        let w = self.width;
        let mut r = zeroize::Zeroizing::new(vec![0u64; w]);
        let mut weight = zeroize::Zeroizing::new(vec![0u64; w]);
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
            bigint::random_below(rng, self.count_at(l, s), &mut r);
            let mut chosen = None;
            for a in 0..na {
                let t = self.trans[s * na + a] as usize;
                if t == self.n_states {
                    continue;
                }
                bigint::mul_small(&mut weight, self.count_at(l - 1, t), self.atom_size[a]);
                if bigint::cmp(&r, &weight) == core::cmp::Ordering::Less {
                    chosen = Some((a, t));
                    break;
                }
                bigint::sub_assign(&mut r, &weight);
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
