"""Schemathesis hooks for the conformance test (tests/blackbox/conformance.rs).

`positive_data_acceptance` runs as schemathesis runs it, except for a 400
`validation_error` that names a value whose validity no OpenAPI schema can state: it
depends on stored data (the workspace's leads, settings and integrations), on a token
only the server mints, or on another part of the request that a schema cannot relate it
to (a body field and the path, two query parameters). Each allowance below names its
operations, the field `error.field` names, the words the server's message starts its
reason with, and why the document cannot say it (the document says it in prose). Every
other rule is in the document (patterns, formats, `oneOf`/`anyOf`, `nullable`,
`required`), and a schema-valid request refused for it is a failure.
"""

import json
import re

import schemathesis
from schemathesis.specs.openapi.checks import (
    _openapi_negative_data_rejection,
    _openapi_positive_data_acceptance,
)

# Operations that list with `?cursor=`.
LISTS = (
    r"^GET /api/v1/(campaigns|campaigns/\{id\}/leads|leads|leads/\{id\}/events|leads/\{id\}/workflow-runs"
    r"|webhooks|webhooks/\{id\}/deliveries|callbacks/deliveries|insights|email-verifier/bulk/\{id\}"
    r"|api-requests)$"
)
FINDERS = r"^GET /(api/v1|v2)/(email-finder|domain-search|phone-finder|email-count)$"
# The operations that take an API request's configuration (the test takes it as `request`).
API_REQUESTS = r"^(POST /api/v1/api-requests|PATCH /api/v1/api-requests/\{id\}|POST /api/v1/api-requests/test)$"

# (operation label, error.field, message after "<field>: ", why the schema cannot say it)
ALLOWED_400 = [
    (
        LISTS,
        r"^cursor$",
        r"is not a cursor returned by this listing",
        "a cursor is an opaque token the server mints in `next_cursor` for one listing and "
        "workspace; the document gives its alphabet and says any other value is a 400",
    ),
    (
        FINDERS,
        r"^domain$",
        r"is required \(or give company\)|is required with first_name and last_name",
        "one of several query parameters is required (`domain` or `company`; a name needs `domain` "
        "on the phone finder): a rule across parameters",
    ),
    (
        FINDERS,
        r"^email$",
        r"give email, linkedin_handle, domain, or first_name \+ last_name \+ domain",
        "the phone finder needs one of four parameters: a rule across parameters",
    ),
    (
        FINDERS,
        r"^company$",
        r"no lead of this workspace at",
        "a company resolves to a domain through the workspace's leads (stored data)",
    ),
    (
        FINDERS,
        r"^(first_name|last_name|full_name)$",
        r"is required with (first|last)_name|first_name and last_name \(or full_name\) are required"
        r"|first_name and last_name must contain letters|must hold a first and a last name",
        "a name comes as first_name + last_name or as full_name (a rule across parameters), and must "
        "hold letters once titles and accents are dropped (transliteration, more than a pattern)",
    ),
    (
        r"^POST /api/v1/webhook/leads$",
        r"^leads\[\d+\]\.campaign_id$",
        r"campaign `.*` (does not exist in this organisation|takes manual leads)",
        "a lead's campaign must be one of the workspace's webhook campaigns (stored data)",
    ),
    (
        r"^POST /api/v1/webhook/leads$",
        r"^leads\[\d+\]\.custom_fields\b",
        r".",
        "custom fields also collect the lead's unknown top-level fields, which count toward their "
        "limit of 100, and their values' depth and numbers must be storable: rules across an open "
        "object that no schema of it can state",
    ),
    (
        r"^POST /api/v1/feedback/providers/heyreach$",
        r"^event_type$",
        r"is required",
        "the event name may come from the body or from the URL's ?event= (a rule across the body "
        "and the query)",
    ),
    (
        r"^POST /api/v1/feedback/events$",
        r"^occurred_at$",
        r".* is in the future",
        "an event may not be in the future: the upper bound is the server's clock",
    ),
    (
        r"^POST /api/v1/feedback/events$",
        r"^metadata\b",
        r".",
        "metadata is a free-form object; the storable depth and number range and precision "
        "(stated in its description) apply to every value inside it, which no schema of an "
        "open object can state",
    ),
    (
        API_REQUESTS,
        r"^(request\.)?(url|headers\..*|query\..*|body)$",
        r"template error: ",
        "templates ({{ }}, {% %}, {# #}) must parse as minijinja templates, more than a pattern can state",
    ),
    (
        API_REQUESTS,
        r"^(request\.)?headers\..*$",
        r"is given twice \(header names ignore case\)",
        "two header names may not differ only in case; JSON Schema compares property names exactly",
    ),
    (
        API_REQUESTS,
        r"^(request\.)?timeout_ms$",
        r"must be between 100 and the workspace limit",
        "the upper bound is the workspace's own api_request_max_timeout_ms (stored, and changed by "
        "the run's PATCH /api/v1/workspace/settings)",
    ),
    (
        API_REQUESTS,
        r"^(request\.)?body$",
        r"must be at most 65536 bytes",
        "the body is limited in UTF-8 bytes; maxLength counts characters",
    ),
    (
        r"^PATCH /api/v1/api-requests/\{id\}$",
        r"^(body|cache_ttl_s)$",
        r"GET requests carry no body|applies to GET requests only",
        "a PATCH is checked with the stored method and body (stored data); creating and testing "
        "state the rule as oneOf",
    ),
    (
        r"^PATCH /api/v1/campaigns/\{id\}$",
        r"^lead_source$",
        r"can only be changed while the campaign is a draft",
        "the lead source can change only while the campaign is a draft (its stored state)",
    ),
    (
        r"^PUT /api/v1/integrations/\{provider\}$",
        r"^(list_id|campaign_id)$",
        r"is required \(the (HeyReach lead list id|Instantly campaign UUID)\)",
        "HeyReach needs list_id and Instantly campaign_id: which one depends on the path",
    ),
    (
        r"^POST /api/v1/campaigns/\{id\}/push-top$",
        r"^top$",
        r"no new lead of this campaign has a predicted_score yet",
        "push-top picks leads by their learned score: none until outcomes were learned from (stored data)",
    ),
    (
        r"^PUT /api/v1/campaigns/\{id\}/workflow$",
        r"^nodes\b",
        r".",
        "a workflow's nodes refer to each other and to stored API requests (unique ids, existing "
        "targets, outputs read after they are written, parsing templates)",
    ),
]

