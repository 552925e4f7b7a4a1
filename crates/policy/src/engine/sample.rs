//! The two samplers: rejection of whole uniform candidates, and the exact walk
//! down the counting table. Each loop is written once, generic over where the
//! randomness comes from and how a candidate is checked (or how big the counts are).

use rand::RngCore;
use zeroize::Zeroizing;

use super::rng::CodeSource;
use crate::bigint;

/// Checks a candidate one code at a time (see [`super::rng::CodeSource`] for what a
/// code is).
pub(super) trait Checker {
    type State: Copy;
    fn start(&self) -> Self::State;
    fn step(&self, state: Self::State, code: u8) -> Self::State;
    fn accepts(&self, state: Self::State) -> bool;
}

/// Counting in 8-bit lanes of a `u64`, one lane per counter: adding a character is
/// one add (no dependency on a lookup), and the final check is a table lookup on the
/// mask of counters that reached their minimum. Usable without forbidden
/// substrings, with at most 8 counters and length at most 255.
pub(super) struct Packed {
    /// Alphabet index -> lane increments (256 entries, zero past the alphabet).
    pub(super) char_inc: [u64; 256],
    /// Byte -> lane increments of the byte's alphabet index.
    pub(super) byte_inc: [u64; 256],
    pub(super) mins: Vec<u8>,
    /// Met-counters mask -> every rule met.
    pub(super) accept_mask: Vec<bool>,
}

impl Packed {
    /// The lanes for `spec`'s counters; the caller checks that they fit (at most 8
    /// counters, length at most 255, no forbidden substrings).
    pub(super) fn new(spec: &super::EngineSpec<'_>) -> Packed {
        let k = spec.counters.len();
        let mut char_inc = [0u64; 256];
        for (slot, &mask) in char_inc.iter_mut().zip(spec.char_counters) {
            *slot = (0..k)
                .filter(|j| mask & (1u64 << j) != 0)
                .map(|j| 1u64 << (8 * j))
                .sum();
        }
        let n = spec.char_counters.len();
        let mut byte_inc = [0u64; 256];
        for (b, slot) in byte_inc.iter_mut().enumerate() {
            *slot = char_inc[b % n];
        }
        let accept_mask = (0..1usize << k)
            .map(|m| {
                spec.rules.iter().all(|r| {
                    r.counters.iter().filter(|&&c| m & (1 << c) != 0).count() >= r.at_least
                })
            })
            .collect();
        Packed {
            char_inc,
            byte_inc,
            mins: spec.counters.iter().map(|c| c.min as u8).collect(),
            accept_mask,
        }
    }
}

/// [`Packed`] counting, with the increments indexed by code.
pub(super) struct PackedCheck<'a> {
    pub(super) inc: &'a [u64; 256],
    pub(super) packed: &'a Packed,
}

impl Checker for PackedCheck<'_> {
    type State = u64;

    #[inline(always)]
    fn start(&self) -> u64 {
        0
    }

    #[inline(always)]
    fn step(&self, acc: u64, code: u8) -> u64 {
        acc + self.inc[usize::from(code)]
    }

    #[inline]
    fn accepts(&self, acc: u64) -> bool {
        let mut mask = 0usize;
        for (k, &m) in self.packed.mins.iter().enumerate() {
            if ((acc >> (8 * k)) & 0xff) as u8 >= m {
                mask |= 1 << k;
            }
        }
        self.packed.accept_mask[mask]
    }
}

/// The automaton run, with atoms indexed by code and transitions pre-multiplied
/// by the number of atoms (`trans_pm[s * n_atoms + a] = next * n_atoms`).
pub(super) struct AutomatonCheck<'a> {
    pub(super) atom_of: &'a [u16; 256],
    pub(super) trans_pm: &'a [u32],
    pub(super) accept: &'a [bool],
    pub(super) init: usize,
    pub(super) n_atoms: usize,
}

impl Checker for AutomatonCheck<'_> {
    type State = usize;

    #[inline(always)]
    fn start(&self) -> usize {
        self.init * self.n_atoms
    }

    #[inline(always)]
    fn step(&self, s: usize, code: u8) -> usize {
        self.trans_pm[s + usize::from(self.atom_of[usize::from(code)])] as usize
    }

    #[inline]
    fn accepts(&self, s: usize) -> bool {
        self.accept[s / self.n_atoms]
    }
}

/// Rejection sampling: fills `idx` with alphabet indices (`index_of[code]`) of
/// independent uniform characters until the whole candidate is accepted.
#[inline(always)]
pub(super) fn rejection<R, S, C>(
    rng: &mut R,
    mut src: S,
    check: &C,
    index_of: &[u8; 256],
    idx: &mut [u8],
) where
    R: RngCore + ?Sized,
    S: CodeSource,
    C: Checker,
{
    loop {
        let mut state = check.start();
        for slot in idx.iter_mut() {
            let code = src.next(rng);
            state = check.step(state, code);
            *slot = index_of[usize::from(code)];
        }
        if check.accepts(state) {
            return;
        }
    }
}

/// The random number `r` of the exact walk, in some integer representation.
pub(super) trait Walker {
    /// `r` := a uniform integer below `total` (non-zero).
    fn draw<R: RngCore + ?Sized>(&mut self, rng: &mut R, total: &[u64]);
    /// With `w = count · size`: true if `r < w`; otherwise `r -= w`, false.
    fn take(&mut self, count: &[u64], size: u64) -> bool;
}

/// Counts below 2^128, in native integers (no allocation).
#[derive(Default)]
pub(super) struct NativeWalker {
    r: u128,
}

impl Drop for NativeWalker {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.r);
    }
}

#[inline]
fn to_u128(c: &[u64]) -> u128 {
    u128::from(c[0]) | (c.get(1).map_or(0, |&h| u128::from(h)) << 64)
}

impl Walker for NativeWalker {
    #[inline]
    fn draw<R: RngCore + ?Sized>(&mut self, rng: &mut R, total: &[u64]) {
        let total = to_u128(total);
        let bits = 128 - total.leading_zeros();
        let mask = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        self.r = loop {
            let x = if bits <= 64 {
                u128::from(rng.next_u64())
            } else {
                u128::from(rng.next_u64()) | (u128::from(rng.next_u64()) << 64)
            } & mask;
            if x < total {
                break x;
            }
        };
    }

    #[inline]
    fn take(&mut self, count: &[u64], size: u64) -> bool {
        let w = to_u128(count) * u128::from(size);
        if self.r < w {
            return true;
        }
        self.r -= w;
        false
    }
}

/// Counts of any width (zeroized scratch buffers).
pub(super) struct BigWalker {
    r: Zeroizing<Vec<u64>>,
    weight: Zeroizing<Vec<u64>>,
}

impl BigWalker {
    pub(super) fn new(width: usize) -> Self {
        BigWalker {
            r: Zeroizing::new(vec![0; width]),
            weight: Zeroizing::new(vec![0; width]),
        }
    }
}

impl Walker for BigWalker {
    fn draw<R: RngCore + ?Sized>(&mut self, rng: &mut R, total: &[u64]) {
        bigint::random_below(rng, total, &mut self.r);
    }

    fn take(&mut self, count: &[u64], size: u64) -> bool {
        bigint::mul_small(&mut self.weight, count, size);
        if bigint::cmp(&self.r, &self.weight) == core::cmp::Ordering::Less {
            return true;
        }
        bigint::sub_assign(&mut self.r, &self.weight);
        false
    }
}
