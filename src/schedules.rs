//! Schedules: runs of a flow at the times a cron pattern names, read in the
//! schedule's time zone (an IANA name; UTC unless one is given). Every
//! node looks for due schedules a few times a second; a tick is claimed by
//! moving the schedule's `next_us` on in one conditional UPDATE
//! (`Store::claim_tick`), so of several nodes one starts the run. A
//! schedule found due long ago (the server was down) runs once, and next
//! at its first time after now.

use crate::sandbox::Quotas;
use crate::scheduler::{Scheduler, StartRun};
use crate::store::{Store, StoredFlow, StoredSchedule, Trigger};
use crate::tenancy::DEFAULT_WORKSPACE;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often each node looks for due schedules: the most a run starts late.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// A cron pattern of 5 fields, or 6 with seconds first.
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "a cron pattern has 5 fields (minute hour day month weekday) or 6 with seconds first, not {fields}"
        ));
    }
    text.parse::<Cron>().map_err(|e| format!("'{text}' is not a cron pattern: {e}"))
}

/// A time zone by its IANA name (`Europe/Brussels`); UTC when none is given.
pub fn parse_timezone(name: Option<&str>) -> Result<Tz, String> {
    match name {
        None => Ok(Tz::UTC),
        // In any case: `europe/brussels` is Europe/Brussels, kept so spelled.
        Some(name) => name.parse::<Tz>().ok().or_else(|| find_ignoring_case(name)).ok_or_else(|| {
            let name = crate::sandbox::clip_str(name, 60);
            format!("'{name}' is not a time zone: name one as the IANA database does, such as Europe/Brussels or UTC")
        }),
    }
}

fn find_ignoring_case(name: &str) -> Option<Tz> {
    chrono_tz::TZ_VARIANTS.iter().copied().find(|zone| zone.name().eq_ignore_ascii_case(name))
}

/// The first time after `after_us` that `cron` names, read as wall-clock
/// time in `zone` (so `0 9 * * *` is 9 o'clock there, summer or winter), in
/// microseconds since the epoch.
pub fn next_after(cron: &Cron, zone: Tz, after_us: i64) -> Result<i64, String> {
    let after = DateTime::<Utc>::from_timestamp_micros(after_us).ok_or("the time is out of range")?;
    let next = cron
        .find_next_occurrence(&after.with_timezone(&zone), false)
        .map_err(|e| format!("the pattern names no later time: {e}"))?;
    Ok(next.timestamp_micros())
}

/// `us` as an RFC 3339 time in UTC.
pub fn rfc3339(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Why a schedule cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The pattern or the time zone.
    #[error("{0}")]
    Invalid(String),
    #[error("no flow named '{0}'")]
    NoFlow(String),
    /// The input does not fit the flow's inputs.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Make a schedule of `flow` (which the library must hold) with `input`
/// checked against its inputs, within `quotas`' input size; its first tick
/// is the pattern's next time.
pub async fn create(
    store: &Store,
    flow: &str,
    cron_text: &str,
    input: serde_json::Value,
    timezone: Option<&str>,
    quotas: &Quotas,
) -> Result<StoredSchedule, ScheduleError> {
    let input_bytes = input.to_string().len() as u64;
    if input_bytes > quotas.input_bytes {
        return Err(ScheduleError::Input(format!(
            "the input is {input_bytes} bytes; the input_bytes quota is {}",
            quotas.input_bytes
        )));
    }
    let zone = parse_timezone(timezone).map_err(ScheduleError::Invalid)?;
    let cron = parse_cron(cron_text).map_err(ScheduleError::Invalid)?;
    let stored = store.flow(flow, None).await?.ok_or_else(|| ScheduleError::NoFlow(flow.to_string()))?;
    stored.info.check_input(&input).map_err(|e| ScheduleError::Input(e.to_string()))?;
    let now = crate::trace::now_us();
    let schedule = StoredSchedule {
        schedule_id: uuid::Uuid::now_v7().to_string(),
        flow: flow.to_string(),
        cron: cron_text.trim().to_string(),
        input,
        timezone: zone.name().to_string(),
        next_us: next_after(&cron, zone, now).map_err(ScheduleError::Invalid)?,
        created_us: now,
    };
    // Stored only while the flow is: made as it is removed, it is not.
    if !store.save_schedule(schedule.clone()).await? {
        return Err(ScheduleError::NoFlow(flow.to_string()));
    }
    Ok(schedule)
}

/// Look for due schedules until `stop` is cancelled.
pub fn spawn(store: Arc<Store>, scheduler: Arc<Scheduler>, quotas: Quotas, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            if let Err(error) = fire_due(&store, &scheduler, &quotas).await {
                tracing::warn!(error = format!("{error:#}"), "looking for due schedules failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(LOOK_EVERY) => {}
                _ = stop.cancelled() => return,
            }
        }
    });
}

