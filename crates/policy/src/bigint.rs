//! Fixed-width unsigned big integers, just what exact counting needs.
//!
//! Numbers are little-endian slices of `u64` limbs. Every slice of one table has the
//! same width, chosen at construction so that no intermediate value can overflow
//! (every count is at most `|alphabet|^length`).

use core::cmp::Ordering;

use rand::RngCore;

/// `acc += src * m`. The caller guarantees the result fits in `acc.len()` limbs.
pub(crate) fn mul_small_add(acc: &mut [u64], src: &[u64], m: u64) {
    let mut carry: u128 = 0;
    for (a, &s) in acc.iter_mut().zip(src) {
        let t = u128::from(*a) + u128::from(s) * u128::from(m) + carry;
        *a = t as u64;
        carry = t >> 64;
    }
    // Any carry beyond the width would be an overflow, excluded by the width choice.
    debug_assert_eq!(carry, 0);
}

/// `out = src * m` (overwrites `out`).
pub(crate) fn mul_small(out: &mut [u64], src: &[u64], m: u64) {
    out.fill(0);
    mul_small_add(out, src, m);
}

/// Three-way comparison of two numbers of equal width.
pub(crate) fn cmp(a: &[u64], b: &[u64]) -> Ordering {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        match x.cmp(y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

/// `a -= b`; the caller guarantees `a >= b`.
pub(crate) fn sub_assign(a: &mut [u64], b: &[u64]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        *x = d2;
        borrow = b1 || b2;
    }
    debug_assert!(!borrow);
}

/// Whether the number is zero.
pub(crate) fn is_zero(a: &[u64]) -> bool {
    a.iter().all(|&x| x == 0)
}

/// Number of significant bits.
pub(crate) fn bit_len(a: &[u64]) -> u32 {
    for (i, &x) in a.iter().enumerate().rev() {
        if x != 0 {
            return 64 * i as u32 + (64 - x.leading_zeros());
        }
    }
    0
}

/// log2 of a non-zero number, accurate to `f64` precision (the top 128 bits are used).
pub(crate) fn log2(a: &[u64]) -> f64 {
    let bits = bit_len(a);
    if bits == 0 {
        return f64::NEG_INFINITY;
    }
    if bits <= 64 {
        return (a[0] as f64).log2();
    }
    let top = ((bits - 1) / 64) as usize;
    // Combine the top limb with the one below it: value ≈ (hi·2^64 + lo)·2^(64·(top-1)).
    let hi = a[top] as f64;
    let lo = a[top - 1] as f64;
    let mantissa = hi * 18_446_744_073_709_551_616.0 + lo;
    mantissa.log2() + 64.0 * (top as f64 - 1.0)
}

/// Sets `out` to a uniformly random number in `[0, bound)` (`bound` non-zero), by
/// drawing `bit_len(bound)` random bits and rejecting values `>= bound` (each try
/// succeeds with probability above 1/2).
pub(crate) fn random_below<R: RngCore + ?Sized>(rng: &mut R, bound: &[u64], out: &mut [u64]) {
    let bits = bit_len(bound);
    debug_assert!(bits > 0);
    let limbs = bits.div_ceil(64) as usize;
    let top_bits = bits - 64 * (limbs as u32 - 1);
    let mask = if top_bits == 64 {
        u64::MAX
    } else {
        (1u64 << top_bits) - 1
    };
    out.fill(0);
    loop {
        for x in out.iter_mut().take(limbs) {
            *x = rng.next_u64();
        }
        out[limbs - 1] &= mask;
        if cmp(out, bound) == Ordering::Less {
            return;
        }
    }
}

/// Uniform integer in `[0, n)` for `n >= 1`, exact (Lemire's multiply-and-reject).
pub(crate) fn uniform_u32<R: RngCore + ?Sized>(rng: &mut R, n: u32) -> u32 {
    debug_assert!(n > 0);
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u64::from(rng.next_u32()) * u64::from(n);
        if (m as u32) >= threshold {
            return (m >> 32) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn from_u128(v: u128, w: usize) -> Vec<u64> {
        let mut out = vec![0u64; w];
        out[0] = v as u64;
        if w > 1 {
            out[1] = (v >> 64) as u64;
        }
        out
    }

    fn to_u128(a: &[u64]) -> u128 {
        u128::from(a[0]) | (u128::from(a[1]) << 64)
    }

    #[test]
    fn arithmetic_matches_u128() {
        let a = from_u128(0xffff_ffff_ffff_ffff_1234, 3);
        let mut acc = from_u128(77, 3);
        mul_small_add(&mut acc, &a, 1000);
        assert_eq!(to_u128(&acc), 0xffff_ffff_ffff_ffff_1234u128 * 1000 + 77);
        let mut b = acc.clone();
        sub_assign(&mut b, &from_u128(78, 3));
        assert_eq!(to_u128(&b), 0xffff_ffff_ffff_ffff_1234u128 * 1000 - 1);
        assert_eq!(cmp(&b, &acc), Ordering::Less);
        assert_eq!(bit_len(&from_u128(1 << 70, 2)), 71);
        assert!(is_zero(&[0, 0]));
        assert!((log2(&from_u128(1u128 << 100, 2)) - 100.0).abs() < 1e-12);
        assert!((log2(&from_u128(3u128 << 90, 2)) - (3f64.log2() + 90.0)).abs() < 1e-12);
    }

    #[test]
    fn random_below_stays_below_and_covers() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let bound = from_u128(5, 2);
        let mut seen = [0u32; 5];
        let mut out = vec![0u64; 2];
        for _ in 0..5000 {
            random_below(&mut rng, &bound, &mut out);
            let v = to_u128(&out);
            assert!(v < 5);
            seen[v as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
        let mut counts = [0u32; 7];
        for _ in 0..7000 {
            counts[uniform_u32(&mut rng, 7) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
