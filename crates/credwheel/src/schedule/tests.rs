use std::time::Duration;

use super::*;

fn t(s: &str) -> Millis {
    parse_instant(s).unwrap()
}

fn slot(n: NextDue) -> (String, Option<String>) {
    match n {
        NextDue::Scheduled(d) => (format_instant(d.slot), d.not_after.map(format_instant)),
        other => panic!("expected a scheduled slot, got {other:?}"),
    }
}

#[test]
fn interval_next_day_at_rotate_at_in_utc() {
    let s = Schedule::interval(1, "02:30", "UTC").unwrap();
    let anchor = t("2026-05-01T10:00:00Z");
    assert_eq!(
        slot(s.next_due(anchor, None, anchor)),
        ("2026-05-02T02:30:00Z".into(), None)
    );
}

#[test]
fn interval_of_several_days_counts_from_the_anchor_date() {
    let s = Schedule::interval(7, "23:15", "Europe/Paris").unwrap();
    // 2026-06-01 is CEST (UTC+2).
    let anchor = t("2026-06-01T08:00:00Z");
    assert_eq!(
        slot(s.next_due(anchor, None, anchor)).0,
        "2026-06-08T21:15:00Z"
    );
}

#[test]
fn rotate_at_in_a_dst_gap_runs_at_the_first_instant_after_the_gap() {
    // America/New_York jumps from 02:00 EST to 03:00 EDT on 2026-03-08.
    let s = Schedule::interval(1, "02:30", "America/New_York").unwrap();
    let anchor = t("2026-03-07T17:00:00Z"); // 12:00 EST on the 7th
    // 03:00 EDT = 07:00 UTC (not 03:30 EDT, not 01:30 EST).
    assert_eq!(
        slot(s.next_due(anchor, None, anchor)).0,
        "2026-03-08T07:00:00Z"
    );
    // The day before and after are ordinary.
    let before = t("2026-03-06T17:00:00Z");
    assert_eq!(
        slot(s.next_due(before, None, before)).0,
        "2026-03-07T07:30:00Z"
    );
    let after = t("2026-03-08T17:00:00Z");
    assert_eq!(
        slot(s.next_due(after, None, after)).0,
        "2026-03-09T06:30:00Z"
    );
}

#[test]
fn rotate_at_in_a_repeated_hour_runs_once_at_the_first_occurrence() {
    // America/New_York goes back from 02:00 EDT to 01:00 EST on 2026-11-01, so 01:30
    // happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
    let s = Schedule::interval(1, "01:30", "America/New_York").unwrap();
    let anchor = t("2026-10-31T16:00:00Z");
    assert_eq!(
        slot(s.next_due(anchor, None, anchor)).0,
        "2026-11-01T05:30:00Z"
    );
    // After that rotation (anchor = the slot), the next one is the next day, not the
    // second 01:30 an hour later.
    let done = t("2026-11-01T05:30:00Z");
    let now = t("2026-11-01T06:45:00Z");
    assert_eq!(slot(s.next_due(done, None, now)).0, "2026-11-02T06:30:00Z");
}

#[test]
fn missed_interval_slots_collapse_into_one_due_now() {
    let s = Schedule::interval(1, "03:00", "UTC").unwrap();
    let anchor = t("2026-01-01T03:00:00Z");
    let now = t("2026-01-10T12:00:00Z");
    // The latest slot not after now: due immediately, once.
    assert_eq!(
        slot(s.next_due(anchor, None, now)).0,
        "2026-01-10T03:00:00Z"
    );
    // After rotating it (anchor = that slot), the next is tomorrow.
    let anchor = t("2026-01-10T03:00:00Z");
    assert_eq!(
        slot(s.next_due(anchor, None, now)).0,
        "2026-01-11T03:00:00Z"
    );
}

#[test]
fn a_manual_rotation_does_not_move_the_schedule() {
    let s = Schedule::interval(30, "04:00", "UTC").unwrap();
    let anchor = t("2026-01-01T04:00:00Z");
    let manual = t("2026-01-20T09:00:00Z");
    let now = t("2026-01-21T00:00:00Z");
    assert_eq!(
        s.next_due(anchor, Some(manual), now),
        s.next_due(anchor, None, now)
    );
    assert_eq!(
        slot(s.next_due(anchor, Some(manual), now)).0,
        "2026-01-31T04:00:00Z"
    );
}

