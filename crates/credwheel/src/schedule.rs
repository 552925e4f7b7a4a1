//! Rotation schedules and the pure function that says when a rotation is next due.
//!
//! Three kinds, as the systems operators come from have them:
//!
//! | kind | from | meaning |
//! |---|---|---|
//! | [`Schedule::interval`] | Infisical | every `interval_days` days at `rotate_at` local time in an IANA time zone |
//! | [`Schedule::cron`] | Vault 2.x | at each slot of a cron expression, within a window; a missed slot waits for the next |
//! | [`Schedule::ttl`] | Vault AD engine | lazy: rotate when the password is read after it is older than the TTL |
//!
//! # Anchors: why a manual rotation does not move the schedule
//!
//! [`Schedule::next_due`] takes an *anchor*: the slot of the last **scheduled**
//! rotation (or, before the first one, the time the rotation was enrolled). A manual
//! rotation (rotate-now, reconcile, a check-in) changes the password but not the
//! anchor, so the automated schedule stays where it was. Only the TTL kind counts
//! from the last rotation of any kind, because a TTL is the password's age.
//!
//! # Daylight-saving time
//!
//! Local times are resolved in the schedule's time zone with the IANA database:
//!
//! - a local time that does not exist (inside a spring-forward gap, e.g. 02:30 on
//!   2026-03-08 in America/New_York) resolves to **the first instant after the gap**
//!   (03:00 EDT that day), so the rotation still happens that day and as early as
//!   the wall clock allows;
//! - a local time that exists twice (inside a fall-back fold, e.g. 01:30 on
//!   2026-11-01 in America/New_York) resolves to **its first occurrence** (01:30
//!   EDT), so the rotation happens once, not twice.
//!
//! Cron schedules follow the same rules (fixed-time slots inside a gap run at the
//! first minute after it, slots inside a fold run once, at the first occurrence),
//! which is what Vixie cron does.
//!
//! # Example
//!
//! ```
//! use credwheel::schedule::{NextDue, Schedule};
//!
//! let daily = Schedule::interval(1, "02:30", "America/New_York")?;
//! // Enrolled on 2026-03-07 at 12:00 UTC; the next slot is 02:30 local on 2026-03-08,
//! // which does not exist (the clocks jump from 02:00 to 03:00): it runs at 03:00 EDT.
//! let enrolled = credwheel::schedule::parse_instant("2026-03-07T12:00:00Z")?;
//! let now = enrolled;
//! match daily.next_due(enrolled, None, now) {
//!     NextDue::Scheduled(due) => {
//!         assert_eq!(credwheel::schedule::format_instant(due.slot), "2026-03-08T07:00:00Z");
//!         assert_eq!(due.not_after, None);
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan, Zoned};

use crate::state::Millis;

const MS_PER_DAY: i64 = 86_400_000;
/// The shortest cron window accepted: one minute (the cron resolution).
pub const MIN_WINDOW: Duration = Duration::from_secs(60);

/// Why a schedule could not be built. Each variant names the schedule field it is
/// about ([`ScheduleError::field`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// `interval_days` is 0.
    #[error("must be >= 1")]
    IntervalZero,
    /// `interval_days` is larger than 36,500 (100 years).
    #[error("must be <= 36500")]
    IntervalTooLarge,
    /// `rotate_at` is not `HH:MM` (24-hour).
    #[error("{value:?} is not a time of day \"HH:MM\" (00:00 to 23:59)")]
    RotateAt {
        /// The text given.
        value: String,
    },
    /// The time zone is not in the IANA database.
    #[error("{name:?} is not an IANA time zone (e.g. \"UTC\", \"Europe/Paris\")")]
    TimeZone {
        /// The name given.
        name: String,
    },
    /// The cron expression does not parse or never matches.
    #[error("invalid cron expression {expr:?}: {reason}")]
    Cron {
        /// The expression given.
        expr: String,
        /// What the parser said.
        reason: String,
    },
    /// The cron window is shorter than [`MIN_WINDOW`].
    #[error("must be at least 1 minute")]
    WindowTooShort,
    /// The TTL is zero.
    #[error("must be greater than 0")]
    TtlZero,
    /// An instant could not be parsed.
    #[error("{value:?} is not an RFC 3339 instant (e.g. \"2026-03-08T07:00:00Z\")")]
    Instant {
        /// The text given.
        value: String,
    },
    /// A duration could not be parsed.
    #[error(
        "{value:?} is not a duration (seconds as a number, or e.g. \"90s\", \"15m\", \"24h\", \"7d\", \"1h30m\")"
    )]
    Duration {
        /// The text given.
        value: String,
    },
}

