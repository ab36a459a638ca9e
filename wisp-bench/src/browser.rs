//! Browser benchmark (stub).
/// Browser arguments.
#[derive(clap::Args, Debug)]
pub struct BrowserArgs {}
/// Runs it.
pub async fn run(_a: BrowserArgs) -> Result<(), String> {
    Ok(())
}
