// Re-embed the migrations when one is added or changed (sqlx::migrate! reads them at build
// time, and cargo does not watch the directory on its own).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
