//! The exact table of completion counts: `C(l, s)` = the number of strings of `l`
//! characters that lead from state `s` to an accepting state.

use crate::bigint;

/// Counts as fixed-width little-endian big integers of `width` limbs.
pub(super) struct CountTable {
    width: usize,
    n_states: usize,
    /// `data[(l * n_states + s) * width ..][..width]`, for every `l` when the whole
    /// table is kept; otherwise empty (see [`CountTable::fill`]).
    data: Vec<u64>,
    /// `C(length, init)`.
    total: Vec<u64>,
}

/// What [`CountTable::fill`] needs to know of the automaton.
pub(super) struct Shape<'a> {
    pub(super) length: usize,
    pub(super) n_states: usize,
    pub(super) n_atoms: usize,
    /// `trans[s * n_atoms + a]`; `n_states` is the dead state.
    pub(super) trans: &'a [u32],
    pub(super) accept: &'a [bool],
    pub(super) atom_size: &'a [u64],
    /// `⌈log2 |alphabet|⌉`: layer `l` holds counts below `2^(bits_per_char · l)`.
    pub(super) bits_per_char: usize,
    pub(super) width: usize,
    pub(super) init: usize,
}

impl CountTable {
    /// Fills the table layer by layer: `C(0, s) = [s accepting]`,
    /// `C(l, s) = Σ_a |a| · C(l-1, next(s, a))`. With `keep_all` every layer is
    /// kept (the exact sampler needs them); otherwise two rolling layers suffice to
    /// get the total.
    pub(super) fn fill(shape: &Shape<'_>, keep_all: bool) -> CountTable {
        let Shape {
            length,
            n_states,
            n_atoms,
            trans,
            accept,
            atom_size,
            bits_per_char,
            width,
            init,
        } = *shape;
        let layer = n_states * width;
        let stored_layers = if keep_all { length + 1 } else { 2 };
        let mut data = vec![0u64; stored_layers * layer];
        for (s, &acc) in accept.iter().take(n_states).enumerate() {
            if acc {
                data[s * width] = 1;
            }
        }
        let slot = |l: usize| if keep_all { l } else { l % 2 };
        for l in 1..=length {
            // Entries of layer `l` are at most |alphabet|^l: only the low limbs can
            // be non-zero.
            let wl = (bits_per_char * l / 64 + 1).min(width);
            let (cur_at, prev_at) = (slot(l) * layer, slot(l - 1) * layer);
            let (prev, cur) = if prev_at < cur_at {
                let (a, b) = data.split_at_mut(cur_at);
                (&a[prev_at..prev_at + layer], &mut b[..layer])
            } else {
                let (a, b) = data.split_at_mut(prev_at);
                (&b[..layer], &mut a[cur_at..cur_at + layer])
            };
            for s in 0..n_states {
                let acc = &mut cur[s * width..(s + 1) * width];
                acc.fill(0);
                let acc = &mut acc[..wl];
                for a in 0..n_atoms {
                    let t = trans[s * n_atoms + a] as usize;
                    if t != n_states {
                        bigint::mul_small_add(acc, &prev[t * width..t * width + wl], atom_size[a]);
                    }
                }
            }
        }
        let total = data[slot(length) * layer + init * width..][..width].to_vec();
        if !keep_all {
            data = Vec::new();
        }
        CountTable {
            width,
            n_states,
            data,
            total,
        }
    }

    /// Whether every layer is kept.
    pub(super) fn is_complete(&self) -> bool {
        !self.data.is_empty()
    }

    /// `C(length, init)`: the number of valid passwords.
    pub(super) fn total(&self) -> &[u64] {
        &self.total
    }

    /// Limbs per count.
    pub(super) fn width(&self) -> usize {
        self.width
    }

    /// `C(l, s)`; only when [`is_complete`](Self::is_complete).
    #[inline]
    pub(super) fn at(&self, l: usize, s: usize) -> &[u64] {
        let off = (l * self.n_states + s) * self.width;
        &self.data[off..off + self.width]
    }
}
