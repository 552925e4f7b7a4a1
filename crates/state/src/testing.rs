//! Test doubles: a fake [`RotationTarget`] that can fail at every step and a store
//! wrapper that can "crash" at every await point. Public so that embedders and the
//! target crates can test their use of the protocol the same way.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::error::{Result, TargetError, TargetErrorKind};
use crate::protocol::RotationTarget;
use crate::store::StateStore;
use crate::types::{
    Claim, Clock, ConfigDoc, Fence, Lease, LeaseTerms, Millis, Record, SetConfig, SetInfo,
    SetMember, TargetId,
};

/// Simulates a process crash at the n-th gated await point: the gated call never
/// completes (its future stays pending), so a caller polling the outer future once
/// (e.g. with `futures::FutureExt::now_or_never`) and dropping it models a process
/// that died at that point. With `after` set, the gated operation takes effect
/// first and the crash happens before its result is seen.
///
/// Once it crashed, every later gated call hangs too (the process is dead), until
/// the gate is armed or disarmed again; yield to the runtime before that so that
/// background work of the "dead" process (e.g. a claim release spawned by a
/// dropped guard) meets the dead gate.
#[derive(Debug, Default)]
pub struct CrashGate {
    count: AtomicUsize,
    crash_at: Mutex<Option<(usize, bool)>>,
    pause_at: Mutex<Option<(usize, bool)>>,
    dead: std::sync::atomic::AtomicBool,
    hit: tokio::sync::Notify,
    paused: tokio::sync::Notify,
    resume: tokio::sync::Notify,
}

impl CrashGate {
    /// A gate that never crashes until armed.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Crash at gated point `n` (0-based, counted from now), before the operation
    /// (`after == false`) or after it.
    pub fn arm(&self, n: usize, after: bool) {
        self.count.store(0, Ordering::SeqCst);
        self.dead.store(false, Ordering::SeqCst);
        *lock(&self.crash_at) = Some((n, after));
    }

    /// Stop crashing; a dead gate comes back to life (a new process).
    pub fn disarm(&self) {
        *lock(&self.crash_at) = None;
        self.dead.store(false, Ordering::SeqCst);
    }

    /// Pause (instead of crash) at gated point `n` counted from now, before or
    /// after the operation, until [`CrashGate::resume`]: a process that stalls.
    pub fn arm_pause(&self, n: usize, after: bool) {
        self.count.store(0, Ordering::SeqCst);
        self.dead.store(false, Ordering::SeqCst);
        *lock(&self.crash_at) = None;
        *lock(&self.pause_at) = Some((n, after));
    }

    /// Resolves once a gated call paused.
    pub async fn paused(&self) {
        self.paused.notified().await;
    }

    /// Lets a paused call continue.
    pub fn resume(&self) {
        *lock(&self.pause_at) = None;
        self.resume.notify_one();
    }

    /// How many gated points were passed since the last `arm`.
    pub fn passed(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Resolves once a gated call has "crashed" (for stores whose calls really
    /// suspend: race the operation against this and drop it, e.g. with
    /// `tokio::select!`).
    pub async fn crashed(&self) {
        self.hit.notified().await;
    }

    /// Runs `fut` until it completes (`Some`) or crashes at the armed point
    /// (`None`; the future is dropped, as if the process died there).
    pub async fn run<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            out = fut => Some(out),
            () = self.crashed() => None,
        }
    }

    /// Runs `op` through the gate.
    pub async fn gate<T>(&self, op: impl Future<Output = T>) -> T {
        if self.dead.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let plan = *lock(&self.crash_at);
        let pause = *lock(&self.pause_at);
        if plan == Some((n, false)) {
            self.die().await;
        }
        if pause == Some((n, false)) {
            self.stall().await;
        }
        let out = op.await;
        if plan == Some((n, true)) {
            self.die().await;
        }
        if pause == Some((n, true)) {
            self.stall().await;
        }
        out
    }

