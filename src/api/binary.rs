//! The binary lookup protocol: `POST /v1/customers/lookup` with
//! `Content-Type: application/x-bincode` takes a [`LookupRequest`] and answers a
//! [`LookupResponse`], both bincode 2 with [`config`] (little-endian, fixed-width integers, so a
//! client in any language reads it with plain offsets). The same ids give the same entries as
//! the JSON form, in request order.

use bincode::{Decode, Encode};

use crate::model::Tier;

/// The media type of the binary protocol.
pub const MEDIA_TYPE: &str = "application/x-bincode";

/// [`MEDIA_TYPE`] as the `Content-Type` of an answer.
pub const CONTENT_TYPE: hyper::header::HeaderValue =
    hyper::header::HeaderValue::from_static(MEDIA_TYPE);

/// Bincode configuration of both directions.
pub fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::NoLimit,
> {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// A batch lookup: the customer ids, answered in this order.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LookupRequest {
    /// Customer ids to look up.
    pub ids: Vec<u64>,
}

/// The answer to a [`LookupRequest`]: one entry per requested id, in request order.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct LookupResponse {
    /// One entry per requested id.
    pub customers: Vec<LookupEntry>,
}

/// One requested id and, when it is in the store, its score.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct LookupEntry {
    /// The id as requested.
    pub customer_id: u64,
    /// `None` when the id is not in the store.
    pub score: Option<CustomerScore>,
}

/// A customer's relationship value and where it stands among all customers.
#[derive(Debug, Clone, Copy, PartialEq, Encode, Decode)]
pub struct CustomerScore {
    /// The customer's CRV under the served parameters.
    pub crv: f32,
    /// The value tier.
    pub tier: Tier,
    /// 1 is the highest CRV.
    pub rank: u32,
    /// Share of customers ranked at or below this one, in (0, 100].
    pub percentile: f32,
}

/// What the purchase model expects of a customer, beside their score, when the served table
/// is valued by one (`crv serve --model`): JSON lookups carry it; the bincode answer does not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerOutlook {
    /// P(alive) at the end of observation.
    pub p_alive: f32,
    /// Expected purchases over the served horizon.
    pub expected_purchases: f32,
}

/// A served customer: the score, and the outlook where the table has one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServedCustomer {
    /// CRV, tier, rank, percentile.
    pub score: CustomerScore,
    /// P(alive) and expected purchases under a purchase model.
    pub outlook: Option<CustomerOutlook>,
}

/// Why a binary body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not a bincode lookup message (bad length prefix, truncated, too long).
    #[error("the body is not a bincode lookup message: {0}")]
    Malformed(String),
    /// Bytes remain after a complete message.
    #[error("{0} bytes follow the end of the bincode lookup message")]
    TrailingBytes(usize),
}

/// Decodes a binary request body of at most `max_bytes` bytes (the server's body limit): an
/// 8-byte little-endian id count, then that many 8-byte little-endian ids — exactly the bincode
/// encoding of [`LookupRequest`] under [`config`], read by hand so that a forged count is
/// checked against the body's length before anything is allocated for it.
pub fn decode_request(bytes: &[u8], max_bytes: usize) -> Result<LookupRequest, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::Malformed(format!(
            "{} bytes exceed the limit of {max_bytes}",
            bytes.len()
        )));
    }
    let (count, ids) = bytes.split_first_chunk::<8>().ok_or_else(|| {
        DecodeError::Malformed(format!(
            "{} bytes cannot hold the 8-byte id count",
            bytes.len()
        ))
    })?;
    let count = u64::from_le_bytes(*count);
    let whole = ids.len() / 8;
    if count > whole as u64 {
        return Err(DecodeError::Malformed(format!(
            "the count says {count} ids but the body holds {whole}"
        )));
    }
    let (ids, trailing) = ids.split_at(count as usize * 8);
    if !trailing.is_empty() {
        return Err(DecodeError::TrailingBytes(trailing.len()));
    }
    let ids = ids
        .chunks_exact(8)
        .map(|id| u64::from_le_bytes(id.try_into().expect("chunks of 8 bytes")))
        .collect();
    Ok(LookupRequest { ids })
}

/// Encodes `value` (a request or a response) with [`config`].
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    bincode::encode_to_vec(value, config()).expect("encoding into a Vec cannot fail")
}

/// Largest response [`decode_response`] accepts: far above 10,000 entries, and a bound on what
/// a forged length prefix can make a client allocate.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Decodes a [`LookupResponse`] (for clients: the load test, the tests).
pub fn decode_response(bytes: &[u8]) -> Result<LookupResponse, DecodeError> {
    let (response, read) =
        bincode::decode_from_slice(bytes, config().with_limit::<MAX_RESPONSE_BYTES>())
            .map_err(|error| DecodeError::Malformed(error.to_string()))?;
    match bytes.len() - read {
        0 => Ok(response),
        trailing => Err(DecodeError::TrailingBytes(trailing)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_decoder_reads_what_bincode_writes() {
        for ids in [vec![], vec![7], vec![0, u64::MAX, 1 << 40, 12345]] {
            let request = LookupRequest { ids };
            assert_eq!(decode_request(&encode(&request), 1 << 20), Ok(request));
        }
    }

    #[test]
    fn forged_counts_and_trailing_bytes_are_errors() {
        let mut body = encode(&LookupRequest { ids: vec![1, 2] });
        body[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode_request(&body, 1 << 20),
            Err(DecodeError::Malformed(_))
        ));
        let mut body = encode(&LookupRequest { ids: vec![1] });
        body.push(0);
        assert_eq!(
            decode_request(&body, 1 << 20),
            Err(DecodeError::TrailingBytes(1))
        );
        assert!(matches!(
            decode_request(&[1, 2, 3], 1 << 20),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_request(&[0; 64], 16),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn responses_round_trip() {
        let response = LookupResponse {
            customers: vec![
                LookupEntry {
                    customer_id: 3,
                    score: Some(CustomerScore {
                        crv: 12.5,
                        tier: Tier::B,
                        rank: 2,
                        percentile: 50.0,
                    }),
                },
                LookupEntry {
                    customer_id: 9,
                    score: None,
                },
            ],
        };
        assert_eq!(decode_response(&encode(&response)), Ok(response));
    }
}
