//! The purchase and spend models against published results (CDNOW), an independent
//! implementation (lifetimes, at the published parameters), their own generative story
//! (recovery), extreme histories and properties.

use std::path::Path;

use crv::btyd::bgnbd::BgNbd;
use crv::btyd::fit::{PurchaseData, fit_purchase_model};
use crv::btyd::gamma_gamma::{GammaGamma, Spend, SpendData, fit_gamma_gamma};
use crv::btyd::{History, PurchaseModel};
use crv::synthetic::RowRng;
use proptest::prelude::*;

/// The CDNOW sample's (history, mean repeat spend), customer by customer.
fn cdnow() -> Vec<(u64, History, f64)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cdnow_summary.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let value = |i: usize| record[i].parse::<f64>().unwrap();
            let history = History {
                frequency: value(1),
                recency: value(2),
                age: value(3),
            };
            (value(0) as u64, history, value(4))
        })
        .collect()
}

/// `value` equals `published` to 3 significant digits.
fn assert_3_digits(name: &str, value: f64, published: f64) {
    let digits = published.abs().log10().floor() as i32 - 2;
    let unit = 10f64.powi(digits);
    assert!(
        (value - published).abs() <= 0.5 * unit,
        "{name}: {value} is not {published} to 3 significant digits"
    );
}

/// The published BG/NBD estimates on CDNOW (Fader, Hardie & Lee 2005).
const CDNOW_BGNBD: BgNbd = BgNbd {
    r: 0.243,
    alpha: 4.414,
    a: 0.793,
    b: 2.426,
};

/// The published Gamma-Gamma estimates on CDNOW's repeat buyers (Fader, Hardie & Berger's
/// note; lifetimes reproduces them).
const CDNOW_GAMMA_GAMMA: GammaGamma = GammaGamma {
    p: 6.25,
    q: 3.74,
    gamma: 15.44,
};

#[test]
fn bgnbd_on_cdnow_gives_the_published_estimates() {
    let histories: Vec<History> = cdnow().iter().map(|(_, h, _)| *h).collect();
    let data = PurchaseData::compress(&histories);
    assert_eq!(data.customers, 2357);
    let (model, estimate) = fit_purchase_model::<BgNbd>(&data, None).unwrap();
    eprintln!("{model:?} {estimate:?}");
    assert_3_digits("r", model.r, CDNOW_BGNBD.r);
    assert_3_digits("alpha", model.alpha, CDNOW_BGNBD.alpha);
    assert_3_digits("a", model.a, CDNOW_BGNBD.a);
    assert_3_digits("b", model.b, CDNOW_BGNBD.b);
    assert_3_digits("log-likelihood", estimate.log_likelihood, -9582.4);
    assert!(
        estimate.status.starts_with("converged"),
        "{}",
        estimate.status
    );
}

#[test]
fn gamma_gamma_on_cdnow_repeat_buyers_gives_the_published_estimates() {
    let spends: Vec<Spend> = cdnow()
        .iter()
        .filter(|(_, h, _)| h.frequency > 0.0)
        .map(|(_, h, m)| Spend {
            frequency: h.frequency,
            monetary_value: *m,
        })
        .collect();
    let data = SpendData::compress(&spends);
    assert_eq!(data.repeat_buyers, 946);
    let (model, estimate) = fit_gamma_gamma(&data, None).unwrap();
    eprintln!("{model:?} {estimate:?}");
    assert_3_digits("p", model.p, CDNOW_GAMMA_GAMMA.p);
    assert_3_digits("q", model.q, CDNOW_GAMMA_GAMMA.q);
    assert_3_digits("gamma", model.gamma, CDNOW_GAMMA_GAMMA.gamma);
}
