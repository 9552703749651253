use crate::config::open_app;
use patron_app::auth::InitRequest;
use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Tenant code used at login (lower-case letters, digits, '-').
    #[arg(long)]
    tenant: String,
    /// The merchant's name.
    #[arg(long)]
    tenant_name: String,
    #[arg(long, default_value = "main")]
    store_code: String,
    #[arg(long, default_value = "总店")]
    store_name: String,
    #[arg(long, default_value = "owner")]
    username: String,
    #[arg(long, default_value = "Owner")]
    display_name: String,
    /// The owner's password (at least 8 characters); or set PATRON_INIT_PASSWORD.
    #[arg(long, env = "PATRON_INIT_PASSWORD", hide_env_values = true)]
    password: String,
}

pub async fn run(url: &str, key: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let app = open_app(url, key).await?;
    let req = InitRequest {
        tenant_code: a.tenant,
        tenant_name: a.tenant_name,
        store_code: a.store_code,
        store_name: a.store_name,
        username: a.username,
        display_name: a.display_name,
        password: a.password,
    };
    match app.init_tenant(req).await {
        Ok(out) => {
            println!(
                "created tenant {} ({}), store {} ({}), owner {}",
                out.tenant.code,
                out.tenant.name,
                out.store.code,
                out.store.name,
                out.owner.username
            );
            println!(
                "log in with tenant \"{}\", username \"{}\" and the password you chose",
                out.tenant.code, out.owner.username
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("cannot create the tenant:\n{}", super::explain(&e));
            Ok(ExitCode::FAILURE)
        }
    }
}
