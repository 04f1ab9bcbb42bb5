//! One AFL++ binary for every fuzz target: `KEDGE_FUZZ_TARGET=<name>` picks the harness
//! (the names are `fuzzing::TARGETS`'). Run through `scripts/fuzz`, which sets it.

fn main() {
    let name = std::env::var("KEDGE_FUZZ_TARGET").unwrap_or_default();
    let Some(target) = fuzzing::target(&name) else {
        let names: Vec<&str> = fuzzing::TARGETS.iter().map(|t| t.name).collect();
        eprintln!(
            "kedge-fuzz: set KEDGE_FUZZ_TARGET to one of {} (got {name:?})",
            names.join(", ")
        );
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| {
        (target.run)(data);
    });
}
