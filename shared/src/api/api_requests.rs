//! API requests (the API Requests specification): reusable HTTP request configurations,
//! their test endpoint (saved or unsaved), and the workspace limits they live within.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::docs::{DataOf, ErrorBody, ListOf};
use super::metering::Metered;
use crate::api::error::ApiError;
use crate::api::json::{Created, Data, Json, List, Pagination, Params, Path};
use crate::context::AppContext;
use crate::domain::api_request::{
    ApiRequest, ApiRequestInput, CEILING_RESPONSE_BYTES, CEILING_TIMEOUT_MS, HttpMethod, RetryPolicy, WorkspaceSettings,
};
use crate::metering::Work;
use crate::repo::{api_requests, campaigns, workspaces};
use crate::support::ids;
use crate::workflow::request::{self, TestResult};
use crate::workflow::save::request_references;

pub const ID_PREFIX: &str = "apr";

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new()
        .routes(routes!(create_api_request, list_api_requests))
        .routes(routes!(get_api_request, update_api_request, delete_api_request))
        .routes(routes!(test_api_request))
        .routes(routes!(test_unsaved_api_request))
        .routes(routes!(get_settings, update_settings))
}

fn not_found() -> ApiError {
    ApiError::not_found("api_request_not_found", "API request not found in this workspace.")
}

async fn load(ctx: &AppContext, workspace_id: &str, id: &str) -> Result<(ApiRequest, u64), ApiError> {
    if !ids::has_prefix(id, ID_PREFIX) {
        return Err(not_found());
    }
    api_requests::get(&*ctx.store, workspace_id, id).await?.ok_or_else(not_found)
}

/// The request's templates must parse; the error names the field.
fn check_templates(request: &ApiRequest) -> Result<(), ApiError> {
    request_references(request)?;
    Ok(())
}

/// The rules across an API request's fields (`ApiRequest::validate`), as `oneOf`: `GET`
/// takes no `body`, and only `GET` takes `cache_ttl_s`.
fn method_rules() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    let methods = |names: &[&str]| ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names.to_vec()));
    let none = || ObjectBuilder::new().schema_type(Type::Null);
    OneOfBuilder::new()
        .item(ObjectBuilder::new().property("method", methods(&["GET"])).property("body", none()))
        .item(
            ObjectBuilder::new()
                .property("method", methods(&["POST", "PUT", "PATCH", "DELETE"]))
                .property("cache_ttl_s", none()),
        )
        .into()
}

/// [`ApiRequestInput`] with [`method_rules`]: the body that creates an API request.
struct NewApiRequest;

impl utoipa::PartialSchema for NewApiRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::AllOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name(<ApiRequestInput as ToSchema>::name()))
            .item(method_rules())
            .into()
    }
}

impl ToSchema for NewApiRequest {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        let input = <ApiRequestInput as utoipa::PartialSchema>::schema();
        schemas.push((<ApiRequestInput as ToSchema>::name().into_owned(), input));
        <ApiRequestInput as ToSchema>::schemas(schemas);
    }
}

/// The `request` of an unsaved test: [`NewApiRequest`] with `name` optional.
struct UnsavedRequest;

impl utoipa::PartialSchema for UnsavedRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        let mut input = <ApiRequestInput as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut input {
            object.required.retain(|field| field != "name");
        }
        utoipa::openapi::schema::AllOfBuilder::new().item(input).item(method_rules()).into()
    }
}

impl ToSchema for UnsavedRequest {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <ApiRequestInput as ToSchema>::schemas(schemas);
    }
}

/// Create an API request. Credential-like header values are write-only: later reads show
/// them masked.
#[utoipa::path(post, path = "/api/v1/api-requests", tag = "api-requests", security(("api_key" = [])),
    request_body = NewApiRequest,
    responses((status = 201, body = DataOf<ApiRequest>), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`duplicate_name`")))]
async fn create_api_request(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Json(body): Json<ApiRequestInput>,
) -> Result<Created<ApiRequest>, ApiError> {
    let settings = api_requests::settings(&*ctx.store, &caller.workspace_id).await?;
    let request = ApiRequest::new(ids::new_id(ID_PREFIX), body, &settings, ctx.now())?;
    check_templates(&request)?;
    api_requests::create(&*ctx.store, &caller.workspace_id, &request).await?;
    tracing::info!(api_request_id = request.id, "api request created");
    Ok(Created(request.masked()))
}

/// List API requests, newest first.
#[utoipa::path(get, path = "/api/v1/api-requests", tag = "api-requests", security(("api_key" = [])), params(Pagination),
    responses((status = 200, body = ListOf<ApiRequest>), (status = 400, body = ErrorBody)))]
