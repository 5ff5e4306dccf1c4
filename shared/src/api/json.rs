//! JSON in and out, shared by every route: a body extractor that answers 415/413/400 with
//! our error shape, a query extractor, `{"data": ...}` responses and list pagination.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::error::ApiError;
use crate::store::{Cursor, Page, StoreError};

/// The error a request body yields once its deadline has passed. `leadpush serve`'s
/// listener sets the deadline; Lambda receives bodies whole and never yields it.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?}")]
pub struct BodyTimedOut(pub std::time::Duration);

/// Body limit for ordinary JSON endpoints.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body of at most `LIMIT` bytes.
pub struct Json<T, const LIMIT: usize = DEFAULT_BODY_LIMIT>(pub T);

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// How much of an oversized body we still read (and discard) so the client, still
/// uploading, receives our 413 instead of a reset connection.
const DRAIN_LIMIT: usize = 32 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the body, enforcing the limit (413) without ever buffering more than it.
pub async fn read_body(req: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > DRAIN_LIMIT) {
        return Err(ApiError::body_too_large(limit));
    }
    let mut body = req.into_body();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    let mut too_large = declared.is_some_and(|len| len > limit);
    let drain_until = tokio::time::Instant::now() + DRAIN_TIME;
    loop {
        let next = if too_large {
            match tokio::time::timeout_at(drain_until, body.frame()).await {
                Ok(frame) => frame,
                Err(_) => break, // a slow sender: stop draining, answer anyway
            }
        } else {
            body.frame().await
        };
        let Some(frame) = next else { break };
        let frame = frame.map_err(body_error)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if too_large || seen > limit {
            too_large = true;
            buf.clear();
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if too_large {
        return Err(ApiError::body_too_large(limit));
    }
    Ok(buf.freeze())
}

/// A body that stopped arriving: 408 when the listener's deadline passed, else 400.
fn body_error(e: axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(cause) = source {
        if let Some(timeout) = cause.downcast_ref::<BodyTimedOut>() {
            return ApiError::RequestTimeout(timeout.0.as_secs().max(1));
        }
        source = cause.source();
    }
    ApiError::validation("body", format!("could not be read: {e}"))
}

/// The most a request body may take once escaped into the JSON of an API Gateway event:
/// Lambda refuses events over 6 MB (6,291,456 bytes) before our code runs, and headers and
/// the event's other fields need room (512 KB is far more than they take).
pub const MAX_EVENT_BODY_BYTES: usize = 5632 * 1024;

/// Refuses a body that would not fit through Lambda once escaped (413 here rather than an
/// error from API Gateway there). Dense JSON can double when escaped; typical JSON grows by
/// about a tenth, so a 4 MB body of ordinary leads passes.
pub fn check_event_size(body: &[u8]) -> Result<(), ApiError> {
    if body.len() * 2 <= MAX_EVENT_BODY_BYTES {
        return Ok(());
    }
    let escaped = crate::support::text::json_escaped_len(body);
    if escaped > MAX_EVENT_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "Request body is {} bytes but {escaped} once escaped into the Lambda event (quotes, backslashes and \
             line breaks count twice); at most {MAX_EVENT_BODY_BYTES} escaped bytes are accepted.",
            body.len()
        )));
    }
    Ok(())
}

/// Parses a JSON object body, naming the offending field (`leads[3].score`) in the error.
/// An integer written with a zero fraction (`6135.0`) is an integer, as JSON Schema counts
/// it: serde refuses it, so only then the body is read again with such numbers as integers.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match parse_json_exact(bytes) {
        Err(ApiError::Validation { message, .. }) if message.contains("invalid type: floating point") => {
            let mut value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| ApiError::validation("body", e.to_string()))?;
            integral_floats_to_integers(&mut value);
            parse_json_exact(&serde_json::to_vec(&value).unwrap_or_default())
        }
        other => other,
    }
}

