//! The committed CRDs, Helm chart RBAC and example manifests.
//!
//! - The YAML under `deploy/crds/` and `deploy/helm/kedge/crds/` is exactly what
//!   `operator::crd::schema::crds()` generates (CI fails when it is stale).
//! - Every example in `examples/eks-sqs/` passes `kedge check`'s validation.
//! - Against a real API server: the CRDs install and become Established, realistic KEDA and
//!   Karpenter manifests apply and read back without a field pruned, structurally wrong ones
//!   are rejected, and the chart's RBAC lets the operator's ServiceAccount do what it needs and
//!   nothing it must not.

mod common;

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const CRD_DIRS: [&str; 2] = ["deploy/crds", "deploy/helm/kedge/crds"];

/// `KEDGE_UPDATE_CRDS=1 cargo test -p operator --test crds` rewrites the files (the same as
/// `kedge crds --out DIR` for both directories).
#[test]
fn committed_crds_are_generated_from_the_types() {
    let update = std::env::var("KEDGE_UPDATE_CRDS").is_ok_and(|v| v == "1");
    let generated = operator::crd::schema::crds();
    let mut stale = Vec::new();
    for dir in CRD_DIRS {
        let dir = repo_root().join(dir);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
        }
        for (file, yaml) in &generated {
            let path = dir.join(file);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if committed != *yaml {
                if update {
                    std::fs::write(&path, yaml).unwrap();
                } else {
                    stale.push(path.display().to_string());
                }
            }
        }
        // No leftovers from a kind that was renamed or removed.
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            if name.ends_with(".yaml") && !generated.iter().any(|(f, _)| *f == name) {
                stale.push(format!("{}/{name} (not generated any more)", dir.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "CRD files are stale (the Rust types changed): {}\nregenerate with: {}\n(or KEDGE_UPDATE_CRDS=1 cargo test -p operator --test crds)",
        stale.join(", "),
        operator::crd::schema::REGENERATE
    );
}