# (operation label, error.code, why): refusals with their own code, from stored state.
ALLOWED_400_CODES = [
    (
        r"^POST /api/v1/(leads/push|campaigns/\{id\}/push-top)$",
        r"^integration_not_configured$",
        "pushing to HeyReach or Instantly needs the workspace's integration first (stored data)",
    ),
]


def _allowed(case, response) -> bool:
    if response.status_code != 400:
        return False
    try:
        body = json.loads(response.text)
        if "errors" in body:
            # Hunter's shape under /v2: {"errors": [{"id", "code", "details": "field: message"}]}.
            error = body["errors"][0]
            message, code = error.get("details") or "", error.get("id") or ""
            field = message.split(": ", 1)[0] if ": " in message else ""
        else:
            error = body["error"]
            field, code, message = error.get("field") or "", error.get("code") or "", error.get("message") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return False
    label = case.operation.label
    reason = message[len(field) + 2 :] if message.startswith(f"{field}: ") else message
    return any(
        re.search(op, label) and re.search(name, field) and re.match(words, reason, re.DOTALL)
        for op, name, words, _ in ALLOWED_400
    ) or any(re.search(op, label) and re.search(pattern, code) for op, pattern, _ in ALLOWED_400_CODES)


@schemathesis.check
def positive_data_acceptance_but_state(ctx, response, case):
    """`positive_data_acceptance`, with the allowances above."""
    if _allowed(case, response):
        return None
    return _openapi_positive_data_acceptance(ctx, response, case)


@schemathesis.check
def negative_data_rejection_but_extra_query(ctx, response, case):
    """`negative_data_rejection`, except for two answers that do refuse the request: 413,
    which the operation documents (more leads than `maxItems`, a body over the limit), and
    query parameters the operation does not list, which the server ignores (Hunter clients
    send parameters of their own)."""
    documented = case.operation.definition.raw.get("responses", {})
    if response.status_code == 413 and "413" in documented:
        return None
    try:
        return _openapi_negative_data_rejection(ctx, response, case)
    except Exception as failure:  # the check's failure type is internal to schemathesis
        if "in query - violates `additionalProperties`" in str(failure) and "\n- " not in str(failure):
            return None
        raise