async fn fire_due(store: &Store, scheduler: &Arc<Scheduler>, quotas: &Quotas) -> anyhow::Result<()> {
    let now = crate::trace::now_us();
    for schedule in store.due_schedules(now).await? {
        let zone = parse_timezone(Some(&schedule.timezone));
        let next = match parse_cron(&schedule.cron).and_then(|cron| next_after(&cron, zone?, now)) {
            Ok(next) => next,
            Err(error) => {
                tracing::warn!(schedule = schedule.schedule_id, error, "a schedule cannot be ticked");
                continue;
            }
        };
        // The flow is read before the tick is claimed: removing a flow
        // removes its schedules in the same transaction, so a claim that
        // still finds the schedule proves the flow read is the one it was
        // made for, not another stored since under the same name.
        let stored = store.flow(&schedule.flow, None).await?;
        if store.claim_tick(&schedule.schedule_id, schedule.next_us, next).await? {
            start(scheduler, quotas, schedule, stored);
        }
    }
    Ok(())
}

/// Start the run of a claimed tick: the flow's latest version with the
/// schedule's input. A tick whose run cannot start is logged and lost.
fn start(scheduler: &Arc<Scheduler>, quotas: &Quotas, schedule: StoredSchedule, stored: Option<StoredFlow>) {
    let Some(stored) = stored else {
        tracing::warn!(schedule = schedule.schedule_id, flow = schedule.flow, "a schedule's flow no longer exists");
        return;
    };
    let input = match stored.info.check_input(&schedule.input) {
        Ok(input) => input,
        Err(error) => {
            tracing::warn!(
                schedule = schedule.schedule_id,
                error = error.to_string(),
                "a schedule's input no longer fits its flow"
            );
            return;
        }
    };
    let trigger = Trigger::Schedule { schedule_id: schedule.schedule_id.clone(), tick_us: schedule.next_us };
    if let Err(error) =
        scheduler.submit(StartRun::stored(DEFAULT_WORKSPACE, stored, input, quotas.clone(), None, trigger))
    {
        tracing::warn!(schedule = schedule.schedule_id, error = format!("{error:?}"), "a scheduled run was refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_have_5_or_6_fields_and_name_their_next_time() {
        let every_second = parse_cron("* * * * * *").unwrap();
        assert_eq!(next_after(&every_second, Tz::UTC, 1_500_000).unwrap(), 2_000_000);
        let hourly = parse_cron("0 * * * *").unwrap();
        assert_eq!(next_after(&hourly, Tz::UTC, 1).unwrap(), 3_600_000_000);
        assert!(parse_cron("* * * *").unwrap_err().contains("5 fields"));
        assert!(parse_cron("* * * * * * *").unwrap_err().contains("not 7"));
        assert!(parse_cron("61 * * * *").unwrap_err().contains("not a cron pattern"));
        assert_eq!(rfc3339(2_000_000), "1970-01-01T00:00:02.000Z");
    }

    /// A pattern names wall-clock times in its zone: 9 o'clock in Brussels
    /// is 08:00 UTC in winter and 07:00 UTC in summer.
    #[test]
    fn patterns_are_read_in_their_time_zone_across_daylight_saving() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros();
        let nine = parse_cron("0 9 * * *").unwrap();
        let brussels = parse_timezone(Some("Europe/Brussels")).unwrap();
        assert_eq!(
            rfc3339(next_after(&nine, brussels, at("2026-01-15T12:00:00Z")).unwrap()),
            "2026-01-16T08:00:00.000Z"
        );
        assert_eq!(
            rfc3339(next_after(&nine, brussels, at("2026-07-15T12:00:00Z")).unwrap()),
            "2026-07-16T07:00:00.000Z"
        );
        let kolkata = parse_timezone(Some("Asia/Kolkata")).unwrap();
        assert_eq!(
            rfc3339(next_after(&nine, kolkata, at("2026-07-15T12:00:00Z")).unwrap()),
            "2026-07-16T03:30:00.000Z"
        );
        assert_eq!(parse_timezone(None).unwrap(), Tz::UTC);
        assert!(parse_timezone(Some("Mars/Olympus")).unwrap_err().contains("is not a time zone"));
        assert_eq!(parse_timezone(Some("europe/BRUSSELS")).unwrap().name(), "Europe/Brussels");
    }
}