    async fn die(&self) {
        self.dead.store(true, Ordering::SeqCst);
        self.hit.notify_one();
        std::future::pending::<()>().await;
    }

    async fn stall(&self) {
        let resumed = self.resume.notified();
        self.paused.notify_one();
        resumed.await;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A [`StateStore`] wrapper that passes every call through a [`CrashGate`].
pub struct CrashStore {
    inner: Arc<dyn StateStore>,
    gate: Arc<CrashGate>,
}

impl fmt::Debug for CrashStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrashStore").finish_non_exhaustive()
    }
}

impl CrashStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn StateStore>, gate: Arc<CrashGate>) -> Self {
        Self { inner, gate }
    }
}

#[async_trait]
impl StateStore for CrashStore {
    async fn create_record(&self, record: &Record) -> Result<u64> {
        self.gate.gate(self.inner.create_record(record)).await
    }
    async fn get_record(&self, id: &TargetId) -> Result<Record> {
        self.gate.gate(self.inner.get_record(id)).await
    }
    async fn compare_and_swap(
        &self,
        record: &Record,
        expected_version: u64,
        fence: Option<Fence>,
    ) -> Result<u64> {
        self.gate
            .gate(self.inner.compare_and_swap(record, expected_version, fence))
            .await
    }
    async fn delete_record(&self, id: &TargetId, expected_version: u64) -> Result<()> {
        self.gate
            .gate(self.inner.delete_record(id, expected_version))
            .await
    }
    async fn list_due(
        &self,
        now: Millis,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<TargetId>> {
        self.gate.gate(self.inner.list_due(now, after, limit)).await
    }
    async fn list_records(&self, after: Option<&TargetId>, limit: usize) -> Result<Vec<Record>> {
        self.gate.gate(self.inner.list_records(after, limit)).await
    }
    async fn list_needing_operator(
        &self,
        after: Option<&TargetId>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        self.gate
            .gate(self.inner.list_needing_operator(after, limit))
            .await
    }
    async fn claim(&self, id: &TargetId, holder: &str, now: Millis, ttl_ms: i64) -> Result<Claim> {
        self.gate
            .gate(self.inner.claim(id, holder, now, ttl_ms))
            .await
    }
    async fn renew_claim(&self, claim: &Claim, now: Millis, ttl_ms: i64) -> Result<Claim> {
        self.gate
            .gate(self.inner.renew_claim(claim, now, ttl_ms))
            .await
    }
    async fn release_claim(&self, claim: &Claim) -> Result<()> {
        self.gate.gate(self.inner.release_claim(claim)).await
    }
    async fn get_claim(&self, id: &TargetId) -> Result<Option<Claim>> {
        self.gate.gate(self.inner.get_claim(id)).await
    }
    async fn put_set(&self, name: &str, config: &SetConfig, expected_version: u64) -> Result<u64> {
        self.gate
            .gate(self.inner.put_set(name, config, expected_version))
            .await
    }
    async fn get_set(&self, name: &str) -> Result<SetInfo> {
        self.gate.gate(self.inner.get_set(name)).await
    }
    async fn list_sets(&self, after: Option<&str>, limit: usize) -> Result<Vec<SetInfo>> {
        self.gate.gate(self.inner.list_sets(after, limit)).await
    }
    async fn delete_set(&self, name: &str, expected_version: u64) -> Result<()> {
        self.gate
            .gate(self.inner.delete_set(name, expected_version))
            .await
    }
    async fn add_to_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        self.gate.gate(self.inner.add_to_set(set, accounts)).await
    }
    async fn remove_from_set(&self, set: &str, accounts: &[TargetId]) -> Result<()> {
        self.gate
            .gate(self.inner.remove_from_set(set, accounts))
            .await
    }
    async fn set_members(&self, set: &str) -> Result<Vec<SetMember>> {
        self.gate.gate(self.inner.set_members(set)).await
    }
    async fn take_lease(
        &self,
        set: &str,
        borrower: &str,
        now: Millis,
        terms: LeaseTerms,
    ) -> Result<Lease> {
        self.gate
            .gate(self.inner.take_lease(set, borrower, now, terms))
            .await
    }
    async fn get_lease(&self, lease_id: &str) -> Result<Lease> {
        self.gate.gate(self.inner.get_lease(lease_id)).await
    }
    async fn renew_lease(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<Lease> {
        self.gate
            .gate(self.inner.renew_lease(lease_id, borrower, now, ttl_ms))
            .await
    }
    async fn begin_return(
        &self,
        lease_id: &str,
        borrower: Option<&str>,
    ) -> Result<(SetMember, Lease)> {
        self.gate
            .gate(self.inner.begin_return(lease_id, borrower))
            .await
    }
    async fn finish_return(&self, account: &TargetId, generation: u64) -> Result<SetMember> {
        self.gate
            .gate(self.inner.finish_return(account, generation))
            .await
    }
    async fn list_expired_leases(&self, now: Millis, limit: usize) -> Result<Vec<Lease>> {
        self.gate
            .gate(self.inner.list_expired_leases(now, limit))
            .await
    }
    async fn put_config(
        &self,
        kind: &str,
        name: &str,
        body: &[u8],
        expected_version: u64,
    ) -> Result<u64> {
        self.gate
            .gate(self.inner.put_config(kind, name, body, expected_version))
            .await
    }
    async fn get_config(&self, kind: &str, name: &str) -> Result<ConfigDoc> {
        self.gate.gate(self.inner.get_config(kind, name)).await
    }
    async fn list_configs(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConfigDoc>> {
        self.gate
            .gate(self.inner.list_configs(kind, after, limit))
            .await
    }
    async fn delete_config(&self, kind: &str, name: &str, expected_version: u64) -> Result<()> {
        self.gate
            .gate(self.inner.delete_config(kind, name, expected_version))
            .await
    }
}

/// Which [`FakeTarget`] operation a scripted failure applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FakeOp {
    /// `set_password_as_admin`.
    AdminSet,
    /// `change_password`.
    Change,
    /// `verify`.
    Verify,
    /// `password_last_set`.
    LastSet,
}

/// A scripted failure of a [`FakeTarget`] operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FakeFailure {
    /// Fail with this kind without changing anything.
    Fail(TargetErrorKind),
    /// Apply the write, then fail with this kind (a lost reply).
    FailAfterApply(TargetErrorKind),
    /// `verify` answers `false` whatever the password.
    SayNo,
}

