//! `siyu bench`: import and ingestion throughput, measured on this machine.
pub use siyu::platform::config::Settings;

#[derive(clap::Args)]
pub struct BenchArgs {}

pub async fn run(_s: &Settings, _a: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
