//! Placeholder until the spec-diff module lands.
pub(crate) fn run(_upstream: &std::path::Path, _spec_dir: &std::path::Path) -> anyhow::Result<bool> {
    anyhow::bail!("spec-diff is not implemented yet")
}