fn integral_floats_to_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Within ±2^53 a float holds every integer exactly.
            if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
                *value = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

fn parse_json_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Serde would read a struct from an array too (positionally); our bodies are objects.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::validation("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        // serde_json appends " at line L column C"; the field path says more.
        let message = text.rfind(" at line ").map_or(text.as_str(), |at| &text[..at]).to_owned();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::validation("body", format!("is not valid JSON ({text})"));
        }
        let message = readable_serde_message(&message);
        if let Some(field) = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
            let field = if path == "." { field.to_owned() } else { format!("{path}.{field}") };
            return ApiError::validation(field, "is required");
        }
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::validation(field, message)
    })?;
    de.end()
        .map_err(|e| ApiError::validation("body", format!("has trailing characters after the JSON value ({e})")))?;
    Ok(value)
}

/// Rewords serde's type names ("expected i64") in terms an API user knows.
fn readable_serde_message(message: &str) -> String {
    let mut out = message.to_owned();
    for (from, to) in [
        ("expected i64", "expected an integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected a string", "expected a string"),
        ("expected a boolean", "expected true or false"),
        ("invalid type: map", "invalid type: object"),
        ("invalid type: sequence", "invalid type: array"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected an object"),
    ] {
        out = out.replace(from, to);
    }
    out
}

impl<S, T, const LIMIT: usize> FromRequest<S> for Json<T, LIMIT>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = read_body(req, LIMIT).await?;
        check_event_size(&bytes)?;
        if bytes.is_empty() {
            return Err(ApiError::validation("body", "is empty; send a JSON object"));
        }
        Ok(Json(parse_json(&bytes)?))
    }
}

/// Query-string parameters, with our error shape on bad input.
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri).map(|q| Params(q.0)).map_err(|e| {
            let text = e.body_text();
            let text = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
            if let Some(field) = text.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
                return ApiError::validation(field, "is required");
            }
            ApiError::validation("query", readable_serde_message(text))
        })
    }
}

/// Adds `X-Content-Type-Options: nosniff` to every response it wraps (the API's and the
/// console's, errors and fallbacks included): a browser never sniffs a JSON answer, or a
/// reflected error message, into a script or a page.
pub async fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    response
}

/// Path parameters, with our error shape on bad input (e.g. `%ff`, which is not UTF-8).
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(match e.kind() {
                ErrorKind::InvalidUtf8InPathParam { key } => {
                    ApiError::validation(key.clone(), "is not valid UTF-8 once percent-decoded")
                }
                ErrorKind::ParseErrorAtKey { key, expected_type, .. } => {
                    ApiError::validation(key.clone(), format!("must be {expected_type}"))
                }
                _ => ApiError::validation("path", e.body_text()),
            }),
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

/// `200 {"data": T}`.
pub struct Data<T>(pub T);

/// `201 {"data": T}`.
pub struct Created<T>(pub T);

/// `202 {"data": T}`.
pub struct Accepted<T>(pub T);

fn envelope<T: Serialize>(status: StatusCode, data: T) -> Response {
    (status, axum::Json(serde_json::json!({ "data": data }))).into_response()
}

impl<T: Serialize> IntoResponse for Data<T> {
    fn into_response(self) -> Response {
        envelope(StatusCode::OK, self.0)
    }
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        envelope(StatusCode::CREATED, self.0)
    }
}

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        envelope(StatusCode::ACCEPTED, self.0)
    }
}

/// `200 {"data": [...], "next_cursor": "..." | null}`.
#[derive(Serialize)]
pub struct List<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    pub fn from_page(
        page: Page,
        convert: impl FnMut(crate::store::Item) -> Result<T, StoreError>,
    ) -> Result<Self, ApiError> {
        let data = page.items.into_iter().map(convert).collect::<Result<Vec<_>, _>>()?;
        Ok(List { data, next_cursor: page.next.map(|c| c.encode()) })
    }
}

