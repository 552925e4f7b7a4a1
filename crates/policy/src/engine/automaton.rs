//! The forbidden-substring automaton: a complete Aho–Corasick automaton over the
//! case-folded characters of the forbidden substrings.

use std::collections::{BTreeMap, VecDeque};

/// Symbol 0 stands for "any character in no forbidden substring"; the others are
/// the distinct folded characters of the substrings.
pub(super) struct SubstringAutomaton {
    n_symbols: usize,
    /// `goto[q * n_symbols + sym]`: the complete transition function.
    goto: Vec<u32>,
    /// Whether reaching the node means a forbidden substring just ended.
    terminal: Vec<bool>,
    symbol_of: BTreeMap<char, u32>,
}

impl SubstringAutomaton {
    /// Builds the automaton. Its size is `(Σ |substring| + 1) × (distinct characters
    /// + 1)` entries; the caller bounds both (the policy layer keeps only substrings
    /// made of alphabet characters, at most `MAX_FORBIDDEN_CHARS` in total).
    pub(super) fn build(forbidden: &[Vec<char>]) -> Self {
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
        // The trie.
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
        let mut queue = VecDeque::new();
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
        SubstringAutomaton {
            n_symbols,
            goto,
            terminal,
            symbol_of,
        }
    }

    /// Number of states (the root is state 0).
    pub(super) fn states(&self) -> usize {
        self.terminal.len()
    }

    /// The symbol of a folded character (0 when it is in no substring).
    pub(super) fn symbol(&self, folded: char) -> u32 {
        self.symbol_of.get(&folded).copied().unwrap_or(0)
    }

    /// The state after reading `symbol` in state `q`.
    pub(super) fn next(&self, q: usize, symbol: u32) -> usize {
        self.goto[q * self.n_symbols + symbol as usize] as usize
    }

    /// Whether a forbidden substring ends on reaching `q`.
    pub(super) fn is_terminal(&self, q: usize) -> bool {
        self.terminal[q]
    }
}
