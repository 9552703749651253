use crate::config::open_app;
use patron_app::import::{ImportOptions, ImportPhase, ImportProgress, write_rejects_csv};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Target {
    /// Customers from a CSV or .xlsx file (headers: the API's field names or their Chinese labels).
    Customers(Args),
}

#[derive(clap::Args)]
pub struct Args {
    /// The .csv or .xlsx file.
    file: PathBuf,
    /// Tenant code.
    #[arg(long)]
    tenant: String,
    /// The staff member the import is recorded under.
    #[arg(long, default_value = "owner")]
    user: String,
    /// Import the good rows even if some are bad (by default nothing is imported then).
    #[arg(long)]
    skip_bad_rows: bool,
    /// Where to write the rejected rows with their reasons (with --skip-bad-rows).
    #[arg(long)]
    rejects: Option<PathBuf>,
}

pub async fn run(url: &str, key: &Path, t: Target) -> anyhow::Result<ExitCode> {
    let Target::Customers(a) = t;
    let app = open_app(url, key).await?;
    let actor = super::actor(&app, &a.tenant, &a.user).await?;
    let pb = super::progress_bar(None, "validating");
    let progress = {
        let pb = pb.clone();
        move |p: ImportProgress| {
            if let Some(total) = p.total {
                pb.set_length(total);
            }
            pb.set_message(match p.phase {
                ImportPhase::Validating => "validating",
                ImportPhase::Inserting => "importing",
            });
            pb.set_position(p.done);
        }
    };
    let started = std::time::Instant::now();
    let report = app
        .import_customers(
            &actor,
            &a.file,
            ImportOptions {
                skip_bad_rows: a.skip_bad_rows,
            },
            &progress,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", a.file.display(), super::explain(&e)))?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    for e in report.rejected.iter().take(200) {
        eprintln!(
            "{}:{}: {}: {}",
            a.file.display(),
            e.line,
            e.field,
            e.message
        );
    }
    if report.rejected.len() > 200 {
        eprintln!("... and {} more problems", report.rejected.len() - 200);
    }
    if let Some(path) = &a.rejects
        && !report.rejected.is_empty()
    {
        write_rejects_csv(&report, path)?;
        eprintln!("rejected rows written to {}", path.display());
    }
    let bad_lines = report.rejected_lines.len();
    println!(
        "{} rows read, {} imported, {} rejected in {:.1}s ({:.0} rows/s)",
        report.rows,
        report.imported,
        bad_lines,
        secs,
        report.imported as f64 / secs.max(1e-9)
    );
    if bad_lines > 0 && !a.skip_bad_rows {
        eprintln!(
            "nothing was imported because {bad_lines} rows are bad; fix them, or use --skip-bad-rows --rejects FILE"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