impl ScheduleError {
    /// The schedule field this error is about (`interval_days`, `rotate_at`,
    /// `time_zone`, `cron`, `window` or `ttl`).
    pub fn field(&self) -> &'static str {
        match self {
            ScheduleError::IntervalZero | ScheduleError::IntervalTooLarge => "interval_days",
            ScheduleError::RotateAt { .. } => "rotate_at",
            ScheduleError::TimeZone { .. } => "time_zone",
            ScheduleError::Cron { .. } => "cron",
            ScheduleError::WindowTooShort => "window",
            ScheduleError::TtlZero => "ttl",
            ScheduleError::Duration { .. } => "duration",
            ScheduleError::Instant { .. } => "instant",
        }
    }
}

/// When a rotation runs by itself. Build with [`Schedule::interval`],
/// [`Schedule::cron`] or [`Schedule::ttl`], or from configuration.
#[derive(Clone)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Interval {
        days: u32,
        rotate_at: Time,
        tz_name: String,
        tz: TimeZone,
        auto: bool,
    },
    Cron {
        expr: String,
        cron: Box<Cron>,
        window: Duration,
        tz_name: String,
        tz: TimeZone,
        auto: bool,
    },
    Ttl {
        ttl: Duration,
    },
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({self})")
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Interval {
                days,
                rotate_at,
                tz_name,
                auto,
                ..
            } => {
                write!(
                    f,
                    "every {days} day{} at {} {tz_name}",
                    if *days == 1 { "" } else { "s" },
                    rotate_at.strftime("%H:%M")
                )?;
                if !auto {
                    f.write_str(" (auto-rotation off)")?;
                }
                Ok(())
            }
            Kind::Cron {
                expr,
                window,
                tz_name,
                auto,
                ..
            } => {
                write!(
                    f,
                    "cron \"{expr}\" {tz_name}, window {}",
                    format_duration(*window)
                )?;
                if !auto {
                    f.write_str(" (auto-rotation off)")?;
                }
                Ok(())
            }
            Kind::Ttl { ttl } => write!(f, "lazy, ttl {}", format_duration(*ttl)),
        }
    }
}

/// A scheduled rotation slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Due {
    /// The slot (Unix milliseconds). When it is not after "now", the rotation is due
    /// now. After a successful scheduled rotation, this slot becomes the new anchor.
    pub slot: Millis,
    /// The end of the slot's window (cron schedules): past it, the slot is missed and
    /// [`Schedule::next_due`] returns the next one.
    pub not_after: Option<Millis>,
}

/// What [`Schedule::next_due`] decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NextDue {
    /// Rotate by the scheduler at (or, with a window, from) this slot.
    Scheduled(Due),
    /// A TTL schedule: rotate when the password is read at or after `expires_at`.
    OnRead {
        /// When the password passes its TTL (Unix milliseconds).
        expires_at: Millis,
    },
    /// Automatic rotation is off: only manual rotations.
    Manual,
}

impl Schedule {
    /// Infisical's schedule: every `interval_days` days (>= 1) at `rotate_at`
    /// (`"HH:MM"`, 24-hour) local time in the IANA `time_zone`, auto-rotation on.
    pub fn interval(
        interval_days: u32,
        rotate_at: &str,
        time_zone: &str,
    ) -> Result<Schedule, ScheduleError> {
        if interval_days == 0 {
            return Err(ScheduleError::IntervalZero);
        }
        if interval_days > 36_500 {
            return Err(ScheduleError::IntervalTooLarge);
        }
        let rotate_at = parse_hh_mm(rotate_at)?;
        let tz = time_zone_named(time_zone)?;
        Ok(Schedule {
            kind: Kind::Interval {
                days: interval_days,
                rotate_at,
                tz_name: time_zone.to_owned(),
                tz,
                auto: true,
            },
        })
    }

