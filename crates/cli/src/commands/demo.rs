use crate::config::open_app;
use patron_app::App;
use patron_app::demo::DemoOptions;
use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Number of members (up to 1,000,000).
    #[arg(long, default_value_t = 5_000)]
    members: u64,
    /// Seed: the same seed gives the same chain.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

pub async fn run(url: &str, key: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let app = open_app(url, key).await?;
    generate(&app, a.members, a.seed).await?;
    Ok(ExitCode::SUCCESS)
}

/// Generates the demo chain with a progress bar and prints how to log in.
pub async fn generate(app: &App, members: u64, seed: u64) -> anyhow::Result<()> {
    let pb = super::progress_bar(Some(members), "members");
    let started = std::time::Instant::now();
    let progress = {
        let pb = pb.clone();
        move |done: u64, total: u64| {
            pb.set_length(total);
            pb.set_position(done);
        }
    };
    let summary = app
        .generate_demo(DemoOptions { members, seed }, &progress)
        .await
        .map_err(|e| anyhow::anyhow!("demo data: {}", super::explain(&e)))?;
    pb.finish_and_clear();
    println!(
        "demo chain ready in {:.1}s: {} stores, {} dishes, {} members ({} organizations), {} cards",
        started.elapsed().as_secs_f64(),
        summary.stores,
        summary.menu_items,
        summary.members,
        summary.organizations,
        summary.cards
    );
    println!(
        "log in with tenant \"{}\", username \"{}\", password \"{}\"",
        summary.tenant_code, summary.owner_username, summary.owner_password
    );
    Ok(())
}
