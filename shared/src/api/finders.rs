//! Hunter-compatible finder routes (`?webhook_url=` endpoints in the outbound-webhooks
//! specification): `GET /api/v1/email-finder`, `/api/v1/domain-search`,
//! `/api/v1/author-finder`, `/api/v1/phone-finder`, and the same under `/v2/...`. Parse
//! and check the parameters (400 names the parameter), resolve a `company` to a domain,
//! then hand the work to `enrich::results` (202 / repeat the call /
//! `GET /api/v1/enrichments/{id}`, `?webhook_url=`, cached results); the work itself is
//! `enrich::find::finders`.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::auth::HunterCaller;
use super::callbacks::Callback;
use super::docs::ErrorBody;
use super::enrich::MAX_EMAIL_CHARS;
use super::hunter_routes::{Delivery, Meta, Wait, bounded, respond, text, with_v2_alias};
use super::metering::Metered;
use crate::api::error::ApiError;
use crate::api::json::Params;
use crate::context::AppContext;
use crate::domain::lead::is_valid_email;
use crate::enrich::find::finders::{self, DomainEmail, EmailFinding, FoundPhone};
use crate::enrich::find::names::MailName;
use crate::enrich::find::roles::{DEPARTMENTS, SENIORITIES};
use crate::enrich::results::{self, Kind, Params as EnrichParams};
use crate::metering::Work;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new()
        .routes(with_v2_alias(routes!(email_finder)))
        .routes(with_v2_alias(routes!(domain_search)))
        .routes(with_v2_alias(routes!(author_finder)))
        .routes(with_v2_alias(routes!(phone_finder)))
}

const MAX_NAME_CHARS: usize = 100;
const MAX_COMPANY_CHARS: usize = 200;
pub const MAX_LIMIT: usize = 100;
pub const MAX_OFFSET: usize = 10_000;

/// A domain name (a URL is cut to its host, `www.` dropped), lower-cased; 400 otherwise.
pub fn domain(field: &str, value: &str) -> Result<String, ApiError> {
    finders::domain_name(value).ok_or_else(|| {
        ApiError::validation(field, format!("`{}` is not a domain", crate::support::text::truncate(value, 64)))
    })
}

/// `domain`, or the domain the workspace's leads give `company`, or `fallback` (the
/// domain of the lead a LinkedIn handle named); 400 when none works.
pub async fn domain_or_company(
    ctx: &AppContext,
    workspace_id: &str,
    domain_param: Option<&str>,
    company: Option<&str>,
    fallback: Option<String>,
) -> Result<(String, Option<String>), ApiError> {
    let company = bounded("company", company, MAX_COMPANY_CHARS)?;
    if let Some(value) = text(domain_param) {
        return Ok((domain("domain", value)?, company));
    }
    let Some(company) = company else {
        return fallback
            .map(|d| (d, None))
            .ok_or_else(|| ApiError::validation("domain", "is required (or give company)"));
    };
    match finders::company_domain(ctx, workspace_id, &company).await? {
        Some(found) => Ok((found, Some(company))),
        None => Err(ApiError::validation(
            "company",
            format!("no lead of this workspace at `{company}` has a website or company email; give domain instead"),
        )),
    }
}

/// `first_name` + `last_name`, or `full_name` split; 400 naming the missing part.
fn person(first: Option<&str>, last: Option<&str>, full: Option<&str>) -> Result<MailName, ApiError> {
    let first = bounded("first_name", first, MAX_NAME_CHARS)?;
    let last = bounded("last_name", last, MAX_NAME_CHARS)?;
    let full = bounded("full_name", full, MAX_NAME_CHARS * 2)?;
    match (first, last, full) {
        (Some(first), Some(last), _) => MailName::new(&first, &last)
            .ok_or_else(|| ApiError::validation("first_name", "first_name and last_name must contain letters")),
        (None, None, Some(full)) => MailName::from_full(&full)
            .ok_or_else(|| ApiError::validation("full_name", "must hold a first and a last name")),
        (Some(_), None, None) => Err(ApiError::validation("last_name", "is required with first_name")),
        (None, Some(_), None) => Err(ApiError::validation("first_name", "is required with last_name")),
        _ => Err(ApiError::validation("first_name", "first_name and last_name (or full_name) are required")),
    }
}

