//! `hero_logic schedules add|list|remove`: the schedules in a data
//! directory's store (the same one `serve` uses; a running server starts
//! their runs).

use super::CliError;
use super::output::outln;
use super::services::{StoreArgs, open_store};
use crate::schedules::{ScheduleError, rfc3339};
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum SchedulesCommand {
    /// Run a flow at the times a cron pattern names (5 fields, or 6 with seconds first).
    Add {
        flow: String,
        cron: String,
        /// The input of every run, as JSON.
        #[arg(long, default_value = "{}")]
        input: String,
        /// The IANA time zone the pattern is read in, such as Europe/Brussels.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List schedules with their next time.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a schedule.
    Remove {
        schedule_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: SchedulesCommand) -> Result<ExitCode, CliError> {
    match command {
        SchedulesCommand::Add { flow, cron, input, timezone, store: store_args } => {
            let input =
                serde_json::from_str(&input).map_err(|e| CliError::Usage(format!("--input is not JSON: {e}")))?;
            let store = open_store(&store_args).await?;
            let made =
                crate::schedules::create(&store, &flow, &cron, input, Some(&timezone), &Default::default()).await;
            store.close().await;
            let schedule = made.map_err(|e| match e {
                ScheduleError::Store(error) => CliError::Failed(format!("{error:#}")),
                other => CliError::Usage(other.to_string()),
            })?;
            outln!("{} {} next at {}", schedule.schedule_id, schedule.flow, rfc3339(schedule.next_us));
            Ok(ExitCode::SUCCESS)
        }
        SchedulesCommand::List { store: store_args, json } => {
            let store = open_store(&store_args).await?;
            let listed = store.schedules().await;
            store.close().await;
            let schedules = listed.map_err(|e| CliError::Failed(format!("{e:#}")))?;
            if json {
                outln!("{}", serde_json::json!({ "schedules": schedules }));
            } else {
                for s in &schedules {
                    let cron =
                        if s.timezone == "UTC" { s.cron.clone() } else { format!("{} ({})", s.cron, s.timezone) };
                    outln!("{}  {:<20} {:<16} next {}", s.schedule_id, s.flow, cron, rfc3339(s.next_us));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SchedulesCommand::Remove { schedule_id, store: store_args } => {
            let store = open_store(&store_args).await?;
            let removed = store.remove_schedule(&schedule_id).await;
            store.close().await;
            if !removed.map_err(|e| CliError::Failed(format!("{e:#}")))? {
                return Err(CliError::Usage(format!("no schedule with id '{schedule_id}'")));
            }
            outln!("removed {schedule_id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
