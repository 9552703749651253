//! One module per subcommand.

pub mod bench;
pub mod bench_all;
pub mod bench_analytics;
pub mod bench_checkout;
pub mod bench_ledger;
pub mod coupons;
pub mod demo;
pub mod export;
pub mod import;
pub mod init;
pub mod jobs;
pub mod serve;
pub mod verify;

use patron_app::{Actor, App, AppError};
use std::process::ExitCode;

pub async fn migrate(database_url: &str) -> anyhow::Result<ExitCode> {
    let storage = patron_store::connect(database_url).await?;
    println!("migrations applied ({:?})", storage.backend());
    Ok(ExitCode::SUCCESS)
}

/// The staff member a command acts as (recorded on what it changes).
pub async fn actor(app: &App, tenant: &str, username: &str) -> anyhow::Result<Actor> {
    let t = app.storage.tenant_by_code(tenant).await?.ok_or_else(|| {
        anyhow::anyhow!("no tenant with code {tenant:?} (see `patron init` or `patron demo`)")
    })?;
    let s = app
        .storage
        .staff_by_username(t.id, username)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("no staff member {username:?} in tenant {tenant:?} (use --user)")
        })?;
    Ok(Actor {
        tenant_id: t.id,
        staff_id: s.id,
        role: s.role,
        store_id: s.store_id,
        display_name: s.display_name,
        scope: None,
    })
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(len: Option<u64>, what: &str) -> indicatif::ProgressBar {
    let pb = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta})",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Prints a use-case error for a person.
pub fn explain(e: &AppError) -> String {
    match e {
        AppError::Validation(v) => {
            v.0.iter()
                .map(|f| format!("  {}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("\n")
        }
        other => other.to_string(),
    }
}
