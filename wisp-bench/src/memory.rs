pub(crate) async fn run(_b: &std::path::Path, _c: usize) -> Result<(), String> {
    Ok(())
}