#[test]
fn auto_rotation_off_means_manual_only() {
    let s = Schedule::interval(1, "03:00", "UTC")
        .unwrap()
        .with_auto_rotation(false);
    assert!(!s.is_automatic());
    assert_eq!(s.next_due(0, None, 10 * MS_PER_DAY), NextDue::Manual);
    let c = Schedule::cron("0 3 * * *", Duration::from_secs(3600), "UTC")
        .unwrap()
        .with_auto_rotation(false);
    assert_eq!(c.next_due(0, None, 0), NextDue::Manual);
}

#[test]
fn cron_slot_with_window() {
    let s = Schedule::cron("0 3 * * SAT", Duration::from_secs(3600), "UTC").unwrap();
    let anchor = t("2026-01-01T00:00:00Z"); // a Thursday
    assert_eq!(
        slot(s.next_due(anchor, None, anchor)),
        (
            "2026-01-03T03:00:00Z".into(),
            Some("2026-01-03T04:00:00Z".into())
        )
    );
}

#[test]
fn cron_slot_inside_its_window_is_still_due() {
    let s = Schedule::cron("0 3 * * *", Duration::from_secs(3600), "UTC").unwrap();
    let anchor = t("2026-01-01T00:00:00Z");
    let now = t("2026-01-01T03:59:00Z");
    assert_eq!(
        slot(s.next_due(anchor, None, now)).0,
        "2026-01-01T03:00:00Z"
    );
}

#[test]
fn a_missed_cron_slot_waits_for_the_next_one() {
    let s = Schedule::cron("0 3 * * *", Duration::from_secs(3600), "UTC").unwrap();
    let anchor = t("2026-01-01T00:00:00Z");
    // The 03:00 window closed at 04:00; at 04:00 exactly it is over.
    for now in ["2026-01-01T04:00:00Z", "2026-01-01T12:00:00Z"] {
        assert_eq!(
            slot(s.next_due(anchor, None, t(now))),
            (
                "2026-01-02T03:00:00Z".into(),
                Some("2026-01-02T04:00:00Z".into())
            )
        );
    }
    // Days of downtime: still only the next slot, no catch-up.
    assert_eq!(
        slot(s.next_due(anchor, None, t("2026-01-09T05:00:00Z"))).0,
        "2026-01-10T03:00:00Z"
    );
}

#[test]
fn cron_after_a_rotation_moves_to_the_following_slot() {
    let s = Schedule::cron("0 3 * * *", Duration::from_secs(3600), "UTC").unwrap();
    let done = t("2026-01-01T03:00:00Z");
    let now = t("2026-01-01T03:00:05Z");
    assert_eq!(slot(s.next_due(done, None, now)).0, "2026-01-02T03:00:00Z");
}

#[test]
fn cron_across_dst_keeps_local_wall_time() {
    let s = Schedule::cron("0 4 * * *", Duration::from_secs(3600), "America/New_York").unwrap();
    // Before the spring change 04:00 EST = 09:00 UTC, after it 04:00 EDT = 08:00 UTC.
    let anchor = t("2026-03-07T12:00:00Z");
    assert_eq!(
        slot(s.next_due(anchor, None, anchor)).0,
        "2026-03-08T08:00:00Z"
    );
    let anchor = t("2026-03-06T12:00:00Z");
    assert_eq!(
        slot(s.next_due(anchor, None, anchor)).0,
        "2026-03-07T09:00:00Z"
    );
}

