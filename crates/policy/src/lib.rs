//! Password policies for credwheel.
//!
//! **Owns:** turning a policy (Vault HCL, Infisical requirements, Active Directory
//! complexity, or a builder) into passwords drawn exactly uniformly from the set of
//! strings that satisfy it, deciding satisfiability when the policy is built, and
//! checking a given password against a policy.
//!
//! **Does not own:** applying passwords to any directory or host (`credwheel-ad`,
//! `credwheel-sam`) or storing them (`credwheel-state`).
