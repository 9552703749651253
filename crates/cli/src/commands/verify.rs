use crate::config::open_app;
use std::path::Path;
use std::process::ExitCode;

/// Recomputes every balance from the entries, checks every transaction balances and the
/// hash chains are intact; non-zero exit on any violation.
pub async fn run(url: &str, key: &Path) -> anyhow::Result<ExitCode> {
    let app = open_app(url, key).await?;
    let started = std::time::Instant::now();
    let report = app
        .verify_ledger()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "checked {} tenants, {} accounts, {} entries, {} transactions in {:.1}s",
        report.tenants,
        report.accounts,
        report.entries,
        report.transactions,
        started.elapsed().as_secs_f64()
    );
    println!(
        "- every cached balance equals the sum of its entries, and every entry's balance-after its running sum"
    );
    println!("- every transaction balances per unit (fen, points)");
    println!("- the points lots of every points account sum to its balance");
    println!("- every tenant's hash chain is intact from the first entry to its head");
    if report.is_clean() {
        println!("OK: no violations");
        Ok(ExitCode::SUCCESS)
    } else {
        for v in &report.violations {
            println!("VIOLATION: {v}");
        }
        println!("{} violations", report.violations.len());
        Ok(ExitCode::FAILURE)
    }
}