#[test]
fn cron_slot_in_a_dst_gap_runs_after_the_gap_and_in_a_fold_once() {
    let s = Schedule::cron("30 2 * * *", Duration::from_secs(3600), "America/New_York").unwrap();
    let anchor = t("2026-03-07T12:00:00Z");
    let got = slot(s.next_due(anchor, None, anchor)).0;
    assert_eq!(got, "2026-03-08T07:00:00Z", "first minute after the gap");

    let f = Schedule::cron("30 1 * * *", Duration::from_secs(600), "America/New_York").unwrap();
    let anchor = t("2026-10-31T12:00:00Z");
    let first = s_slot(&f, anchor);
    assert_eq!(format_instant(first), "2026-11-01T05:30:00Z");
    // After that slot ran, the next is the next day (not the repeated 01:30 EST).
    assert_eq!(format_instant(s_slot(&f, first)), "2026-11-02T06:30:00Z");
}

fn s_slot(s: &Schedule, anchor: Millis) -> Millis {
    match s.next_due(anchor, None, anchor) {
        NextDue::Scheduled(d) => d.slot,
        other => panic!("{other:?}"),
    }
}

#[test]
fn ttl_is_lazy_and_counts_from_the_last_rotation() {
    let s = Schedule::ttl(Duration::from_secs(3600)).unwrap();
    assert!(!s.is_automatic());
    assert_eq!(
        s.next_due(0, None, 5),
        NextDue::OnRead {
            expires_at: 3_600_000
        }
    );
    assert_eq!(
        s.next_due(0, Some(1_000), 5),
        NextDue::OnRead {
            expires_at: 3_601_000
        }
    );
}

#[test]
fn schedule_errors_name_their_field() {
    assert_eq!(
        Schedule::interval(0, "02:00", "UTC").unwrap_err(),
        ScheduleError::IntervalZero
    );
    assert_eq!(
        Schedule::interval(0, "02:00", "UTC").unwrap_err().field(),
        "interval_days"
    );
    for bad in [
        "2:3", "24:00", "12:60", "ab:cd", "1200", "", "12:00:00", "-1:00",
    ] {
        let e = Schedule::interval(1, bad, "UTC").unwrap_err();
        assert_eq!(e.field(), "rotate_at", "{bad}");
    }
    assert!(Schedule::interval(1, "7:05", "UTC").is_ok());
    let e = Schedule::interval(1, "02:00", "Mars/Olympus").unwrap_err();
    assert_eq!(e.field(), "time_zone");
    let e = Schedule::cron("61 * * * *", Duration::from_secs(3600), "UTC").unwrap_err();
    assert_eq!(e.field(), "cron");
    let e = Schedule::cron("0 0 30 2 *", Duration::from_secs(3600), "UTC").unwrap_err();
    assert_eq!(e.field(), "cron", "February 30th never matches");
    let e = Schedule::cron("0 0 * * * *", Duration::from_secs(3600), "UTC").unwrap_err();
    assert_eq!(e.field(), "cron", "six fields (seconds) are refused");
    let e = Schedule::cron("0 3 * * *", Duration::from_secs(59), "UTC").unwrap_err();
    assert_eq!(e.field(), "window");
    assert_eq!(Schedule::ttl(Duration::ZERO).unwrap_err().field(), "ttl");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("3600").unwrap(), Duration::from_secs(3600));
    assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
    assert_eq!(
        parse_duration("2w").unwrap(),
        Duration::from_secs(1_209_600)
    );
    for bad in [
        "",
        "h",
        "1x",
        "5mss",
        "ms",
        "1h30",
        "99999999999999999999s",
        "-1s",
        "1.5h",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert_eq!(format_duration(Duration::from_secs(93_784)), "1d2h3m4s");
    assert_eq!(
        parse_duration(&format_duration(Duration::from_secs(93_784))).unwrap(),
        Duration::from_secs(93_784)
    );
}

#[test]
fn display_is_operator_readable() {
    let s = Schedule::interval(30, "02:30", "Europe/Paris").unwrap();
    assert_eq!(s.to_string(), "every 30 days at 02:30 Europe/Paris");
    let c = Schedule::cron("0 3 * * SAT", Duration::from_secs(3600), "UTC").unwrap();
    assert_eq!(c.to_string(), "cron \"0 3 * * SAT\" UTC, window 1h");
    assert_eq!(
        Schedule::ttl(Duration::from_secs(86_400))
            .unwrap()
            .to_string(),
        "lazy, ttl 1d"
    );
}
