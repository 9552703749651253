//! The `patron` binary: a thin command-line shell over the use cases in `patron_app`.

mod commands;
mod config;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "patron",
    version,
    about = "Customer relationship and membership for restaurants"
)]
struct Cli {
    /// sqlite://FILE (default sqlite://patron.db in the current directory) or postgres://...
    #[arg(
        long,
        global = true,
        env = "PATRON_DATABASE_URL",
        default_value = "sqlite://patron.db"
    )]
    database_url: String,
    /// File holding the secret that protects ID numbers (created on first use).
    #[arg(
        long,
        global = true,
        env = "PATRON_KEY_FILE",
        default_value = "patron.key"
    )]
    key_file: std::path::PathBuf,
    /// Log format: pretty or json.
    #[arg(
        long,
        global = true,
        env = "PATRON_LOG_FORMAT",
        default_value = "pretty"
    )]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and back office.
    Serve(commands::serve::Args),
    /// Create a tenant, its first store and its owner.
    Init(commands::init::Args),
    /// Apply database migrations and exit.
    Migrate,
    /// Fill a realistic demo restaurant chain (tenant "demo").
    Demo(commands::demo::Args),
    /// Import records from a file.
    #[command(subcommand)]
    Import(commands::import::Target),
    /// Export records to a file.
    #[command(subcommand)]
    Export(commands::export::Target),
    /// Check the ledger: balances, balanced transactions, hash chains.
    Verify,
    /// Coupon housekeeping.
    #[command(subcommand)]
    Coupons(commands::coupons::Action),
    /// Run the loyalty jobs now: points expiry, coupon expiry, level review.
    Jobs(commands::jobs::Args),
    /// Measure performance against a bare reference in the same run.
    #[command(subcommand)]
    Bench(commands::bench::Target),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    config::init_logging(&cli.log_format, matches!(cli.command, Command::Serve(_)));
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(&cli.database_url, &cli.key_file, args).await,
        Command::Init(args) => commands::init::run(&cli.database_url, &cli.key_file, args).await,
        Command::Migrate => commands::migrate(&cli.database_url).await,
        Command::Demo(args) => commands::demo::run(&cli.database_url, &cli.key_file, args).await,
        Command::Import(t) => commands::import::run(&cli.database_url, &cli.key_file, t).await,
        Command::Export(t) => commands::export::run(&cli.database_url, &cli.key_file, t).await,
        Command::Verify => commands::verify::run(&cli.database_url, &cli.key_file).await,
        Command::Coupons(a) => commands::coupons::run(&cli.database_url, &cli.key_file, a).await,
        Command::Jobs(a) => commands::jobs::run(&cli.database_url, &cli.key_file, a).await,
        Command::Bench(t) => commands::bench::run(&cli.database_url, &cli.key_file, t).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
