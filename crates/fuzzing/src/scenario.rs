//! The scenario format of `kedge up` and `kedge simulate` (`cluster::scenario`).
//!
//! The input is written to a scenario file in a private directory and loaded the way
//! `--scenario FILE` loads it; manifests and traces named by the scenario resolve inside that
//! directory. A `--set` edit is tried too, as `kedge simulate` applies it.

use std::path::PathBuf;

use cluster::scenario::{Builtin, Source};

const NO_BUILTIN: Builtin = Builtin {
    name: "fuzz",
    scenario: "",
    manifests: "",
    trace: None,
};

pub fn run(data: &[u8]) {
    let Some(path) = scenario_path() else {
        return;
    };
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(mut source) = Source::read(Some(&path), NO_BUILTIN) else {
        return;
    };
    if let Ok(loaded) = source.load() {
        // What `kedge up` and `kedge simulate` compute first from a loaded scenario.
        std::hint::black_box(loaded.scenario.total(Some(&loaded.arrivals)));
        std::hint::black_box(loaded.arrivals.total());
    }
    if source
        .set("scaledobject.spec.triggers[0].metadata.queueLength", "5")
        .is_ok()
    {
        std::hint::black_box(source.load().is_ok());
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