    /// Vault 2.x's schedule: the slots of a standard five-field cron expression
    /// (minute hour day-of-month month day-of-week; `@daily`-style aliases too) in
    /// `time_zone` (Vault: always UTC), each open for `window` (at least a minute).
    /// A slot whose window passed without a rotation is skipped.
    pub fn cron(expr: &str, window: Duration, time_zone: &str) -> Result<Schedule, ScheduleError> {
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(expr).map_err(|e| ScheduleError::Cron {
            expr: expr.to_owned(),
            reason: e.to_string(),
        })?;
        if window < MIN_WINDOW {
            return Err(ScheduleError::WindowTooShort);
        }
        let tz = time_zone_named(time_zone)?;
        // An expression that never matches (e.g. February 30th) is refused now.
        let probe = Timestamp::UNIX_EPOCH.to_zoned(tz.clone());
        if cron.find_next_occurrence(&probe, false).is_err() {
            return Err(ScheduleError::Cron {
                expr: expr.to_owned(),
                reason: "it never matches".into(),
            });
        }
        Ok(Schedule {
            kind: Kind::Cron {
                expr: expr.to_owned(),
                cron: Box::new(cron),
                window,
                tz_name: time_zone.to_owned(),
                tz,
                auto: true,
            },
        })
    }

    /// Vault AD engine's lazy rotation: the password is rotated when it is read
    /// after it became older than `ttl`.
    pub fn ttl(ttl: Duration) -> Result<Schedule, ScheduleError> {
        if ttl.is_zero() {
            return Err(ScheduleError::TtlZero);
        }
        Ok(Schedule {
            kind: Kind::Ttl { ttl },
        })
    }

    /// Turns automatic rotation on or off (interval and cron schedules; Infisical's
    /// `isAutoRotationEnabled`, Vault's `disable_automated_rotation` inverted). A TTL
    /// schedule is always lazy and ignores this.
    #[must_use]
    pub fn with_auto_rotation(mut self, on: bool) -> Schedule {
        match &mut self.kind {
            Kind::Interval { auto, .. } | Kind::Cron { auto, .. } => *auto = on,
            Kind::Ttl { .. } => {}
        }
        self
    }

    /// Whether the scheduler rotates by itself (false for TTL schedules and when
    /// auto-rotation is off).
    pub fn is_automatic(&self) -> bool {
        match &self.kind {
            Kind::Interval { auto, .. } | Kind::Cron { auto, .. } => *auto,
            Kind::Ttl { .. } => false,
        }
    }

    /// The TTL of a lazy schedule.
    pub fn lazy_ttl(&self) -> Option<Duration> {
        match &self.kind {
            Kind::Ttl { ttl } => Some(*ttl),
            _ => None,
        }
    }

