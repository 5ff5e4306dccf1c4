"""The disposable-email-domains list of the pinned PyPI package (Makefile PIP_PINS), for the
comparison test in shared/src/enrich/reference_checks.rs. Prints JSON: {"version", "domains"}."""

import importlib.metadata
import json
import sys

import disposable_email_domains

domains = sorted(disposable_email_domains.blocklist - disposable_email_domains.allowlist)
json.dump({"version": importlib.metadata.version("disposable-email-domains"), "domains": domains}, sys.stdout)
