//! Request extractors whose rejections are our [`Error`], so malformed JSON, unknown fields, bad
//! query strings and oversized bodies get the same stable JSON errors as everything else
//! (axum's own rejections answer in plain text).

use std::io::Read as _;

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A JSON request body, as sent or compressed with zstd (`Content-Encoding: zstd`, what desks
/// send once the server has said it reads it: see [`crate::router`]). Any failure to read or
/// decode it is `bad_request`, except a body over the limit, which is `payload_too_large` (the
/// limit holds for the body as received and again for the JSON it decompresses to, so a small
/// body that would inflate without end is stopped at the limit), and another encoding, which
/// is `unsupported_content_encoding`.
#[derive(Debug, Clone, Copy)]
pub struct JsonBody<T>(pub T);

/// The most bytes of JSON a request body may hold once decompressed: the router's body limit,
/// which it puts where the extractor finds it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        if !is_json(request.headers()) {
            return Err(Error::BadRequest(
                "expected Content-Type: application/json".to_owned(),
            ));
        }
        let compressed = is_zstd(request.headers())?;
        let limit = body_limit(&request);
        let mut bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge
                } else {
                    Error::BadRequest("the request body could not be read".to_owned())
                }
            })?;
        if compressed {
            bytes = decompress(&bytes, limit)?;
        }
        // The plain decoder first (a push carries hundreds of entries); axum's, which tracks the
        // path to say where a body went wrong, only to explain a refusal.
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(JsonBody(value)),
            Err(_) => match axum::Json::<T>::from_bytes(&bytes) {
                Ok(axum::Json(value)) => Ok(JsonBody(value)),
                Err(rejection) => Err(json_rejection(rejection)),
            },
        }
    }
}

/// Whether the request says its body is JSON: `application/json` or `application/<x>+json`,
/// parameters (a charset) allowed, as axum's own extractor accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application") && (subtype == "json" || subtype.ends_with("+json"))
}

/// The most a request's body may hold, as sent or decompressed.
pub(crate) fn body_limit(request: &Request) -> usize {
    request
        .extensions()
        .get::<BodyLimit>()
        .map_or(crate::DEFAULT_BODY_LIMIT_BYTES, |limit| limit.0)
}

/// A body read as it was sent (`bytes`), as it was meant: decompressed when its
/// `Content-Encoding` is zstd, for a route that reads the raw body itself (a webhook checks
/// its signature over what the sender signed). Refusals as for [`JsonBody`].
pub(crate) fn decoded(headers: &HeaderMap, bytes: Bytes, limit: usize) -> Result<Bytes> {
    if is_zstd(headers)? {
        decompress(&bytes, limit)
    } else {
        Ok(bytes)
    }
}

/// Whether the body is compressed with zstd (`Content-Encoding: zstd`); no header, or
/// `identity`, is a body as it is (empty list elements count for nothing). Anything else
/// (another coding, or zstd twice) is refused.
fn is_zstd(headers: &HeaderMap) -> Result<bool> {
    let mut zstd = false;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let value = value
            .to_str()
            .map_err(|_| Error::UnsupportedContentEncoding)?;
        for coding in value.split(',').map(str::trim) {
            if coding.is_empty() || coding.eq_ignore_ascii_case("identity") {
                continue;
            }
            if !coding.eq_ignore_ascii_case("zstd") || zstd {
                return Err(Error::UnsupportedContentEncoding);
            }
            zstd = true;
        }
    }
    Ok(zstd)
}

/// The body a zstd `compressed` body holds, refused once it passes `limit` bytes (so however
/// far it would inflate, no more than `limit` is ever decompressed), and refused if a frame
/// asks for a window larger than the limit needs (zstd would otherwise set aside up to
/// 128 MiB for it, whatever it holds).
fn decompress(compressed: &[u8], limit: usize) -> Result<Bytes> {
    let invalid = || Error::BadRequest("the request body is not valid zstd".to_owned());
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(compressed).map_err(|_| invalid())?;
    // The smallest window log that covers `limit` (10 at the least, zstd's smallest), and
    // never above zstd's own default ceiling (27).
    let window_log = (usize::BITS - limit.saturating_sub(1).leading_zeros()).clamp(10, 27);
    decoder.window_log_max(window_log).map_err(|_| invalid())?;
    let mut body = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(cap)
        .read_to_end(&mut body)
        .map_err(|_| invalid())?;
    if body.len() > limit {
        return Err(Error::PayloadTooLarge);
    }
    Ok(Bytes::from(body))
}

fn json_rejection(rejection: JsonRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Error::PayloadTooLarge;
    }
    match rejection {
        // serde's message names the offending path and field of the caller's own input.
        JsonRejection::JsonDataError(error) => Error::BadRequest(error.body_text()),
        JsonRejection::JsonSyntaxError(error) => Error::BadRequest(error.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            Error::BadRequest("expected Content-Type: application/json".to_owned())
        }
        _ => Error::BadRequest("the request body could not be read".to_owned()),
    }
}

/// A query string, decoded; failures are `bad_request`.
#[derive(Debug, Clone, Copy)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> Error {
    match rejection {
        QueryRejection::FailedToDeserializeQueryString(error) => {
            Error::BadRequest(error.body_text())
        }
        _ => Error::BadRequest("the query string could not be read".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let table = [
            (Some("application/json"), true),
            (Some("application/json; charset=utf-8"), true),
            (Some("Application/JSON"), true),
            (Some("application/merge-patch+json"), true),
            (Some("text/json"), false),
            (Some("application/jsonx"), false),
            (Some("text/plain"), false),
            (Some("application"), false),
            (None, false),
        ];
        for (value, want) in table {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(value),
                );
            }
            assert_eq!(is_json(&headers), want, "{value:?}");
        }
    }
}