impl<T: Serialize> IntoResponse for List<T> {
    fn into_response(self) -> Response {
        (StatusCode::OK, axum::Json(self)).into_response()
    }
}

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 100;

/// `?limit=&cursor=` on every list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` from the previous page of this listing, as given; empty or absent
    /// starts at the first page. A cursor is opaque (base64url) and belongs to its listing
    /// and workspace: any other value is refused with 400 `validation_error` naming `cursor`.
    #[param(pattern = r"^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

impl Pagination {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_SIZE),
            Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::validation("limit", format!("must be between 1 and {MAX_PAGE_SIZE}, got {n}"))),
        }
    }

    pub fn cursor(&self) -> Result<Option<Cursor>, ApiError> {
        self.cursor.as_deref().filter(|c| !c.is_empty()).map(Cursor::decode).transpose().map_err(ApiError::from)
    }
}

/// Whether `text` is a plain `host[:port]`: a DNS name, an IPv4 address or a bracketed
/// IPv6 address, and an optional port. Nothing else (no quotes, spaces, paths, userinfo).
pub fn is_host_and_port(text: &str) -> bool {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else { return false };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    let name_ok = host.is_empty() && text.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            }));
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_integer_written_with_a_zero_fraction_is_read_as_an_integer() {
        #[derive(Debug, serde::Deserialize)]
        struct Body {
            n: u64,
            #[allow(dead_code)]
            extra: serde_json::Value,
        }
        let body: Body = parse_json(br#"{"n": 6135.0, "extra": [1.5, 2.0]}"#).unwrap();
        assert_eq!(body.n, 6135);
        let Err(ApiError::Validation { field, message }) = parse_json::<Body>(br#"{"n": 6135.5, "extra": 1}"#) else {
            panic!("a fraction is not an integer")
        };
        assert_eq!(field, "n");
        assert!(message.contains("floating point"), "{message}");
    }

    use super::*;

    #[test]
    fn only_plain_host_and_port_pass() {
        for good in ["localhost:3000", "api.example.com", "127.0.0.1:8080", "[::1]:3000", "[2001:db8::1]", "a-b.c"] {
            assert!(is_host_and_port(good), "{good}");
        }
        for bad in [
            "evil.example\"; rm -rf /",
            "a b",
            "user@host",
            "host/path",
            "host:",
            "host:99999",
            "host:80:80",
            "-a.com",
            "a..com",
            "[::1",
            "[zz]:1",
            "",
            "h\u{7f}",
        ] {
            assert!(!is_host_and_port(bad), "{bad}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        score: i64,
    }

    fn field_of(bytes: &[u8]) -> (String, String) {
        match parse_json::<Body>(bytes) {
            Err(ApiError::Validation { field, message }) => (field, message),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field_and_speak_plainly() {
        let (field, message) = field_of(br#"{"name":"a","items":[{"score":1},{"score":"x"}]}"#);
        assert_eq!(field, "items[1].score");
        assert!(message.contains("expected an integer"), "{message}");
        assert_eq!(field_of(br#"{"items":[]}"#), ("name".to_owned(), "is required".to_owned()));
        assert_eq!(field_of(br#"{"name":"a","items":[{}]}"#).0, "items[0].score");
        let (field, message) = field_of(b"{\"name\": ");
        assert_eq!(field, "body");
        assert!(message.starts_with("is not valid JSON"), "{message}");
        assert_eq!(field_of(br#"[1,2]"#).0, "body");
    }

    #[test]
    fn json_content_types_are_recognised() {
        let v = |s: &'static str| header::HeaderValue::from_static(s);
        assert!(is_json(Some(&v("application/json"))));
        assert!(is_json(Some(&v("application/json; charset=utf-8"))));
        assert!(is_json(Some(&v("application/merge-patch+json"))));
        assert!(!is_json(Some(&v("text/plain"))));
        assert!(!is_json(None));
    }
}