async fn list_api_requests(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Params(page): Params<Pagination>,
) -> Result<List<ApiRequest>, ApiError> {
    let result = api_requests::list(&*ctx.store, &caller.workspace_id, page.limit()?, page.cursor()?).await?;
    List::from_page(result, |item| item.parse::<ApiRequest>().map(|r| r.masked()))
}

/// Get an API request (credential-like header values masked).
#[utoipa::path(get, path = "/api/v1/api-requests/{id}", tag = "api-requests", security(("api_key" = [])),
    params(("id" = String, Path, description = "API request id (`apr_...`)")),
    responses((status = 200, body = DataOf<ApiRequest>), (status = 404, body = ErrorBody)))]
async fn get_api_request(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<ApiRequest>, ApiError> {
    Ok(Data(load(&ctx, &caller.workspace_id, &id).await?.0.masked()))
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Every field optional. `headers` replaces the headers, except that a credential-like
/// header it omits (or echoes back masked) keeps its stored value; `null` removes one.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateApiRequest {
    #[schema(schema_with = super::docs::name_200_or_null)]
    name: Option<String>,
    /// A `GET` request takes no `body` and only a `GET` request takes `cache_ttl_s`, counting
    /// the stored values of the fields a PATCH leaves out.
    method: Option<HttpMethod>,
    /// As on create: a template of an http(s) URL, not blank.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    url: Option<String>,
    /// As on create; a value of `null` removes that header.
    #[schema(schema_with = patched_headers)]
    headers: Option<BTreeMap<String, Option<String>>>,
    #[schema(schema_with = patched_query)]
    query: Option<BTreeMap<String, String>>,
    /// `null` removes the body. At most 65,536 bytes (UTF-8).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 65536)]
    body: Option<Option<String>>,
    /// 100 ms up to the workspace limit `api_request_max_timeout_ms`.
    #[schema(minimum = 100, maximum = 25000)]
    timeout_ms: Option<u64>,
    enabled: Option<bool>,
    /// `null` turns caching off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 86400)]
    cache_ttl_s: Option<Option<u32>>,
    retry: Option<RetryPolicy>,
}

/// `headers` in a PATCH: as on create, or `null` for a header to remove, or `null` for none.
fn patched_headers() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
    let mut schema = crate::domain::api_request::header_templates();
    schema.schema_type = SchemaType::from_iter([Type::Object, Type::Null]);
    let value = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(crate::domain::api_request::MAX_PAIR_VALUE_CHARS));
    schema.additional_properties = Some(Box::new(AdditionalProperties::RefOr(value.build().into())));
    schema
}

/// `query` in a PATCH: as on create, or `null` for none.
fn patched_query() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut schema = crate::domain::api_request::query_templates();
    schema.schema_type = SchemaType::from_iter([Type::Object, Type::Null]);
    schema
}

