//! KEDA and Karpenter manifests (YAML or JSON, one or many documents) through `model`'s
//! checker: the code behind `kedge check`, and the reading every substrate does.

pub fn run(data: &[u8]) {
    // Files are read as UTF-8 text (`read_to_string`); other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    std::hint::black_box(model::manifest::check_text("fuzz.yaml", text));
}
