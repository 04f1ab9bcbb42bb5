//! `kedge check FILE...`: validate manifests kedge understands (KEDA ScaledObject,
//! TriggerAuthentication, ClusterTriggerAuthentication, and whatever else is registered in
//! `model::manifest::KINDS`) without running anything.
//!
//! Prints one line per problem on stdout, `file[doc] field.path: message`, and a summary on
//! stderr; exits 0 when every document is valid and 1 otherwise.

use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Manifest files (YAML or JSON; multi-document files allowed).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Run the check; returns whether everything was valid (the caller maps it to the exit code).
pub fn run(args: &CheckArgs) -> anyhow::Result<bool> {
    let report = model::manifest::check_files(&args.files);
    let mut out = std::io::stdout().lock();
    for e in &report.errors {
        writeln!(out, "{e}")?;
    }
    out.flush()?;
    if report.ok() {
        eprintln!(
            "ok: {} file(s), {} document(s) valid",
            report.files, report.documents
        );
    } else {
        eprintln!(
            "{} problem(s) in {} file(s); fix them and run kedge check again",
            report.errors.len(),
            report.files
        );
    }
    Ok(report.ok())
}
