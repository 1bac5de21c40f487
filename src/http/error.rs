//! `AppError`: every failure a handler returns, mapped to a status code and a
//! JSON body `{"error": {"code", "message", ...}}` in one place. Also the body
//! and query extractors, so malformed input is a 4xx with a clear message.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// More fields for the error object (a syntax error's `line`, ...).
    pub details: Box<Map<String, Value>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AppError {
        AppError { status, code, message: message.into(), details: Box::default(), headers: Vec::new() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The database cannot be reached now (restarting, a failover, the
    /// network): try again shortly.
    pub fn database_unavailable() -> AppError {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unreachable for a moment; try again shortly",
        )
        .with_header(header::RETRY_AFTER, &crate::store::RETRY_AFTER_SECS.to_string())
    }

    pub fn with_detail(mut self, key: &str, value: Value) -> AppError {
        self.details.insert(key.to_string(), value);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> AppError {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        error.extend(*self.details);
        let mut response = (self.status, axum::Json(json!({ "error": error }))).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// Anything unexpected: logged in full, answered as a 500 without
/// internals; the database out of reach is a 503 that says when to try again.
impl From<anyhow::Error> for AppError {
    fn from(error: anyhow::Error) -> AppError {
        if crate::store::is_unavailable(&error) {
            tracing::warn!(error = format!("{error:#}"), "a request found the database unreachable");
            return AppError::database_unavailable();
        }
        tracing::error!(error = format!("{error:#}"), "internal error");
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server could not complete the request")
    }
}

fn body_error(rejection: BytesRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the server accepts",
        )
    } else {
        AppError::bad_request("bad_body", format!("could not read the request body: {rejection}"))
    }
}

/// The raw body, with the size limit turned into a JSON 413.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Body, AppError> {
        Bytes::from_request(request, state).await.map(Body).map_err(body_error)
    }
}

/// A JSON body of type `T`; malformed JSON or the wrong shape is a 400 that
/// says where.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody<T>, AppError> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !content_type.is_empty() && !content_type.starts_with("application/json") {
            return Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("expected a JSON body (Content-Type: application/json), not {content_type}"),
            ));
        }
        let Body(bytes) = Body::from_request(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let code = if e.is_data() { "invalid_request" } else { "invalid_json" };
        AppError::bad_request(code, format!("the request body is not valid: {e}"))
    })
}

/// Query parameters of type `T`; a bad one is a 400 naming it.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<QueryParams<T>, AppError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(params)| QueryParams(params))
            .map_err(|e: QueryRejection| AppError::bad_request("invalid_query", e.body_text()))
    }
}