/// Change an API request.
#[utoipa::path(patch, path = "/api/v1/api-requests/{id}", tag = "api-requests", security(("api_key" = [])),
    params(("id" = String, Path, description = "API request id")), request_body = UpdateApiRequest,
    responses((status = 200, body = DataOf<ApiRequest>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`duplicate_name`, or `conflict` when changed meanwhile")))]
async fn update_api_request(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Json(body): Json<UpdateApiRequest>,
) -> Result<Data<ApiRequest>, ApiError> {
    let (old, version) = load(&ctx, &caller.workspace_id, &id).await?;
    let settings = api_requests::settings(&*ctx.store, &caller.workspace_id).await?;
    let mut new = old.clone();
    if let Some(name) = &body.name {
        new.name = crate::domain::required_text("name", name, crate::domain::api_request::MAX_NAME_CHARS)?;
    }
    if let Some(method) = body.method {
        new.method = method;
    }
    if let Some(url) = &body.url {
        new.url = url.trim().to_owned();
    }
    if let Some(headers) = body.headers {
        new.patch_headers(headers);
    }
    if let Some(query) = body.query {
        new.query = query;
    }
    if let Some(b) = body.body {
        new.body = b;
    }
    match body.timeout_ms {
        Some(timeout) => new.timeout_ms = timeout,
        // Saved under a higher limit (or the 30000 ceiling before it was 25000): calls are
        // capped at the limit in force anyway, so a PATCH that leaves it out is not refused.
        None => new.timeout_ms = new.timeout_ms.min(settings.api_request_max_timeout_ms),
    }
    if let Some(enabled) = body.enabled {
        new.enabled = enabled;
    }
    if let Some(ttl) = body.cache_ttl_s {
        new.cache_ttl_s = ttl;
    }
    if let Some(retry) = body.retry {
        new.retry = retry;
    }
    new.updated_at = ctx.now();
    new.validate(&settings)?;
    check_templates(&new)?;
    api_requests::replace(&*ctx.store, &caller.workspace_id, &old, version, &new).await?;
    Ok(Data(new.masked()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    id: String,
    deleted: bool,
}

/// Delete an API request. Workflow nodes that still name it fail with
/// `api_request_not_found` when they run.
#[utoipa::path(delete, path = "/api/v1/api-requests/{id}", tag = "api-requests", security(("api_key" = [])),
    params(("id" = String, Path, description = "API request id")),
    responses((status = 200, body = DataOf<Deleted>), (status = 404, body = ErrorBody)))]
async fn delete_api_request(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<Deleted>, ApiError> {
    let (request, _) = load(&ctx, &caller.workspace_id, &id).await?;
    if !api_requests::delete(&*ctx.store, &caller.workspace_id, &request).await? {
        return Err(not_found());
    }
    Ok(Data(Deleted { id, deleted: true }))
}

/// Variables for a test: a stored lead (`lead_id`, which also sets `campaign`), and/or
/// explicit values, which win.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TestVariables {
    /// A lead of this workspace: `contact` is the lead and `campaign` its campaign.
    lead_id: Option<String>,
    /// Any of `workspace`, `contact`, `campaign`, `workflow`, `node`, as JSON objects.
    #[schema(schema_with = variables_schema)]
    variables: Option<Map<String, Value>>,
}

/// `variables`: only the template variables, each a JSON object (from [`VARIABLE_NAMES`]).
fn variables_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
    VARIABLE_NAMES
        .iter()
        .fold(ObjectBuilder::new(), |schema, name| {
            schema.property(*name, ObjectBuilder::new().schema_type(Type::Object))
        })
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .build()
}

const VARIABLE_NAMES: [&str; 5] = ["workspace", "contact", "campaign", "workflow", "node"];

async fn test_variables(ctx: &AppContext, workspace_id: &str, given: TestVariables) -> Result<Value, ApiError> {
    let workspace = workspaces::get_workspace(&*ctx.store, workspace_id).await?;
    let (lead, campaign) = match given.lead_id.as_deref().filter(|id| !id.is_empty()) {
        Some(lead_id) => {
            let lead = super::leads::load(ctx, workspace_id, lead_id).await?;
            let campaign = campaigns::get(&*ctx.store, workspace_id, &lead.campaign_id).await?;
            (Some(lead), campaign)
        }
        None => (None, None),
    };
    let mut vars = crate::workflow::variables(workspace.as_ref(), lead.as_ref(), campaign.as_ref(), &Map::new(), None);
    for (name, value) in given.variables.unwrap_or_default() {
        if !VARIABLE_NAMES.contains(&name.as_str()) {
            return Err(ApiError::validation(
                format!("variables.{name}"),
                format!("is not a template variable; use {}", VARIABLE_NAMES.join(", ")),
            ));
        }
        if !value.is_object() {
            return Err(ApiError::validation(format!("variables.{name}"), "must be a JSON object"));
        }
        vars[name] = value;
    }
    Ok(vars)
}

/// Test a saved API request: render it for a lead or explicit variables, send it once
/// (no cache, no retries) and return the rendered request (secrets masked), the status,
/// the duration, and the parsed JSON or the typed error. `200` either way: see `ok`.
#[utoipa::path(post, path = "/api/v1/api-requests/{id}/test", tag = "api-requests", security(("api_key" = [])),
    params(("id" = String, Path, description = "API request id")), request_body = TestVariables,
    responses((status = 200, body = DataOf<TestResult>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn test_api_request(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    meter: Metered,
    Path(id): Path<String>,
    Json(body): Json<TestVariables>,
) -> Result<Data<TestResult>, ApiError> {
    let (request, _) = load(&ctx, &caller.workspace_id, &id).await?;
    let settings = api_requests::settings(&*ctx.store, &caller.workspace_id).await?;
    let vars = test_variables(&ctx, &caller.workspace_id, body).await?;
    meter.admit(&ctx, &caller.workspace_id, Work::ApiRequestTest, 1).await?;
    Ok(Data(request::test(&ctx, &caller.workspace_id, &request, &vars, &settings).await))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UnsavedTest {
    /// The configuration to test, as for `POST /api/v1/api-requests` (`name` optional).
    #[schema(value_type = UnsavedRequest)]
    request: Value,
    lead_id: Option<String>,
    #[schema(schema_with = variables_schema)]
    variables: Option<Map<String, Value>>,
}

/// Test an unsaved configuration (as a Fetch API Data action does before saving): the
/// same answer as the saved test.
#[utoipa::path(post, path = "/api/v1/api-requests/test", tag = "api-requests", security(("api_key" = [])),
    request_body = UnsavedTest,
    responses((status = 200, body = DataOf<TestResult>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn test_unsaved_api_request(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    meter: Metered,
    Json(body): Json<UnsavedTest>,
) -> Result<Data<TestResult>, ApiError> {
    let mut config = body.request;
    if let Some(object) = config.as_object_mut() {
        object.entry("name").or_insert_with(|| Value::String("unsaved".into()));
    }
    let input: ApiRequestInput = crate::api::json::parse_json(&serde_json::to_vec(&config).unwrap_or_default())
        .map_err(|e| match e {
            ApiError::Validation { field, message } => {
                ApiError::Validation { field: format!("request.{field}"), message }
            }
            other => other,
        })?;
    let settings = api_requests::settings(&*ctx.store, &caller.workspace_id).await?;
    let request = ApiRequest::new("apr_unsaved".into(), input, &settings, ctx.now())
        .map_err(|e| ApiError::validation(format!("request.{}", e.field), e.message))?;
    check_templates(&request)?;
    let vars =
        test_variables(&ctx, &caller.workspace_id, TestVariables { lead_id: body.lead_id, variables: body.variables })
            .await?;
    meter.admit(&ctx, &caller.workspace_id, Work::ApiRequestTest, 1).await?;
    Ok(Data(request::test(&ctx, &caller.workspace_id, &request, &vars, &settings).await))
}

/// The workspace's settings and the hard ceilings they may not pass.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    #[serde(flatten)]
    settings: WorkspaceSettings,
    ceilings: Ceilings,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ceilings {
    api_request_max_timeout_ms: u64,
    api_request_max_response_bytes: usize,
}

fn settings_view(settings: WorkspaceSettings) -> SettingsView {
    SettingsView {
        settings,
        ceilings: Ceilings {
            api_request_max_timeout_ms: CEILING_TIMEOUT_MS,
            api_request_max_response_bytes: CEILING_RESPONSE_BYTES,
        },
    }
}

/// Read the workspace settings (API request limits; defaults until changed).
#[utoipa::path(get, path = "/api/v1/workspace/settings", tag = "api-requests", security(("api_key" = [])),
    responses((status = 200, body = DataOf<SettingsView>), (status = 401, body = ErrorBody)))]
async fn get_settings(State(ctx): State<AppContext>, caller: ApiCaller) -> Result<Data<SettingsView>, ApiError> {
    Ok(Data(settings_view(api_requests::settings(&*ctx.store, &caller.workspace_id).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateSettings {
    /// 100 up to the ceiling (25000, below API Gateway's 30 s).
    #[schema(minimum = 100, maximum = 25000)]
    api_request_max_timeout_ms: Option<u64>,
    /// 1024 up to the ceiling (327680).
    #[schema(minimum = 1024, maximum = 327680)]
    api_request_max_response_bytes: Option<usize>,
}

/// Change the workspace settings. Lowering the timeout limit does not change saved API
/// requests; each call is capped at the limit in force.
#[utoipa::path(patch, path = "/api/v1/workspace/settings", tag = "api-requests", security(("api_key" = [])),
    request_body = UpdateSettings,
    responses((status = 200, body = DataOf<SettingsView>), (status = 400, body = ErrorBody)))]
async fn update_settings(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Json(body): Json<UpdateSettings>,
) -> Result<Data<SettingsView>, ApiError> {
    let mut settings = api_requests::settings(&*ctx.store, &caller.workspace_id).await?;
    if let Some(timeout) = body.api_request_max_timeout_ms {
        settings.api_request_max_timeout_ms = timeout;
    }
    if let Some(bytes) = body.api_request_max_response_bytes {
        settings.api_request_max_response_bytes = bytes;
    }
    settings.validate()?;
    api_requests::put_settings(&*ctx.store, &caller.workspace_id, &settings).await?;
    Ok(Data(settings_view(settings)))
}
