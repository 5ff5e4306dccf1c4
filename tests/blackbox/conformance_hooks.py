"""Schemathesis hooks for the conformance test (tests/blackbox/conformance.rs).

`positive_data_acceptance` is run as schemathesis runs it, except for a 400 whose
`error.field` names a value whose validity no OpenAPI schema can state: it depends on
stored data, on another parameter, or on a token only the server mints. Each allowance
below names the operations and fields it covers and why; anything else a schema-valid
request gets refused with is still a failure.
"""

import json
import re

import schemathesis
from schemathesis.specs.openapi.checks import (
    _openapi_negative_data_rejection,
    _openapi_positive_data_acceptance,
)

FINDERS = r"^GET /(api/v1|v2)/(email-finder|domain-search|phone-finder)$"

# (operation label regex, error.field regex, why the schema cannot say it)
ALLOWED_400 = [
    (r".", r"^cursor$", "a cursor is an opaque token from `next_cursor`; random text is not one"),
    (
        FINDERS,
        r"^(domain|company|first_name|last_name|full_name|email|linkedin_handle)$",
        "one of several parameters is required, a company resolves through the workspace's "
        "leads, and a name must hold letters",
    ),
    (
        r"^POST /api/v1/webhook/leads$",
        r"^leads\[\d+\]$",
        "each lead needs at least one of name, email, first_name, last_name, linkedin, phone, "
        "twitter, company (a rule across fields)",
    ),
    (
        r"^POST /api/v1/feedback/providers/heyreach$",
        r"^event_type$",
        "the event name may come from the body or from the URL's ?event=",
    ),
    (
        r"^POST /api/v1/feedback/events$",
        r"^occurred_at$",
        "an event may not be in the future: the upper bound is the server's clock",
    ),
    (
        r"^POST /api/v1/feedback/events$",
        r"^metadata\b",
        "metadata is a free-form object; the storable depth and number range and precision "
        "(stated in its description) apply to every value inside it, which no schema of an "
        "open object can state",
    ),
    (
        r"^POST /api/v1/leads/push$",
        r"^webhook_url$",
        "webhook_url is required when destination is webhook_url (a rule across fields)",
    ),
    (
        r".",
        r"^(url|webhook_url|meeting_url)$",
        "the document requires http(s)://; whether the rest is a URL (WHATWG hosts, IDNA, "
        "ports) is more than a pattern can state",
    ),
    (
        r"^(POST|PATCH) /api/v1/(webhooks|api-requests)",
        r"^(request\.)?headers\.",
        "header names and values: token syntax and names the server reserves for itself",
    ),
    (
        r"^(POST|PATCH) /api/v1/api-requests",
        r"^(request\.)?cache_ttl_s$",
        "cache_ttl_s applies to GET requests only (a rule across fields)",
    ),
    (
        r"^POST /api/v1/webhook/leads$",
        r"^leads\[\d+\]\.(email|website|linkedin|custom_fields|campaign_id)\b",
        "address and link syntax the server normalises (bare domains become https://), "
        "custom field limits that count nesting, and a campaign_id that must be one of the "
        "workspace's webhook campaigns",
    ),
    (
        r"^(POST|PATCH) /api/v1/api-requests",
        r"^(request\.)?timeout_ms$",
        "the upper bound is the workspace's own api_request_max_timeout_ms, which the run changes",
    ),
    (
        r"^(POST|PATCH) /api/v1/api-requests",
        r"^(request\.)?(url|headers|query|body|method)\b",
        "templates: whether a template renders to a URL, a header or JSON is not a schema rule",
    ),
    (
        r"^POST /api/v1/api-requests/test$",
        r"^request\.",
        "`request` is an unsaved API request, checked as POST /api/v1/api-requests checks one",
    ),
    (
        r"^PATCH /api/v1/campaigns/\{id\}$",
        r"^lead_source$",
        "the lead source can change only while the campaign is a draft (its state)",
    ),
    (
        r"^PUT /api/v1/integrations/\{provider\}$",
        r"^(list_id|campaign_id)$",
        "HeyReach needs list_id and Instantly a campaign UUID: which depends on the path",
    ),
    (
        r"^PUT /api/v1/campaigns/\{id\}/workflow$",
        r"^nodes\b",
        "a workflow's nodes refer to each other (unique ids, existing targets, API requests)",
    ),
]

# (operation label regex, error.code regex, why): refusals that depend on stored state.
ALLOWED_400_CODES = [
    (
        r"^POST /api/v1/feedback/events$",
        r"^occurred_at$",
        "an event may not be in the future: the upper bound is the server's clock",
    ),
    (
        r"^POST /api/v1/leads/push$",
        r"^integration_not_configured$",
        "pushing to HeyReach or Instantly needs the workspace's integration first",
    ),
]


def _allowed(case, response) -> bool:
    if response.status_code != 400:
        return False
    try:
        error = json.loads(response.text)["error"]
        field, code = error.get("field") or "", error.get("code") or ""
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    label = case.operation.label
    return any(re.search(op, label) and re.search(name, field) for op, name, _ in ALLOWED_400) or any(
        re.search(op, label) and re.search(pattern, code) for op, pattern, _ in ALLOWED_400_CODES
    )


@schemathesis.check
def positive_data_acceptance_but_state(ctx, response, case):
    """`positive_data_acceptance`, with the allowances above."""
    if _allowed(case, response):
        return None
    return _openapi_positive_data_acceptance(ctx, response, case)


@schemathesis.check
def negative_data_rejection_but_extra_query(ctx, response, case):
    """`negative_data_rejection`, except for query parameters the operation does not list:
    the server ignores them (Hunter clients send parameters of their own)."""
    try:
        return _openapi_negative_data_rejection(ctx, response, case)
    except Exception as failure:  # the check's failure type is internal to schemathesis
        if "in query - violates `additionalProperties`" in str(failure) and "\n- " not in str(failure):
            return None
        raise
