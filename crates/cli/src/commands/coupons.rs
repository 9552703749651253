use crate::config::open_app;
use chrono::NaiveDate;
use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Action {
    /// Mark issued coupons past their last valid day as expired.
    Expire(ExpireArgs),
}

#[derive(clap::Args)]
pub struct ExpireArgs {
    /// Only this tenant (code); all tenants when absent.
    #[arg(long)]
    tenant: Option<String>,
    /// As of this local date (YYYY-MM-DD); default: the tenant's today.
    #[arg(long)]
    today: Option<NaiveDate>,
}

pub async fn run(url: &str, key: &Path, action: Action) -> anyhow::Result<ExitCode> {
    let Action::Expire(a) = action;
    let app = open_app(url, key).await?;
    let mut tenants = app.storage.list_tenants().await?;
    if let Some(code) = &a.tenant {
        tenants.retain(|t| &t.code == code);
        if tenants.is_empty() {
            anyhow::bail!("no tenant with code {code:?}");
        }
    }
    for t in tenants {
        let fail =
            |e: patron_app::AppError| anyhow::anyhow!("tenant {}: {}", t.code, super::explain(&e));
        let (today, n) = match a.today {
            Some(d) => (d, app.expire_coupons(t.id, d).await.map_err(fail)?),
            None => app.expire_coupons_today(t.id).await.map_err(fail)?,
        };
        println!("{} ({today}): {n} coupons expired", t.code);
    }
    Ok(ExitCode::SUCCESS)
}
