use crate::config::open_app;
use patron_app::export::ExportFormat;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Target {
    /// Customers to a .csv or .xlsx file (ID numbers only masked).
    Customers(Args),
}

#[derive(clap::Args)]
pub struct Args {
    /// The .csv or .xlsx file to write.
    file: PathBuf,
    #[arg(long)]
    tenant: String,
    #[arg(long, default_value = "owner")]
    user: String,
}

pub async fn run(url: &str, key: &Path, t: Target) -> anyhow::Result<ExitCode> {
    let Target::Customers(a) = t;
    let app = open_app(url, key).await?;
    let actor = super::actor(&app, &a.tenant, &a.user).await?;
    let format = ExportFormat::from_path(&a.file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let total = app.storage.count_customers(actor.tenant_id).await?;
    let pb = super::progress_bar(Some(total as u64), "exporting");
    let progress = {
        let pb = pb.clone();
        move |n: u64| pb.set_position(n)
    };
    let rows = app
        .export_customers(&actor, &a.file, format, &progress)
        .await
        .map_err(|e| anyhow::anyhow!("{}", super::explain(&e)))?;
    pb.finish_and_clear();
    println!("{rows} customers written to {}", a.file.display());
    Ok(ExitCode::SUCCESS)
}
