//! model.json.