/// A LinkedIn handle (`jane-doe`, or the profile URL) as its lower-case slug.
fn linkedin_slug(handle: &str) -> Result<String, ApiError> {
    let slug = handle.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    if slug.is_empty() || slug.contains(char::is_whitespace) {
        return Err(ApiError::validation("linkedin_handle", "is not a LinkedIn handle"));
    }
    Ok(slug.to_lowercase())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailFinderQuery {
    /// The company's domain (`acme.com`; a URL is cut to its host). Give `domain` or
    /// `company`: without either the answer is 400 naming `domain`.
    #[param(inline, value_type = Option<super::docs::OptionalDomain>)]
    domain: Option<String>,
    /// The company's name, resolved to a domain through this workspace's leads (a website
    /// or company email of a lead at it); 400 naming `company` when none gives one.
    #[param(max_length = 200)]
    company: Option<String>,
    /// With `last_name` (or give `full_name`); 400 naming the missing one. The two must
    /// hold letters.
    #[param(max_length = 100)]
    first_name: Option<String>,
    #[param(max_length = 100)]
    last_name: Option<String>,
    /// Instead of `first_name` + `last_name`: a first and a last name (titles and
    /// suffixes are dropped).
    #[param(max_length = 200)]
    full_name: Option<String>,
    /// Instead of a name: the person's LinkedIn handle (`jane-doe`, or the profile URL),
    /// looked up among this workspace's leads (LinkedIn itself is never read), which give
    /// the name and, without `domain`, the domain of the lead's email. 400 naming
    /// `linkedin_handle` when no lead with a first and a last name has that profile.
    #[param(inline, value_type = Option<super::docs::OptionalLinkedinHandle>)]
    linkedin_handle: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct EmailFinderAnswer {
    data: EmailFinding,
    meta: Meta,
}

/// Find a person's email address at a company (Hunter's Email Finder): this workspace's
/// leads first, then the company site, then the common patterns ranked by the domain's
/// known addresses and verified. 202 while it runs longer than `max_duration`.
#[utoipa::path(get, path = "/api/v1/email-finder", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    params(EmailFinderQuery, Wait, Delivery),
    responses((status = 200, body = EmailFinderAnswer), (status = 202, description = "Still working: repeat the call"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn email_finder(
    State(ctx): State<AppContext>,
    caller: HunterCaller,
    meter: Metered,
    callback: Callback,
    Params(q): Params<EmailFinderQuery>,
    Params(wait): Params<Wait>,
) -> Result<Response, ApiError> {
    let named = [&q.first_name, &q.last_name, &q.full_name].iter().any(|v| text(v.as_deref()).is_some());
    let handle = bounded("linkedin_handle", q.linkedin_handle.as_deref(), 200)?;
    let (name, linked_domain) = match handle {
        Some(handle) if !named => {
            let slug = linkedin_slug(&handle)?;
            let found = finders::person_by_linkedin(&ctx, &caller.workspace_id, &slug).await?.ok_or_else(|| {
                ApiError::validation(
                    "linkedin_handle",
                    "no lead of this workspace with a first and a last name has this LinkedIn profile \
                     (LinkedIn itself is not read): give first_name and last_name, or full_name",
                )
            })?;
            let name = MailName::new(&found.first_name, &found.last_name).ok_or_else(|| {
                ApiError::validation("linkedin_handle", "the lead with this LinkedIn profile has no name in letters")
            })?;
            (name, found.domain)
        }
        _ => (person(q.first_name.as_deref(), q.last_name.as_deref(), q.full_name.as_deref())?, None),
    };
    let wait = wait.duration()?;
    let (domain, company) =
        domain_or_company(&ctx, &caller.workspace_id, q.domain.as_deref(), q.company.as_deref(), linked_domain).await?;
    let mut params = EnrichParams::from([
        ("domain".to_owned(), domain.clone()),
        ("first_name".to_owned(), name.first_display.clone()),
        ("last_name".to_owned(), name.last_display.clone()),
    ]);
    if let Some(company) = &company {
        params.insert("company".into(), company.clone());
    }
    let shown = json!({ "domain": domain, "company": company, "first_name": name.first_display, "last_name": name.last_display });
    meter.admit(&ctx, &caller.workspace_id, Work::Search, 1).await?;
    let answer = results::request(&ctx, &caller.workspace_id, Kind::EmailFinder, params, wait, callback.url()).await?;
    Ok(respond(answer, shown))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DomainSearchQuery {
    /// The domain (`acme.com`; a URL is cut to its host). Give `domain` or `company`:
    /// without either the answer is 400 naming `domain`.
    #[param(inline, value_type = Option<super::docs::OptionalDomain>)]
    domain: Option<String>,
    /// The company's name, resolved to a domain through this workspace's leads; 400
    /// naming `company` when none gives one.
    #[param(max_length = 200)]
    company: Option<String>,
    /// Addresses per page, 1 to 100 (default 10).
    #[param(inline, value_type = Option<SearchLimit>)]
    limit: Option<String>,
    /// Addresses to skip, 0 to 10,000 (default 0).
    #[param(inline, value_type = Option<SearchOffset>)]
    offset: Option<String>,
    /// `personal` or `generic`.
    #[serde(rename = "type")]
    #[param(rename = "type", inline, value_type = Option<SearchType>)]
    kind: Option<String>,
    /// Comma-separated: junior, senior, executive.
    #[param(inline, value_type = Option<Seniorities>)]
    seniority: Option<String>,
    /// Comma-separated: executive, it, finance, management, sales, legal, support, hr,
    /// marketing, communication, education, design, health, operations.
    #[param(inline, value_type = Option<Departments>)]
    department: Option<String>,
    /// Comma-separated: full_name, position, phone_number. Only addresses that have each.
    #[param(inline, value_type = Option<RequiredFields>)]
    required_field: Option<String>,
    /// Comma-separated: valid, accept_all, unknown, invalid, webmail, disposable. Only
    /// addresses whose verification has one of them: the first 100 matching the other
    /// filters are verified (`meta.complete` is false when there were more).
    #[param(inline, value_type = Option<VerificationStatuses>)]
    verification_status: Option<String>,
}

/// The statuses `verification_status` takes.
pub const STATUSES: [&str; 6] = ["valid", "accept_all", "unknown", "invalid", "webmail", "disposable"];

fn search_type() -> utoipa::openapi::schema::Object {
    let mut schema = super::docs::comma_list(&["personal", "generic"]);
    schema.pattern = Some(r"^\s*(personal|generic)?\s*$".into());
    schema
}

super::docs::schema_type!(pub SearchType = search_type());
super::docs::schema_type!(SearchLimit = super::hunter_routes::whole_number("0*([1-9]|[1-9][0-9]|100)"));
super::docs::schema_type!(SearchOffset = super::hunter_routes::whole_number("0*([0-9]{1,4}|10000)"));
super::docs::schema_type!(Seniorities = super::docs::comma_list(&SENIORITIES));
super::docs::schema_type!(Departments = super::docs::comma_list(&DEPARTMENTS));
super::docs::schema_type!(RequiredFields = super::docs::comma_list(&finders::REQUIRED_FIELDS));
super::docs::schema_type!(VerificationStatuses = super::docs::comma_list(&STATUSES));

#[derive(ToSchema)]
#[allow(dead_code)]
struct DomainSearchData {
    domain: String,
    disposable: bool,
    webmail: bool,
    accept_all: Option<bool>,
    pattern: Option<String>,
    organization: Option<String>,
    socials: Vec<String>,
    emails: Vec<DomainEmail>,
    /// The crawl behind the answer: `crawled_at`, `cached`, `complete`, `pages[{url, outcome}]`.
    #[schema(value_type = Object)]
    crawl: Value,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct DomainSearchMeta {
    #[schema(value_type = Object)]
    params: Value,
    /// Addresses matching the filters in all.
    results: usize,
    limit: usize,
    offset: usize,
    /// False when the workspace holds more addresses at the domain than one search reads.
    complete: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct DomainSearchAnswer {
    data: DomainSearchData,
    meta: DomainSearchMeta,
}

fn number(field: &str, value: Option<&str>, default: usize, min: usize, max: usize) -> Result<usize, ApiError> {
    let Some(value) = text(value) else { return Ok(default) };
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::validation(
            field,
            format!("must be a whole number from {min} to {max}, got `{}`", crate::support::text::truncate(value, 32)),
        )),
    }
}

/// `type`: `personal` or `generic`, or none.
pub fn one_type(value: Option<&str>) -> Result<Option<String>, ApiError> {
    let kind = choices("type", value, &["personal", "generic"])?;
    if kind.as_deref().is_some_and(|k| k.contains(',')) {
        return Err(ApiError::validation("type", "is either personal or generic"));
    }
    Ok(kind)
}

fn choices(field: &str, value: Option<&str>, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    let Some(value) = text(value) else { return Ok(None) };
    let mut picked: Vec<String> = Vec::new();
    for part in value.split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()) {
        if !allowed.contains(&part.as_str()) {
            return Err(ApiError::validation(
                field,
                format!("`{}` is not one of {}", crate::support::text::truncate(&part, 32), allowed.join(", ")),
            ));
        }
        if !picked.contains(&part) {
            picked.push(part);
        }
    }
    picked.sort();
    Ok((!picked.is_empty()).then(|| picked.join(",")))
}

/// Every address at a domain (Hunter's Domain Search): this workspace's leads at the domain
/// and a bounded crawl of its site, a page at a time (`meta.results`, `limit`, `offset`).
#[utoipa::path(get, path = "/api/v1/domain-search", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    params(DomainSearchQuery, Wait, Delivery),
    responses((status = 200, body = DomainSearchAnswer), (status = 202, description = "Still working: repeat the call"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn domain_search(
    State(ctx): State<AppContext>,
    caller: HunterCaller,
    meter: Metered,
    callback: Callback,
    Params(q): Params<DomainSearchQuery>,
    Params(wait): Params<Wait>,
) -> Result<Response, ApiError> {
    let limit = number("limit", q.limit.as_deref(), 10, 1, MAX_LIMIT)?;
    let offset = number("offset", q.offset.as_deref(), 0, 0, MAX_OFFSET)?;
    let kind = one_type(q.kind.as_deref())?;
    let seniority = choices("seniority", q.seniority.as_deref(), &SENIORITIES)?;
    let department = choices("department", q.department.as_deref(), &DEPARTMENTS)?;
    let required_field = choices("required_field", q.required_field.as_deref(), &finders::REQUIRED_FIELDS)?;
    let verification_status = choices("verification_status", q.verification_status.as_deref(), &STATUSES)?;
    let wait = wait.duration()?;
    let (domain, company) =
        domain_or_company(&ctx, &caller.workspace_id, q.domain.as_deref(), q.company.as_deref(), None).await?;
    let mut params = EnrichParams::from([
        ("domain".to_owned(), domain.clone()),
        ("limit".to_owned(), limit.to_string()),
        ("offset".to_owned(), offset.to_string()),
    ]);
    for (name, value) in [
        ("type", &kind),
        ("seniority", &seniority),
        ("department", &department),
        ("required_field", &required_field),
        ("verification_status", &verification_status),
    ] {
        if let Some(value) = value {
            params.insert(name.into(), value.clone());
        }
    }
    let shown = json!({
        "domain": domain, "company": company, "limit": limit, "offset": offset,
        "type": kind, "seniority": seniority, "department": department,
        "required_field": required_field, "verification_status": verification_status,
    });
    meter.admit(&ctx, &caller.workspace_id, Work::Search, 1).await?;
    let answer = results::request(&ctx, &caller.workspace_id, Kind::DomainSearch, params, wait, callback.url()).await?;
    Ok(respond(answer, shown))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorFinderQuery {
    /// The article's URL (https; fetched through the SSRF guard, robots.txt honoured).
    #[param(inline, value_type = super::docs::UrlParam)]
    url: String,
}

/// An author whose email was looked for: the email finder's answer, the author and the URL.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct AuthorFound {
    #[serde(flatten)]
    finding: EmailFinding,
    /// `{name, rule, twitter}`: the rule is json_ld, meta, itemprop, rel_author, byline or
    /// twitter_creator.
    #[schema(value_type = Object)]
    author: Value,
    url: String,
}

/// No email looked for: the page could not be read, named no author, or no person.
#[derive(ToSchema)]
#[allow(dead_code)]
struct AuthorNotFound {
    url: String,
    domain: String,
    /// Always null.
    email: Option<String>,
    /// Always 0.
    score: u8,
    /// The author found, if any (e.g. only a Twitter handle); null otherwise.
    #[schema(value_type = Option<Object>)]
    author: Value,
    reason: String,
    first_name: Option<String>,
    last_name: Option<String>,
    sources: Vec<finders::FinderSource>,
    alternatives: Vec<finders::Alternative>,
    verification: finders::VerificationView,
}

/// `AuthorFound` or `AuthorNotFound` (`anyOf`: a found author is recognised by `method`).
struct AuthorFinderData;

impl utoipa::PartialSchema for AuthorFinderData {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::AnyOfBuilder::new()
            .item(<AuthorFound as utoipa::PartialSchema>::schema())
            .item(<AuthorNotFound as utoipa::PartialSchema>::schema())
            .into()
    }
}

impl ToSchema for AuthorFinderData {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <AuthorFound as ToSchema>::schemas(schemas);
        <AuthorNotFound as ToSchema>::schemas(schemas);
    }
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct AuthorFinderAnswer {
    data: AuthorFinderData,
    meta: Meta,
}

/// The author of an article and their email address (Hunter's Author Finder). No author
/// found is a 200 with `email: null` and a `reason`.
#[utoipa::path(get, path = "/api/v1/author-finder", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    params(AuthorFinderQuery, Wait, Delivery),
    responses((status = 200, body = AuthorFinderAnswer), (status = 202, description = "Still working: repeat the call"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn author_finder(
    State(ctx): State<AppContext>,
    caller: HunterCaller,
    meter: Metered,
    callback: Callback,
    Params(q): Params<AuthorFinderQuery>,
    Params(wait): Params<Wait>,
) -> Result<Response, ApiError> {
    let url = bounded("url", Some(&q.url), 2048)?.ok_or_else(|| ApiError::validation("url", "is required"))?;
    let checked = ctx.outbound.check_url(&url).map_err(|e| ApiError::validation("url", e.to_string()))?;
    let wait = wait.duration()?;
    // The task checks the URL again: it gets the text checked here, not the parsed form,
    // whose percent-encoding may make it longer than the limit the text was within.
    let params = EnrichParams::from([("url".to_owned(), url.clone())]);
    meter.admit(&ctx, &caller.workspace_id, Work::Search, 1).await?;
    let answer = results::request(&ctx, &caller.workspace_id, Kind::AuthorFinder, params, wait, callback.url()).await?;
    Ok(respond(answer, json!({ "url": checked.as_str() })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PhoneFinderQuery {
    /// The person's email address. Give at least one of `email`, `linkedin_handle`,
    /// `domain`, or `first_name` + `last_name` + `domain`: with none the answer is 400
    /// naming `email`.
    #[param(inline, value_type = Option<super::docs::OptionalEmail>)]
    email: Option<String>,
    /// The person's LinkedIn handle (`jane-doe`, or the profile URL).
    #[param(inline, value_type = Option<super::docs::OptionalLinkedinHandle>)]
    linkedin_handle: Option<String>,
    /// The company's domain (alone: the company's numbers; a URL is cut to its host).
    #[param(inline, value_type = Option<super::docs::OptionalDomain>)]
    domain: Option<String>,
    /// With `last_name` and `domain`: the person at that company (400 naming the missing
    /// one). The two must hold letters.
    #[param(max_length = 100)]
    first_name: Option<String>,
    #[param(max_length = 100)]
    last_name: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct PhoneFinderData {
    /// The company's domain; `null` when a search by `linkedin_handle` found no lead with
    /// an email to take it from (then `phones` holds at most the lead's own number).
    domain: Option<String>,
    /// The lead the number search is about, when one was found; `null` otherwise (always
    /// for a search by `domain` alone).
    #[schema(value_type = Option<Object>)]
    person: Value,
    phones: Vec<FoundPhone>,
    /// The crawl of the company's site; `null` with `domain`.
    #[schema(value_type = Option<Object>)]
    crawl: Value,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct PhoneFinderAnswer {
    data: PhoneFinderData,
    meta: Meta,
}

/// Phone numbers of a person or company: the person's own (from this workspace's leads),
/// the company's (other leads, and the site's `tel:` links, JSON-LD and contact pages),
/// each validated, in E.164.
#[utoipa::path(get, path = "/api/v1/phone-finder", tag = "enrichment", security(("api_key" = []), ("hunter_key" = [])),
    params(PhoneFinderQuery, Wait, Delivery),
    responses((status = 200, body = PhoneFinderAnswer), (status = 202, description = "Still working: repeat the call"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn phone_finder(
    State(ctx): State<AppContext>,
    caller: HunterCaller,
    meter: Metered,
    callback: Callback,
    Params(q): Params<PhoneFinderQuery>,
    Params(wait): Params<Wait>,
) -> Result<Response, ApiError> {
    let wait = wait.duration()?;
    let mut params = EnrichParams::new();
    if let Some(email) = bounded("email", q.email.as_deref(), MAX_EMAIL_CHARS)? {
        if !is_valid_email(&email) {
            return Err(ApiError::validation("email", format!("`{email}` is not a valid email address")));
        }
        params.insert("email".into(), email.to_lowercase());
    } else if let Some(handle) = bounded("linkedin_handle", q.linkedin_handle.as_deref(), 200)? {
        params.insert("linkedin_handle".into(), linkedin_slug(&handle)?);
    }
    if let Some(value) = text(q.domain.as_deref()) {
        params.insert("domain".into(), domain("domain", value)?);
    }
    let first = bounded("first_name", q.first_name.as_deref(), MAX_NAME_CHARS)?;
    let last = bounded("last_name", q.last_name.as_deref(), MAX_NAME_CHARS)?;
    if first.is_some() || last.is_some() {
        let name = person(first.as_deref(), last.as_deref(), None)?;
        if !params.contains_key("domain") {
            return Err(ApiError::validation("domain", "is required with first_name and last_name"));
        }
        params.insert("first_name".into(), name.first_display);
        params.insert("last_name".into(), name.last_display);
    }
    if params.is_empty() {
        return Err(ApiError::validation(
            "email",
            "give email, linkedin_handle, domain, or first_name + last_name + domain",
        ));
    }
    let shown = json!(params);
    meter.admit(&ctx, &caller.workspace_id, Work::Search, 1).await?;
    let answer = results::request(&ctx, &caller.workspace_id, Kind::PhoneFinder, params, wait, callback.url()).await?;
    Ok(respond(answer, shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_checked_and_urls_cut_to_their_host() {
        assert_eq!(domain("domain", "Acme.COM").unwrap(), "acme.com");
        assert_eq!(domain("domain", "https://www.acme.com/about").unwrap(), "acme.com");
        for bad in ["acme", "not a domain", "jane@acme.com", "-acme.com", "acme.c0m", "acme..com", ""] {
            let e = domain("domain", bad).unwrap_err();
            assert!(matches!(&e, ApiError::Validation { field, .. } if field == "domain"), "{bad}: {e}");
        }
    }

    #[test]
    fn names_come_in_parts_or_whole_and_errors_name_the_parameter() {
        assert_eq!(person(Some("José"), Some("Müller"), None).unwrap().first(), "jose");
        assert_eq!(person(None, None, Some("Ada Lovelace")).unwrap().last(), "lovelace");
        let field = |r: Result<MailName, ApiError>| match r {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(person(Some("Ada"), None, None)), "last_name");
        assert_eq!(field(person(None, None, None)), "first_name");
        assert_eq!(field(person(None, None, Some("Cher"))), "full_name");
    }
}
