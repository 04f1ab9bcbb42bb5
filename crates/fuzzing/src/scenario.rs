//! The `kedge up` scenario format.
//!
//! The format's code lives in the `kedge` binary crate (`crates/kedge/src/up/scenario.rs`),
//! which no library can depend on, so the file is compiled here as a module of its own. The
//! input is written to a scenario file in a private directory and loaded the way `kedge up
//! --scenario FILE` loads it; manifests named by the scenario resolve inside that directory.

#[allow(dead_code)]
#[path = "../../kedge/src/up/scenario.rs"]
mod format;

use std::path::PathBuf;

pub fn run(data: &[u8]) {
    let Some(path) = scenario_path() else {
        return;
    };
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(loaded) = format::load(Some(&path)) {
        // What `kedge up` computes first from a loaded scenario.
        std::hint::black_box(loaded.scenario.total());
    }
}

/// `<tmp>/kedge-fuzz-scenario-<pid>-<thread>/scenario.yaml`, created once per thread (the
/// replay test runs targets on several threads at once).
fn scenario_path() -> Option<PathBuf> {
    thread_local! {
        static PATH: Option<PathBuf> = {
            let thread = format!("{:?}", std::thread::current().id());
            let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
            let dir = std::env::temp_dir()
                .join(format!("kedge-fuzz-scenario-{}-{thread}", std::process::id()));
            std::fs::create_dir_all(&dir).ok().map(|()| dir.join("scenario.yaml"))
        };
    }
    PATH.with(Clone::clone)
}
