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
