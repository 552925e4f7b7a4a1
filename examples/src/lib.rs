//! Reference integrations of credwheel. The programs live in `src/bin/`; each one
//! finds the lab through the environment variables that `tools/lab env` prints.
