//! `kedge bench autoscale`: placeholder until the scale loop lands.

#[derive(clap::Args, Debug)]
pub struct BenchAutoscaleArgs {}

pub fn run(_args: &BenchAutoscaleArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
