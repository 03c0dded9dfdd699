//! The body of the `api_request` fuzz target, compiled only with the `fuzzing` feature (enabled
//! by `fuzz/Cargo.toml` and, through a dev-dependency, by `cargo test`), so that `fuzz/` and the
//! test that replays the committed corpus run exactly the same code. It returns which decoders
//! accepted the input; a broken property panics, which is the fuzzer's finding.

use super::binary;
use super::request::{self, SelectRequest, SimulateRequest};
use super::wire::DEFAULT_MAX_BODY_BYTES;
use crate::model::ScoreParams;

/// Arbitrary bytes as every request body the server decodes: a JSON lookup, a bincode lookup,
/// a JSON selection and a JSON simulation. A decoded lookup must re-encode to a body that
/// decodes to the same ids; a decoded selection must validate (to a value or an error) without
/// panicking; a decoded simulation holds at least one scenario, every one named uniquely.
///
/// # Panics
/// When a decoded lookup does not survive its own re-encoding, a decoded selection's
/// parameters do not validate, or a decoded simulation has no scenario or two of one name.
pub fn requests(bytes: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    if let Ok(lookup) = request::lookup_from_json(bytes) {
        decoded.lookup_json = true;
        let json = serde_json::json!({ "ids": lookup.ids }).to_string();
        let again =
            request::lookup_from_json(json.as_bytes()).expect("a lookup's own JSON must decode");
        assert_eq!(again, lookup);
    }
    if let Ok(lookup) = request::lookup_from_bincode(bytes, DEFAULT_MAX_BODY_BYTES) {
        decoded.lookup_bincode = true;
        // The decoder takes exactly one message with nothing after it: the same bytes.
        assert_eq!(binary::encode(&lookup), bytes);
    }
    if let Ok(select) = SelectRequest::from_json(bytes) {
        decoded.select = true;
        if let Ok(params) = select.params(&ScoreParams::default()) {
            params
                .validate()
                .expect("a request's parameters are validated once decoded");
        }
        let _ = select.campaign(Default::default());
    }
    if let Ok(simulate) = SimulateRequest::from_json(bytes) {
        decoded.simulate = true;
        let scenarios = &simulate.scenarios.scenarios;
        assert!(!scenarios.is_empty(), "a decoded simulation has a scenario");
        let mut names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), scenarios.len(), "scenario names are unique");
        let _ = simulate.options(Default::default());
    }
    decoded
}

/// Which of the server's decoders accepted one input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoded {
    /// As a JSON lookup (`POST /v1/customers/lookup`).
    pub lookup_json: bool,
    /// As a bincode lookup.
    pub lookup_bincode: bool,
    /// As a JSON selection (`POST /v1/select`).
    pub select: bool,
    /// As a JSON simulation (`POST /v1/simulate`).
    pub simulate: bool,
}