struct FakeState {
    password: SecretString,
    previous: Option<SecretString>,
    last_set: Option<Millis>,
    failures: VecDeque<(FakeOp, FakeFailure)>,
}

/// How long a [`FakeTarget`] keeps accepting the previous password.
#[derive(Clone, Copy, Debug)]
enum Grace {
    None,
    Forever,
    For(i64),
}

/// An in-memory account on a pretend directory. Knows one password (plus the
/// previous one during a simulated grace period, if enabled), can reject passwords
/// by a policy predicate, fails on script, and can crash at every call through a
/// [`CrashGate`].
pub struct FakeTarget {
    id: TargetId,
    state: Mutex<FakeState>,
    gate: Option<Arc<CrashGate>>,
    clock: Option<Arc<dyn Clock>>,
    clock_offset: i64,
    whole_seconds: bool,
    grace: Grace,
    min_len: usize,
    writes: AtomicUsize,
    verifies: AtomicUsize,
    failed_verifies: AtomicUsize,
}

impl fmt::Debug for FakeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTarget")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl FakeTarget {
    /// An account `id` whose password is `password`.
    pub fn new(id: &TargetId, password: &str) -> Self {
        Self {
            id: id.clone(),
            state: Mutex::new(FakeState {
                password: SecretString::from(password),
                previous: None,
                last_set: None,
                failures: VecDeque::new(),
            }),
            gate: None,
            clock: None,
            clock_offset: 0,
            whole_seconds: false,
            grace: Grace::None,
            min_len: 0,
            writes: AtomicUsize::new(0),
            verifies: AtomicUsize::new(0),
            failed_verifies: AtomicUsize::new(0),
        }
    }

    /// Routes every call through `gate`.
    pub fn with_gate(mut self, gate: Arc<CrashGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Reports "password last set" times from `clock` (otherwise `None`); the
    /// initial password counts as set a day before the clock's current time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        lock(&self.state).last_set = Some(clock.now() - 86_400_000 + self.clock_offset);
        self.clock = Some(clock);
        self
    }

    /// The target's clock runs `ms` ahead of the given clock (negative: behind).
    pub fn with_clock_offset(mut self, ms: i64) -> Self {
        let delta = ms - self.clock_offset;
        self.clock_offset = ms;
        if let Some(t) = lock(&self.state).last_set.as_mut() {
            *t += delta;
        }
        self
    }

    /// Reports "password last set" in whole seconds (like a `tdbsam` SAM).
    pub fn with_whole_seconds(mut self) -> Self {
        self.whole_seconds = true;
        if let Some(t) = lock(&self.state).last_set.as_mut() {
            *t -= t.rem_euclid(1000);
        }
        self
    }

    /// Keeps accepting the previous password after a change, forever.
    pub fn accepting_previous(mut self) -> Self {
        self.grace = Grace::Forever;
        self
    }

    /// Keeps accepting the previous password for `ms` after a change, like AD's
    /// and Samba's OldPasswordAllowedPeriod (needs [`FakeTarget::with_clock`]).
    pub fn accepting_previous_for(mut self, ms: i64) -> Self {
        self.grace = Grace::For(ms);
        self
    }

    /// The target's current time (its own clock), if it has one.
    pub fn now(&self) -> Option<Millis> {
        self.clock.as_ref().map(|c| c.now() + self.clock_offset)
    }

    /// Rejects new passwords shorter than `n` characters (a policy refusal).
    pub fn with_min_length(mut self, n: usize) -> Self {
        self.min_len = n;
        self
    }

    /// Scripts the next call of `op` to fail.
    pub fn fail_next(&self, op: FakeOp, failure: FakeFailure) {
        lock(&self.state).failures.push_back((op, failure));
    }

    /// Whether the account's password is `pw` (ignoring any grace period).
    pub fn accepts(&self, pw: &SecretString) -> bool {
        eq(&lock(&self.state).password, pw)
    }

    /// Number of password writes that took effect.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Number of `verify` calls (logon attempts).
    pub fn verifies(&self) -> usize {
        self.verifies.load(Ordering::SeqCst)
    }

    /// Number of `verify` calls that answered `false` (failed logons, which
    /// count towards a lockout).
    pub fn failed_verifies(&self) -> usize {
        self.failed_verifies.load(Ordering::SeqCst)
    }

    /// The target's "password last set".
    pub fn last_set(&self) -> Option<Millis> {
        lock(&self.state).last_set
    }

    /// Sets the password out of band (as another admin would).
    pub fn set_out_of_band(&self, pw: &str) {
        let mut s = lock(&self.state);
        self.apply(&mut s, &SecretString::from(pw));
    }

    fn take_failure(&self, op: FakeOp) -> Option<FakeFailure> {
        let mut s = lock(&self.state);
        let pos = s.failures.iter().position(|(o, _)| *o == op)?;
        s.failures.remove(pos).map(|(_, f)| f)
    }

    fn apply(&self, s: &mut FakeState, new: &SecretString) {
        let old = std::mem::replace(&mut s.password, new.clone());
        s.previous = Some(old);
        s.last_set = self.now().map(|t| {
            if self.whole_seconds {
                t - t.rem_euclid(1000)
            } else {
                t
            }
        });
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    fn check_account(&self, account: &TargetId) -> Result<(), TargetError> {
        if *account != self.id {
            return Err(TargetError::new(
                TargetErrorKind::NoSuchAccount,
                "no such account",
            ));
        }
        Ok(())
    }

    fn write(
        &self,
        op: FakeOp,
        account: &TargetId,
        current: Option<&SecretString>,
        new: &SecretString,
    ) -> Result<(), TargetError> {
        self.check_account(account)?;
        let failure = self.take_failure(op);
        if let Some(FakeFailure::Fail(k)) = failure {
            return Err(TargetError::new(k, "scripted failure"));
        }
        let mut s = lock(&self.state);
        if let Some(cur) = current
            && !eq(&s.password, cur)
        {
            return Err(TargetError::new(
                TargetErrorKind::BadCredentials,
                "wrong current password",
            ));
        }
        if new.expose_secret().chars().count() < self.min_len {
            return Err(TargetError::new(
                TargetErrorKind::Rejected,
                "password does not meet the length requirement",
            ));
        }
        self.apply(&mut s, new);
        if let Some(FakeFailure::FailAfterApply(k)) = failure {
            return Err(TargetError::new(k, "scripted failure after apply"));
        }
        Ok(())
    }

    async fn gated<T>(&self, f: impl Future<Output = T>) -> T {
        match &self.gate {
            Some(g) => g.gate(f).await,
            None => f.await,
        }
    }
}

