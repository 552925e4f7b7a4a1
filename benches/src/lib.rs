//! Criterion benches for credwheel live in `benches/`; run them with
//! `cargo bench -p credwheel-benches`. Figures are recorded in `docs/performance.md`.
