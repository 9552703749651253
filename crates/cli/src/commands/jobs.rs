use crate::config::open_app;
use chrono::NaiveDate;
use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Only this tenant (code); all tenants when absent.
    #[arg(long)]
    tenant: Option<String>,
    /// Run as of this local date (YYYY-MM-DD), e.g. to catch up; default today.
    #[arg(long)]
    today: Option<NaiveDate>,
    /// Run even the jobs that already ran today (a review runs whenever forced).
    #[arg(long)]
    force: bool,
}

/// Runs the loyalty jobs: points expiry, coupon expiry and the level review. `patron serve`
/// runs the due ones on a schedule; this runs them now.
pub async fn run(url: &str, key: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let app = open_app(url, key).await?;
    let mut tenants = app.storage.list_tenants().await?;
    if let Some(code) = &a.tenant {
        tenants.retain(|t| &t.code == code);
        if tenants.is_empty() {
            anyhow::bail!("no tenant with code {code:?}");
        }
    }
    for t in tenants {
        let r = app
            .run_jobs_for(t.id, &t.code, a.today, a.force)
            .await
            .map_err(|e| anyhow::anyhow!("tenant {}: {}", t.code, super::explain(&e)))?;
        println!(
            "{} ({}): {} points expired in {} accounts; {} coupons expired; {} of {} customers changed level{}",
            r.tenant,
            r.today.map(|d| d.to_string()).unwrap_or_default(),
            r.points_expired,
            r.accounts_expired,
            r.coupons_expired,
            r.levels_changed,
            r.levels_reviewed,
            if r.skipped.is_empty() {
                String::new()
            } else {
                format!(" (not due: {})", r.skipped.join(", "))
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
