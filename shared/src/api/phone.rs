//! Hunter-compatible phone validator (a `?webhook_url=` endpoint in the outbound-webhooks
//! specification): `GET /api/v1/phone-validator` (and `/v2/phone-validator`). Served by
//! the finders function: it needs the phone metadata and the regex engine, which the
//! `enrich` function does not link.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::auth::HunterCaller;
use super::callbacks::Callback;
use super::docs::ErrorBody;
use super::hunter_routes::{Delivery, Meta, ready, required, with_v2_alias};
use super::metering::Metered;
use crate::api::error::ApiError;
use crate::api::json::Params;
use crate::context::AppContext;
use crate::enrich::phone::{self, PhoneValidation};
use crate::metering::Work;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(with_v2_alias(routes!(phone_validator)))
}

/// The country codes `phone::parse_country` takes (either case; empty: none), found by
/// asking it about every pair of letters.
fn countries() -> utoipa::openapi::schema::Object {
    let letters = || (b'A'..=b'Z').map(char::from);
    let known: Vec<String> = letters()
        .flat_map(|a| letters().map(move |b| format!("{a}{b}")))
        .filter(|code| phone::parse_country(code).is_ok())
        .collect();
    let values =
        std::iter::once(String::new()).chain(known.iter().cloned()).chain(known.iter().map(|c| c.to_lowercase()));
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values))
        .build()
}

super::docs::schema_type!(CountryParam = countries());
super::docs::schema_type!(PhoneParam = super::docs::required_query_text(phone::MAX_INPUT_CHARS));

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PhoneQuery {
    /// The number, international (`+44 7911 123456`) or national with `country`.
    #[param(inline, value_type = PhoneParam)]
    phone: String,
    /// ISO 3166-1 alpha-2 country for national numbers (e.g. `US`).
    #[param(inline, value_type = Option<CountryParam>)]
    country: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct PhoneAnswer {
    data: PhoneValidation,
    meta: Meta,
}

/// Validate a phone number: validity, formats, country and line type (libphonenumber
/// metadata). An unparseable number is a 200 with `valid: false` and its errors.
#[utoipa::path(get, path = "/api/v1/phone-validator", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    params(PhoneQuery, Delivery),
    responses((status = 200, body = PhoneAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn phone_validator(
    State(ctx): State<AppContext>,
    caller: HunterCaller,
    meter: Metered,
    callback: Callback,
    Params(query): Params<PhoneQuery>,
) -> Result<Response, ApiError> {
    let number = required("phone", Some(&query.phone), phone::MAX_INPUT_CHARS)?;
    // Exactly the documented values: empty for none, else a code in either case. A padded
    // or whitespace-only value (`%C2%85` is Unicode whitespace) is refused, not read as none.
    let country_text = query.country.as_deref().filter(|c| !c.is_empty());
    if let Some(code) = country_text
        && code.trim() != code
    {
        return Err(ApiError::validation("country", "must be an ISO 3166-1 alpha-2 code without spaces, or empty"));
    }
    let country = country_text.map(phone::parse_country).transpose()?;
    meter.admit(&ctx, &caller.workspace_id, Work::Search, 1).await?;
    let data = phone::validate(&number, country);
    callback.send(&ctx, &caller.workspace_id, "phone_validator", &data).await;
    let params = json!({ "phone": number, "country": country_text.map(str::to_ascii_uppercase) });
    Ok(ready(data, json!({ "params": params })))
}
