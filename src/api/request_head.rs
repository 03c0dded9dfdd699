//! What the router reads of a request's head: its method, path, version and the few header
//! fields its endpoints read ([`Field`]), from hyper's parsed head or straight from the bytes
//! the direct lane read ([`super::direct`]).
//!
//! Why not hyper's `Parts` for both: building one from the direct lane's bytes (a `Uri`, a
//! `HeaderName` and a `HeaderValue` for every field, a `HeaderMap`) was ~1,300 instructions of
//! a single event's ~18,100 (callgrind, `loadtest/instructions.sh`), to read at most four
//! fields. The lane notes where those fields are while it reads the head, so that each is
//! found without comparing names again; `httparse` has already checked every field as hyper's
//! own parse does (names are tokens, values hold no control characters).

use std::ops::Range;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue, ValueIter};
use hyper::http::request::Parts;
use hyper::{Method, Version};

/// A request's head as the router reads it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a Method,
    /// The target's path (without its query).
    pub path: &'a str,
    /// The HTTP version.
    pub version: Version,
    /// The header fields.
    pub headers: Headers<'a>,
}

impl<'a> RequestHead<'a> {
    /// The head hyper parsed.
    pub fn of_parts(parts: &'a Parts) -> RequestHead<'a> {
        RequestHead {
            method: &parts.method,
            path: parts.uri.path(),
            version: parts.version,
            headers: Headers::Parsed(&parts.headers),
        }
    }
}

/// The header fields the endpoints read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `Authorization`: the bearer token of writes and heavy endpoints.
    Authorization,
    /// `Content-Type`: the body's media type.
    ContentType,
    /// `Accept`: the answer's media type (CSV for a selection).
    Accept,
    /// `X-Request-Id`: the client's id for the request, echoed in the answer.
    RequestId,
}

impl Field {
    /// Every field.
    pub const ALL: [Field; 4] = [
        Field::Authorization,
        Field::ContentType,
        Field::Accept,
        Field::RequestId,
    ];

    /// The field's name, lowercase.
    pub fn name(self) -> &'static str {
        match self {
            Field::Authorization => "authorization",
            Field::ContentType => "content-type",
            Field::Accept => "accept",
            Field::RequestId => "x-request-id",
        }
    }

    /// The field named `sent` (in any case), if any.
    pub fn named(sent: &[u8]) -> Option<Field> {
        // By length first: most names are none of these, and are passed over at once.
        let field = match sent.len() {
            13 => Field::Authorization,
            12 if sent[0].eq_ignore_ascii_case(&b'c') => Field::ContentType,
            12 => Field::RequestId,
            6 => Field::Accept,
            _ => return None,
        };
        is_named(sent, field.name()).then_some(field)
    }

    fn header_name(self) -> HeaderName {
        match self {
            Field::Authorization => header::AUTHORIZATION,
            Field::ContentType => header::CONTENT_TYPE,
            Field::Accept => header::ACCEPT,
            Field::RequestId => REQUEST_ID,
        }
    }
}

/// The request id header, read from the request and echoed in the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

// A field's index is kept in a byte.
const _: () = assert!(super::direct::MAX_HEADERS <= 256);

/// Whether field name `sent` is `lowercase` in any case. Only `sent` is lowered
/// (`slice::eq_ignore_ascii_case` lowers both sides).
pub fn is_named(sent: &[u8], lowercase: &str) -> bool {
    sent.len() == lowercase.len()
        && sent
            .iter()
            .zip(lowercase.as_bytes())
            .all(|(sent, lowercase)| sent.to_ascii_lowercase() == *lowercase)
}

/// Where the direct lane found each [`Field`] among a head's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPlaces {
    /// The index of the field's first occurrence, by [`Field`].
    first: [Option<u8>; 4],
    /// Whether the field occurs more than once, by [`Field`].
    repeated: [bool; 4],
}

impl FieldPlaces {
    /// Notes that `field` is the head's field number `index` (below
    /// [`super::direct::MAX_HEADERS`]).
    pub fn note(&mut self, field: Field, index: usize) {
        let slot = field as usize;
        match self.first[slot] {
            None => self.first[slot] = Some(index as u8),
            Some(_) => self.repeated[slot] = true,
        }
    }
}

/// A request's header fields.
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    /// As hyper parsed them.
    Parsed(&'a HeaderMap),
    /// As the direct lane found them: each field's name and value as positions in `bytes`,
    /// and where the [`Field`]s are among them.
    Raw {
        /// The request head's bytes.
        bytes: &'a [u8],
        /// Each field's name and value, in the order sent.
        fields: &'a [(Range<usize>, Range<usize>)],
        /// Where the [`Field`]s are.
        places: &'a FieldPlaces,
    },
}

impl<'a> Headers<'a> {
    /// The value of the first `field`.
    pub fn get(self, field: Field) -> Option<&'a [u8]> {
        self.all(field).next()
    }

    /// The value of every `field`, in the order sent.
    pub fn all(self, field: Field) -> Values<'a> {
        match self {
            Headers::Parsed(map) => Values::Parsed(map.get_all(field.header_name()).into_iter()),
            Headers::Raw {
                bytes,
                fields,
                places,
            } => {
                let slot = field as usize;
                if places.repeated[slot] {
                    Values::Several {
                        bytes,
                        fields: fields.iter(),
                        name: field.name(),
                    }
                } else {
                    let value = places.first[slot].and_then(|at| fields.get(usize::from(at)));
                    Values::One(value.map(|(_, value)| &bytes[value.clone()]))
                }
            }
        }
    }
}

/// The values of one [`Field`] ([`Headers::all`]), in the order sent.
#[derive(Debug)]
pub enum Values<'a> {
    /// From hyper's map.
    Parsed(ValueIter<'a, HeaderValue>),
    /// The direct lane's one field of the name, until taken.
    One(Option<&'a [u8]>),
    /// The direct lane's fields when the name occurs several times.
    Several {
        /// The request head's bytes.
        bytes: &'a [u8],
        /// The fields not yet looked at.
        fields: std::slice::Iter<'a, (Range<usize>, Range<usize>)>,
        /// The name, lowercase.
        name: &'static str,
    },
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Values::Parsed(values) => values.next().map(HeaderValue::as_bytes),
            Values::One(value) => value.take(),
            Values::Several {
                bytes,
                fields,
                name,
            } => fields
                .find(|(field, _)| is_named(&bytes[field.clone()], name))
                .map(|(_, value)| &bytes[value.clone()]),
        }
    }
}