    /// When the rotation is next due.
    ///
    /// - `anchor`: the slot of the last scheduled rotation, or the enrollment time
    ///   before the first one (manual rotations do not move it);
    /// - `last_rotated`: when the password last changed by any rotation (used by TTL
    ///   schedules; `None` falls back to `anchor`);
    /// - `now`: the reference time.
    ///
    /// Interval schedules: the slots are `rotate_at` on the anchor's local date plus
    /// `k × interval_days` days (k ≥ 1); the latest slot not after `now` is returned
    /// if there is one (several missed slots collapse into one rotation), otherwise
    /// the first slot. Cron schedules: the first slot after `anchor` whose window has
    /// not ended at `now`. All times are Unix milliseconds. Pure: no clock, no I/O.
    pub fn next_due(&self, anchor: Millis, last_rotated: Option<Millis>, now: Millis) -> NextDue {
        match &self.kind {
            Kind::Ttl { ttl } => {
                let base = last_rotated.unwrap_or(anchor);
                NextDue::OnRead {
                    expires_at: base.saturating_add(duration_ms(*ttl)),
                }
            }
            Kind::Interval { auto: false, .. } | Kind::Cron { auto: false, .. } => NextDue::Manual,
            Kind::Interval {
                days,
                rotate_at,
                tz,
                ..
            } => {
                let anchor_date = to_ts(anchor).to_zoned(tz.clone()).date();
                let slot = |k: i64| -> Millis {
                    let date = add_days(anchor_date, k.saturating_mul(i64::from(*days)));
                    resolve_local(tz, date.to_datetime(*rotate_at))
                };
                let first = slot(1);
                if first > now {
                    return NextDue::Scheduled(Due {
                        slot: first,
                        not_after: None,
                    });
                }
                // Estimate the last slot not after now, then correct for DST drift.
                let period = i64::from(*days) * MS_PER_DAY;
                let mut k = ((now - first) / period + 1).max(1);
                while k > 1 && slot(k) > now {
                    k -= 1;
                }
                while slot(k + 1) <= now {
                    k += 1;
                }
                NextDue::Scheduled(Due {
                    slot: slot(k),
                    not_after: None,
                })
            }
            Kind::Cron {
                cron, window, tz, ..
            } => {
                let win = duration_ms(*window);
                // The first slot s > max(anchor, now - window): s > anchor, and its
                // window s + window is still open at now (or in the future).
                let after = anchor.max(now.saturating_sub(win));
                let start = to_ts(after).to_zoned(tz.clone());
                match cron.find_next_occurrence(&start, false) {
                    Ok(z) => {
                        let slot = z.timestamp().as_millisecond();
                        NextDue::Scheduled(Due {
                            slot,
                            not_after: Some(slot.saturating_add(win)),
                        })
                    }
                    // Beyond the searchable range (year 5000): nothing is due.
                    Err(_) => NextDue::Manual,
                }
            }
        }
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_ts(ms: Millis) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

fn add_days(date: Date, days: i64) -> Date {
    date.checked_add(days.days()).unwrap_or(Date::MAX)
}

fn time_zone_named(name: &str) -> Result<TimeZone, ScheduleError> {
    TimeZone::get(name).map_err(|_| ScheduleError::TimeZone {
        name: name.to_owned(),
    })
}

fn parse_hh_mm(s: &str) -> Result<Time, ScheduleError> {
    let err = || ScheduleError::RotateAt {
        value: s.to_owned(),
    };
    let (h, m) = s.split_once(':').ok_or_else(err)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(err());
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let h: i8 = h.parse().map_err(|_| err())?;
    let m: i8 = m.parse().map_err(|_| err())?;
    Time::new(h, m, 0, 0).map_err(|_| err())
}

/// Resolves a local date-time in `tz`: a time in a gap becomes the first instant
/// after the gap; a time in a fold becomes its first occurrence.
fn resolve_local(tz: &TimeZone, dt: DateTime) -> Millis {
    let amb = tz.to_ambiguous_zoned(dt);
    match amb.offset() {
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => amb
            .earlier()
            .map(|z: Zoned| z.timestamp().as_millisecond())
            .unwrap_or(i64::MAX),
        AmbiguousOffset::Gap { .. } => {
            // `later()` is the time shifted forward by the gap's length (after the
            // gap); the transition just before it is where the gap ends.
            match amb.later() {
                Ok(z) => {
                    let ts = z.timestamp();
                    let transition = tz
                        .preceding(ts.checked_add(1.nanosecond()).unwrap_or(ts))
                        .next()
                        .map(|t| t.timestamp())
                        .unwrap_or(ts);
                    transition.as_millisecond()
                }
                Err(_) => i64::MAX,
            }
        }
    }
}

/// Parses a duration: a number of seconds (`"3600"`) or a sequence of
/// `<number><unit>` with units `ms`, `s`, `m`, `h`, `d`, `w` (`"90s"`, `"24h"`,
/// `"1h30m"`, `"7d"`, `"250ms"`).
pub fn parse_duration(s: &str) -> Result<Duration, ScheduleError> {
    let err = || ScheduleError::Duration {
        value: s.to_owned(),
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(err());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u64>().map(Duration::from_secs).map_err(|_| err());
    }
    let mut total_ms: u64 = 0;
    let mut chars = t.chars().peekable();
    while chars.peek().is_some() {
        let mut n: u64 = 0;
        let mut digits = 0;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d)))
                .ok_or_else(err)?;
            digits += 1;
            chars.next();
        }
        let mut unit = String::new();
        while let Some(&c) = chars.peek() {
            if !c.is_ascii_alphabetic() {
                break;
            }
            unit.push(c);
            chars.next();
        }
        let per: u64 = match unit.as_str() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(err()),
        };
        if digits == 0 {
            return Err(err());
        }
        total_ms = n
            .checked_mul(per)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(err)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way [`parse_duration`] reads it (`"1d2h"`, `"90s"`).
pub fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&(s / len).to_string());
            out.push_str(unit);
            s %= len;
        }
    }
    out
}

/// Parses an RFC 3339 instant (`"2026-03-08T07:00:00Z"`) to Unix milliseconds.
pub fn parse_instant(s: &str) -> Result<Millis, ScheduleError> {
    s.parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| ScheduleError::Instant {
            value: s.to_owned(),
        })
}

/// Formats Unix milliseconds as an RFC 3339 instant in UTC, to the second.
pub fn format_instant(ms: Millis) -> String {
    let ts = to_ts(ms);
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests;
