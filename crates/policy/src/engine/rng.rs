//! Uniform alphabet indices from a random generator: single bytes (with rejection of
//! the top bytes) or 16-bit Lemire draws, both shifted out of 64-bit draws so that
//! only what is needed is drawn.

use rand::RngCore;
use zeroize::Zeroize;

/// A source of uniform codes. A code indexes the sampler's 256-entry tables: a
/// raw byte for [`ByteSource`], an alphabet index (below 256) for [`U16Source`].
pub(super) trait CodeSource {
    /// The next uniform code.
    fn next<R: RngCore + ?Sized>(&mut self, rng: &mut R) -> u8;
}

/// Bytes below `limit` (a multiple of the alphabet size), by rejection.
pub(super) struct ByteSource {
    word: u64,
    left: u32,
    limit: u16,
}

impl ByteSource {
    pub(super) fn new(limit: u16) -> Self {
        ByteSource {
            word: 0,
            left: 0,
            limit,
        }
    }
}

impl CodeSource for ByteSource {
    #[inline(always)]
    fn next<R: RngCore + ?Sized>(&mut self, rng: &mut R) -> u8 {
        loop {
            if self.left == 0 {
                self.word = rng.next_u64();
                self.left = 8;
            }
            let b = self.word as u8;
            self.word >>= 8;
            self.left -= 1;
            if u16::from(b) < self.limit {
                return b;
            }
        }
    }
}

impl Drop for ByteSource {
    fn drop(&mut self) {
        self.word.zeroize();
    }
}

/// Uniform integers below `n` from 16-bit values (Lemire's multiply-and-reject with
/// `threshold = (65536 - n) % n`; rejects fewer than `n / 65536` of the draws).
pub(super) struct U16Source {
    word: u64,
    left: u32,
    n: u32,
    threshold: u32,
}

impl U16Source {
    pub(super) fn new(n: u32) -> Self {
        U16Source {
            word: 0,
            left: 0,
            n,
            threshold: (65536 - n) % n,
        }
    }
}

impl CodeSource for U16Source {
    #[inline(always)]
    fn next<R: RngCore + ?Sized>(&mut self, rng: &mut R) -> u8 {
        loop {
            if self.left == 0 {
                self.word = rng.next_u64();
                self.left = 4;
            }
            let x = (self.word & 0xffff) as u32;
            self.word >>= 16;
            self.left -= 1;
            let m = x * self.n;
            if (m & 0xffff) >= self.threshold {
                // `m >> 16 < n <= 256`.
                return (m >> 16) as u8;
            }
        }
    }
}

impl Drop for U16Source {
    fn drop(&mut self) {
        self.word.zeroize();
    }
}