fn eq(a: &SecretString, b: &SecretString) -> bool {
    a.expose_secret()
        .as_bytes()
        .ct_eq(b.expose_secret().as_bytes())
        .into()
}

#[async_trait]
impl RotationTarget for FakeTarget {
    async fn set_password_as_admin(
        &self,
        account: &TargetId,
        new_password: &SecretString,
    ) -> Result<(), TargetError> {
        self.gated(async { self.write(FakeOp::AdminSet, account, None, new_password) })
            .await
    }

    async fn change_password(
        &self,
        account: &TargetId,
        current_password: &SecretString,
        new_password: &SecretString,
    ) -> Result<(), TargetError> {
        self.gated(async {
            self.write(
                FakeOp::Change,
                account,
                Some(current_password),
                new_password,
            )
        })
        .await
    }

    async fn verify(
        &self,
        account: &TargetId,
        password: &SecretString,
    ) -> Result<bool, TargetError> {
        self.gated(async {
            self.check_account(account)?;
            match self.take_failure(FakeOp::Verify) {
                Some(FakeFailure::Fail(k) | FakeFailure::FailAfterApply(k)) => {
                    return Err(TargetError::new(k, "scripted failure"));
                }
                Some(FakeFailure::SayNo) => return Ok(false),
                None => {}
            }
            self.verifies.fetch_add(1, Ordering::SeqCst);
            let s = lock(&self.state);
            let in_grace = match self.grace {
                Grace::None => false,
                Grace::Forever => true,
                Grace::For(ms) => match (self.now(), s.last_set) {
                    (Some(now), Some(set)) => now < set + ms,
                    _ => false,
                },
            };
            let ok = eq(&s.password, password)
                || (in_grace && s.previous.as_ref().is_some_and(|p| eq(p, password)));
            if !ok {
                self.failed_verifies.fetch_add(1, Ordering::SeqCst);
            }
            Ok(ok)
        })
        .await
    }

    async fn password_last_set(&self, account: &TargetId) -> Result<Option<Millis>, TargetError> {
        self.gated(async {
            self.check_account(account)?;
            if let Some(FakeFailure::Fail(k) | FakeFailure::FailAfterApply(k)) =
                self.take_failure(FakeOp::LastSet)
            {
                return Err(TargetError::new(k, "scripted failure"));
            }
            Ok(lock(&self.state).last_set)
        })
        .await
    }
}
