//! Request extractors whose rejections are our [`Error`], so malformed JSON, unknown fields, bad
//! query strings and oversized bodies get the same stable JSON errors as everything else
//! (axum's own rejections answer in plain text).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A JSON request body. Any failure to read or decode it is `bad_request`, except a body over
/// the limit, which is `payload_too_large`.
#[derive(Debug, Clone, Copy)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
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
