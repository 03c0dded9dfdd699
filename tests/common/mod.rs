//! What more than one integration test needs.

use std::sync::Arc;

use crv::btyd::bgnbd::BgNbd;
use crv::btyd::gamma_gamma::GammaGamma;
use crv::btyd::value::{Purchases, ValueModel};
use crv::table::Valuation;

/// The synthetic customers' purchase histories valued with a BG/NBD model and Gamma-Gamma.
pub fn purchase_valuation() -> Valuation {
    Valuation::Purchases(Arc::new(ValueModel {
        purchases: Purchases::BgNbd(BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        }),
        spend: Some(GammaGamma::from_params([6.25, 3.74, 15.44])),
        margin_rate: 0.3,
        time_unit: None,
    }))
}
