use crate::config::open_app;
use patron_app::App;
use patron_app::demo::{DemoOptions, DemoPhase};
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
    /// Members on file only, without the two years of visits (much quicker).
    #[arg(long)]
    no_history: bool,
}

pub async fn run(url: &str, key: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let app = open_app(url, key).await?;
    let opts = DemoOptions {
        members: a.members,
        seed: a.seed,
        history: !a.no_history,
    };
    generate_with(&app, opts).await?;
    Ok(ExitCode::SUCCESS)
}

/// Generates the demo chain, with its history, with a progress bar and prints how to log in.
pub async fn generate(app: &App, members: u64, seed: u64) -> anyhow::Result<()> {
    let opts = DemoOptions {
        members,
        seed,
        history: true,
    };
    generate_with(app, opts).await
}

/// Generates the demo chain as asked, with a progress bar, and prints how to log in.
pub async fn generate_with(app: &App, opts: DemoOptions) -> anyhow::Result<()> {
    let pb = super::progress_bar(Some(opts.members), "members");
    let started = std::time::Instant::now();
    let progress = {
        let pb = pb.clone();
        move |phase: DemoPhase, done: u64, total: u64| {
            pb.set_message(match phase {
                DemoPhase::Members => "members",
                DemoPhase::Checkouts => "checkouts",
            });
            pb.set_length(total);
            pb.set_position(done);
        }
    };
    let summary = app
        .generate_demo(opts, &progress)
        .await
        .map_err(|e| anyhow::anyhow!("demo data: {}", super::explain(&e)))?;
    pb.finish_and_clear();
    println!(
        "demo chain ready in {:.1}s: {} stores, {} dishes, {} members ({} organizations), {} cards; \
         two years of history: {} checkouts ({} reversed the same day), {} top-ups",
        started.elapsed().as_secs_f64(),
        summary.stores,
        summary.menu_items,
        summary.members,
        summary.organizations,
        summary.cards,
        summary.checkouts,
        summary.reversals,
        summary.top_ups
    );
    println!(
        "log in with tenant \"{}\", username \"{}\", password \"{}\"",
        summary.tenant_code, summary.owner_username, summary.owner_password
    );
    Ok(())
}
