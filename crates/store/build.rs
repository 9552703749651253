// Re-embed the migrations when a file is added or changed (sqlx::migrate! reads them at
// compile time).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
