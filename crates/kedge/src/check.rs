//! `kedge check FILE...`: validate the KEDA and Karpenter manifests in files as people keep them
//! (ScaledObject, ScaledJob, (Cluster)TriggerAuthentication, NodePool, NodeClaim, EC2NodeClass:
//! whatever is registered in `model::manifest::KINDS`) without running anything.
//!
//! Prints one line per problem on stdout, `file[doc] field.path: message`, one line per document
//! of another kind (`file[doc] kind Secret: skipped`; an error with `--strict`), and a summary on
//! stderr; exits 0 when every checked document is valid and 1 otherwise.

use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Manifest files (YAML or JSON; multi-document files allowed).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Treat documents that are not KEDA's or Karpenter's (Secrets, Deployments, ...) as
    /// errors instead of skipping them.
    #[arg(long)]
    pub strict: bool,
}

/// Run the check; returns whether everything was valid (the caller maps it to the exit code).
pub fn run(args: &CheckArgs) -> anyhow::Result<bool> {
    let opts = model::manifest::CheckOptions {
        strict: args.strict,
    };
    let report = model::manifest::check_files_with(&args.files, &opts);
    let mut out = std::io::stdout().lock();
    for e in &report.errors {
        writeln!(out, "{e}")?;
    }
    for s in &report.skipped {
        writeln!(out, "{s}")?;
    }
    out.flush()?;
    let skipped = if report.skipped.is_empty() {
        String::new()
    } else {
        format!(" ({} of other kinds skipped)", report.skipped.len())
    };
    if report.ok() {
        eprintln!(
            "ok: {} file(s), {} document(s) valid{skipped}",
            report.files,
            report.documents - report.skipped.len()
        );
    } else {
        eprintln!(
            "{} problem(s) in {} file(s){skipped}; fix them and run kedge check again",
            report.errors.len(),
            report.files
        );
    }
    Ok(report.ok())
}
