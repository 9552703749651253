use crate::config::open_app;
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, env = "PATRON_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Fill the demo chain first if it is not there yet.
    #[arg(long)]
    demo: bool,
    /// Members to generate with --demo.
    #[arg(long, default_value_t = 5_000)]
    demo_members: u64,
    /// How often to look for due loyalty jobs (points expiry, coupon expiry, level
    /// review), in seconds; 0 turns the schedule off (run `patron jobs` from cron instead).
    #[arg(long, env = "PATRON_JOBS_INTERVAL", default_value_t = 600)]
    jobs_interval: u64,
}

pub async fn run(url: &str, key: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let app = open_app(url, key).await?;
    if a.demo && app.storage.tenant_by_code("demo").await?.is_none() {
        super::demo::generate(&app, a.demo_members, 2026).await?;
    }
    if app.needs_init().await? {
        eprintln!(
            "This database has no staff account yet. Create the first owner with\n  \
             patron init --tenant <code> --tenant-name <name> --username owner --password <password>\n\
             or fill the demo chain with `patron demo` (or `patron serve --demo`)."
        );
    }
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    println!("patron listening on http://{addr}");
    tracing::info!(%addr, backend = ?app.storage.backend(), "serving");
    if a.jobs_interval > 0 {
        // Each job runs once per local day per tenant (recorded in job_runs); a repeat by a
        // second server is harmless (expiry has idempotency keys, level changes a guard).
        let jobs_app = app.clone();
        let every = std::time::Duration::from_secs(a.jobs_interval);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match jobs_app.run_due_jobs(None).await {
                    Ok(reports) => {
                        for r in reports.iter().filter(|r| r.skipped.len() < 3) {
                            tracing::info!(tenant = %r.tenant, points_expired = r.points_expired, coupons_expired = r.coupons_expired, levels_changed = r.levels_changed, "loyalty jobs ran");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "loyalty jobs failed; retrying at the next tick")
                    }
                }
            }
        });
    }
    patron_http::serve(app, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
