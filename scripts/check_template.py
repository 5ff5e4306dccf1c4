"""Checks the SAM template offline, beyond what a linter checks.

Usage: check_template.py TEMPLATE            check it; exit 1 listing every problem
       check_template.py --self-test TEMPLATE  break TEMPLATE in memory in one way at a
                                                time and check that each break is caught

What it checks, with nothing but the pinned aws-sam-translator (no AWS credentials):
  * The SAM transform runs (CodeUri paths stand in for the s3:// URIs `sam package` writes).
  * Every Ref, Fn::GetAtt, ${...} of Fn::Sub, DependsOn and Fn::If condition resolves, before
    the transform (to parameters, resources and the names SAM generates) and after it (to
    parameters and the resources CloudFormation will see) or to a pseudo parameter.
  * Every parameter's default meets its own constraints; an unused parameter is a warning.
    A parameter fed to an event source's ScalingConfig.MaximumConcurrency is held to 2..1000.
  * Every function runs `bootstrap` on provided.al2023 (or al2) arm64 from
    target/lambda/<crate>/, where `make build` writes the crate functions/<crate> (not the
    CLI, `leadpush`), and every such crate has exactly one function.
  * Every function behind the HTTP API (an HttpApi/Api event, or an API Gateway invoke
    permission) has a timeout of at most 29 s: API Gateway gives up after 30 s.
  * Alarms: none on DynamoDB's ThrottledRequests without its Operation dimension (it is
    published per operation only, so such an alarm never fires); read and write throttle
    events are watched for every table and each of its global secondary indexes; the HTTP
    API's 5xx and each HTTP function's Errors are watched; every alarm has AlarmActions;
    metric-math alarms stay within CloudWatch's 10 metrics and return one series.
  * Stored secrets: a KMS key with rotation seals them; exactly the functions that use a
    secret (SECRET_USERS) get LEADPUSH_KMS_KEY_ID and kms:Decrypt/GenerateDataKey on that
    key, and no other function (nor Globals) has either.
"""

import copy
import logging
import os
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Crates under functions/ that are not Lambda functions.
NOT_FUNCTIONS = {"leadpush"}
RUNTIMES = {"provided.al2023", "provided.al2"}
# API Gateway waits at most 30 s for an integration (HTTP APIs: fixed).
HTTP_TIMEOUT_MAX = 29
LAMBDA_DEFAULT_TIMEOUT = 3
PSEUDO = {
    "AWS::Region",
    "AWS::AccountId",
    "AWS::StackName",
    "AWS::StackId",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NoValue",
    "AWS::NotificationARNs",
}
FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
HTTP_EVENT_TYPES = {"HttpApi", "Api"}
SUB_VAR = re.compile(r"\$\{([^}]*)\}")
CODE_URI = re.compile(r"^target/lambda/([A-Za-z0-9_-]+)/?$")
KMS_ENV = "LEADPUSH_KMS_KEY_ID"
# The functions whose code reads or writes a sealed field (repo::secrets::SECRET_FIELDS).
SECRET_USERS = {
    "PushLeadsFunction",  # provider API keys, to push
    "IntegrationsFunction",  # writes provider keys; shows them masked
    "WebhooksFunction",  # endpoint and callback signing secrets and headers; signs test sends
    "ApiRequestsFunction",  # API request headers (Authorization); sends tests
    "DispatcherFunction",  # signs deliveries, creates the callback secret, pushes retries
    "WorkflowWorkerFunction",  # API request headers in fetch nodes, provider keys in push nodes
}


def load(path):
    """The template as plain dicts, short tags (!Ref, !Sub...) in their long forms."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(Path(path).read_text())


def duplicate_keys(text):
    """A key given twice in one mapping: YAML loaders keep the last silently (a function's
    second Environment would drop the first's variables)."""
    import yaml

    problems = []
    stack = [yaml.compose(text, Loader=yaml.SafeLoader)]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        problems.append(f"line {key.start_mark.line + 1}: key {key.value!r} repeats line {seen[key.value]}")
                    seen[key.value] = key.start_mark.line + 1
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return problems


def where(path):
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def intrinsics(node, path):
    """Yields (kind, target, path) for every reference in node.

    kind is Ref, GetAtt, Sub (a ${...} of Fn::Sub), If (a condition), FindInMap."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from intrinsics(item, path + [i])
        return
    if not isinstance(node, dict):
        return
    if len(node) == 1:
        (key, value), = node.items()
        if key == "Ref" and isinstance(value, str):
            yield "Ref", value, path
            return
        if key == "Fn::GetAtt":
            target = value.split(".", 1)[0] if isinstance(value, str) else value[0] if value else None
            if isinstance(target, str):
                yield "GetAtt", target, path
            elif target is not None:
                yield from intrinsics(target, path + [key, 0])
            if isinstance(value, list):
                yield from intrinsics(value[1:], path + [key])
            return
        if key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1] if len(value) > 1 else {})
            if isinstance(text, str):
                for match in SUB_VAR.finditer(text):
                    name = match.group(1).strip()
                    if name.startswith("!"):  # ${!Literal}: written out as ${Literal}
                        continue
                    if name in variables:
                        continue
                    target = name if name in PSEUDO else name.split(".", 1)[0]
                    yield "Sub", target, path
            yield from intrinsics(variables, path + [key, 1])
            return
        if key == "Fn::If" and isinstance(value, list) and value and isinstance(value[0], str):
            yield "If", value[0], path
            yield from intrinsics(value[1:], path + [key])
            return
        if key == "Fn::FindInMap" and isinstance(value, list) and value and isinstance(value[0], str):
            yield "FindInMap", value[0], path
            yield from intrinsics(value[1:], path + [key])
            return
    for key, value in node.items():
        yield from intrinsics(value, path + [key])


def condition_refs(node, path):
    """{"Condition": name} inside the Conditions section."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from condition_refs(item, path + [i])
    elif isinstance(node, dict):
        if len(node) == 1 and isinstance(node.get("Condition"), str):
            yield node["Condition"], path
            return
        for key, value in node.items():
            yield from condition_refs(value, path + [key])


def check_references(t, names, resources, label, problems):
    """Every reference in t resolves; returns how many did."""
    before = len(problems)
    params = set(t.get("Parameters") or {})
    conditions = set(t.get("Conditions") or {})
    mappings = set(t.get("Mappings") or {})
    count = 0
    for section in ("Globals", "Conditions", "Resources", "Outputs"):
        for kind, target, path in intrinsics(t.get(section) or {}, [section]):
            count += 1
            at = where(path)
            if kind == "If":
                if target not in conditions:
                    problems.append(f"{label}: Fn::If at {at} names condition {target}, which is not declared")
            elif kind == "FindInMap":
                if target not in mappings:
                    problems.append(f"{label}: Fn::FindInMap at {at} names mapping {target}, which is not declared")
            elif kind == "GetAtt":
                if target not in resources:
                    problems.append(f"{label}: Fn::GetAtt at {at} names {target}, which is not a resource")
            elif target not in PSEUDO and target not in params and target not in names:
                # SAM also accepts Ref "MyFunction.Alias", "MyApi.Stage" and the like.
                if not (kind == "Ref" and "." in target and target.split(".", 1)[0] in names):
                    what = "Ref" if kind == "Ref" else "${} of Fn::Sub"
                    problems.append(
                        f"{label}: {what} {target} at {at} is not a declared parameter, a resource or a pseudo parameter"
                    )
    for section in ("Conditions",):
        for target, path in condition_refs(t.get(section) or {}, [section]):
            count += 1
            if target not in conditions:
                problems.append(f"{label}: condition {target} at {where(path)} is not declared")
    for name, resource in (t.get("Resources") or {}).items():
        if not isinstance(resource, dict):
            continue
        cond = resource.get("Condition")
        if cond is not None:
            count += 1
            if cond not in conditions:
                problems.append(f"{label}: resource {name} has condition {cond}, which is not declared")
        depends = resource.get("DependsOn") or []
        for dep in [depends] if isinstance(depends, str) else depends:
            count += 1
            if dep not in resources:
                problems.append(f"{label}: resource {name} depends on {dep}, which is not a resource")
    for name, output in (t.get("Outputs") or {}).items():
        cond = output.get("Condition") if isinstance(output, dict) else None
        if cond is not None:
            count += 1
            if cond not in conditions:
                problems.append(f"{label}: output {name} has condition {cond}, which is not declared")
    return count - (len(problems) - before)


def number(value):
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value) if not isinstance(value, (int, float)) else value


def check_parameters(t, problems, warnings):
    """Defaults meet their constraints; unused parameters are warnings. Returns how many are fine."""
    params = t.get("Parameters") or {}
    used = {target for section in ("Globals", "Conditions", "Resources", "Outputs")
            for kind, target, _ in intrinsics(t.get(section) or {}, [section]) if kind in ("Ref", "Sub")}
    ok = 0
    for name, p in params.items():
        before = len(problems)
        if name not in used:
            warnings.append(f"parameter {name} is declared but never used")
        kind = p.get("Type")
        if kind is None:
            problems.append(f"parameter {name} has no Type")
            continue
        if "Default" not in p:
            ok += 1  # a deploy must give it; nothing to check here
            continue
        default = p["Default"]
        if kind in ("Number", "List<Number>"):
            items = str(default).split(",") if kind == "List<Number>" else [default]
            values = []
            for item in items:
                try:
                    values.append(number(item.strip() if isinstance(item, str) else item))
                except ValueError:
                    problems.append(f"parameter {name}: default {default!r} is not a number")
            for v in values:
                if "MinValue" in p and v < number(p["MinValue"]):
                    problems.append(f"parameter {name}: default {default} is below MinValue {p['MinValue']}")
                if "MaxValue" in p and v > number(p["MaxValue"]):
                    problems.append(f"parameter {name}: default {default} is above MaxValue {p['MaxValue']}")
                if "AllowedValues" in p and v not in {number(a) for a in p["AllowedValues"]}:
                    problems.append(f"parameter {name}: default {default} is not one of AllowedValues")
        elif kind in ("String", "CommaDelimitedList") or kind.startswith("AWS::"):
            text = default if isinstance(default, str) else str(default)
            if not isinstance(default, str):
                warnings.append(f"parameter {name}: default {default!r} is not written as a string")
            items = [s.strip() for s in text.split(",")] if kind == "CommaDelimitedList" else [text]
            for item in items:
                if "AllowedValues" in p and item not in {str(a) for a in p["AllowedValues"]}:
                    problems.append(f"parameter {name}: default {item!r} is not one of AllowedValues {p['AllowedValues']}")
                if "AllowedPattern" in p and not re.fullmatch(p["AllowedPattern"], item):
                    problems.append(f"parameter {name}: default {item!r} does not match AllowedPattern {p['AllowedPattern']!r}")
            if "MinLength" in p and len(text) < int(p["MinLength"]):
                problems.append(f"parameter {name}: default {text!r} is shorter than MinLength {p['MinLength']}")
            if "MaxLength" in p and len(text) > int(p["MaxLength"]):
                problems.append(f"parameter {name}: default {text!r} is longer than MaxLength {p['MaxLength']}")
        else:
            problems.append(f"parameter {name}: unknown Type {kind}")
        if len(problems) == before:
            ok += 1
    return ok


def sam_transform(t):
    """The template as CloudFormation sees it after AWS::Serverless-2016-10-31."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    from samtranslator.translator.transform import transform

    # Its usage metrics (kept in memory, published nowhere) warn when dropped unpublished.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    t = copy.deepcopy(t)
    managed = set()
    function_globals = ((t.get("Globals") or {}).get("Function") or {})
    for name, r in (t.get("Resources") or {}).items():
        if r.get("Type") != "AWS::Serverless::Function":
            continue
        props = r.setdefault("Properties", {})
        # What `sam package` does: the local build directory becomes an uploaded zip.
        if isinstance(props.get("CodeUri", function_globals.get("CodeUri")), str):
            props["CodeUri"] = f"s3://leadpush-check/{name}.zip"
        policies = props.get("Policies", [])
        for policy in [policies] if isinstance(policies, str) else policies:
            if isinstance(policy, str) and not policy.startswith("arn:"):
                managed.add(policy)

    class PolicyLoader:  # stands in for ManagedPolicyLoader, which asks IAM
        def load(self):
            return {n: f"arn:aws:iam::aws:policy/{n}" for n in managed}

    values = {n: p["Default"] for n, p in (t.get("Parameters") or {}).items() if "Default" in p}
    return transform(t, values, PolicyLoader())


def sam_generated_names(t):
    """Names SAM generates, for when the transform itself failed."""
    names = set()
    for name, r in (t.get("Resources") or {}).items():
        if r.get("Type") == "AWS::Serverless::Function":
            names.add(f"{name}Role")
            for event, e in ((r.get("Properties") or {}).get("Events") or {}).items():
                names.update({f"{name}{event}", f"{name}{event}Permission"})
        elif r.get("Type") in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api"):
            names.update({f"{name}ApiGatewayDefaultStage", f"{name}Deployment", f"{name}Stage"})
    return names | {"ServerlessHttpApi", "ServerlessRestApi"}


def crates():
    """Function crates `make build` builds: {directory: bin names}."""
    out = {}
    for d in sorted((ROOT / "functions").iterdir()):
        if not (d / "Cargo.toml").is_file() or d.name in NOT_FUNCTIONS:
            continue
        manifest = tomllib.loads((d / "Cargo.toml").read_text())
        bins = {b.get("name") for b in manifest.get("bin", [])} or {manifest["package"]["name"]}
        out[d.name] = (manifest["package"]["name"], bins)
    return out


def effective(t, out, name, key, default=None):
    """A function property after Globals: from the transformed output when there is one."""
    if out is not None and name in out["Resources"]:
        return out["Resources"][name].get("Properties", {}).get(key, default)
    props = t["Resources"][name].get("Properties") or {}
    if key in props:
        return props[key]
    if t["Resources"][name]["Type"] == "AWS::Serverless::Function":
        return ((t.get("Globals") or {}).get("Function") or {}).get(key, default)
    return default


def http_functions(t, out):
    found = set()
    for name, r in t["Resources"].items():
        if r.get("Type") == "AWS::Serverless::Function":
            events = (r.get("Properties") or {}).get("Events") or {}
            if any(e.get("Type") in HTTP_EVENT_TYPES for e in events.values()):
                found.add(name)
    for r in (out or t)["Resources"].values():
        props = r.get("Properties") or {}
        if r.get("Type") == "AWS::Lambda::Permission" and props.get("Principal") == "apigateway.amazonaws.com":
            fn = props.get("FunctionName")
            if isinstance(fn, dict) and isinstance(fn.get("Ref"), str):
                found.add(fn["Ref"])
    return found


def check_functions(t, out, problems):
    functions = [n for n, r in t["Resources"].items() if r.get("Type") in FUNCTION_TYPES]
    known = crates()
    by_crate = {}
    for name in functions:
        runtime = effective(t, out, name, "Runtime")
        if runtime not in RUNTIMES:
            problems.append(f"function {name}: Runtime {runtime!r}, not one of {sorted(RUNTIMES)}")
        handler = effective(t, out, name, "Handler")
        if handler != "bootstrap":
            problems.append(f"function {name}: Handler {handler!r}, not 'bootstrap'")
        arch = effective(t, out, name, "Architectures", ["x86_64"])
        if arch != ["arm64"]:
            problems.append(f"function {name}: Architectures {arch}, not [arm64] (`make build` builds arm64)")
        if t["Resources"][name]["Type"] != "AWS::Serverless::Function":
            problems.append(f"function {name}: an AWS::Lambda::Function, whose code `make build` does not provide")
            continue
        props = t["Resources"][name].get("Properties") or {}
        uri = props.get("CodeUri", ((t.get("Globals") or {}).get("Function") or {}).get("CodeUri"))
        m = CODE_URI.match(uri) if isinstance(uri, str) else None
        if not m:
            problems.append(f"function {name}: CodeUri {uri!r} is not target/lambda/<crate>/ (what `make build` writes)")
            continue
        crate = m.group(1)
        by_crate.setdefault(crate, []).append(name)
        if crate not in known:
            problems.append(f"function {name}: CodeUri {uri} names {crate}, which is not a function crate under functions/")
            continue
        package, bins = known[crate]
        if package != crate:
            problems.append(f"function {name}: `make build` builds -p {crate}, but functions/{crate} is package {package}")
        if crate not in bins:
            problems.append(f"function {name}: functions/{crate} has no binary {crate} (cargo lambda writes target/lambda/<bin>/bootstrap)")
    for crate in known:
        fns = by_crate.get(crate, [])
        if len(fns) != 1:
            problems.append(f"crate functions/{crate}: {len(fns)} functions in the template ({', '.join(fns) or 'none'}), not one")
    return functions


def check_http_timeouts(t, out, problems):
    http = http_functions(t, out)
    for name in sorted(http):
        if name not in t["Resources"]:
            continue
        timeout = effective(t, out, name, "Timeout", LAMBDA_DEFAULT_TIMEOUT)
        try:
            seconds = number(timeout)
        except (TypeError, ValueError):
            problems.append(f"function {name} serves the HTTP API; its Timeout {timeout!r} is not a number")
            continue
        if seconds > HTTP_TIMEOUT_MAX:
            problems.append(
                f"function {name} serves the HTTP API with Timeout {timeout} s: API Gateway gives up after 30 s, "
                f"so at most {HTTP_TIMEOUT_MAX}"
            )
    return http


def check_scaling(t, out, problems):
    params = t.get("Parameters") or {}
    for name, r in (out or {}).get("Resources", {}).items():
        if r.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        value = ((r.get("Properties") or {}).get("ScalingConfig") or {}).get("MaximumConcurrency")
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(value.get("Ref"), str) and value["Ref"] in params:
            p = params[value["Ref"]]
            if not (number(p.get("MinValue", 0)) >= 2 and number(p.get("MaxValue", 10**9)) <= 1000):
                problems.append(
                    f"{name}: ScalingConfig.MaximumConcurrency takes parameter {value['Ref']}, "
                    "which must declare MinValue >= 2 and MaxValue <= 1000 (AWS's range)"
                )
        elif isinstance(value, (int, float)) and not 2 <= value <= 1000:
            problems.append(f"{name}: ScalingConfig.MaximumConcurrency {value} is outside 2..1000")


def alarm_metrics(props):
    """(namespace, metric, {dimension: value}) watched by an alarm."""
    def dims(ds):
        return {d.get("Name"): repr(d.get("Value")) for d in ds or [] if isinstance(d, dict)}

    if "MetricName" in props:
        return [(props.get("Namespace"), props["MetricName"], dims(props.get("Dimensions")))]
    out = []
    for q in props.get("Metrics") or []:
        m = ((q.get("MetricStat") or {}).get("Metric")) or {}
        if m:
            out.append((m.get("Namespace"), m.get("MetricName"), dims(m.get("Dimensions"))))
    return out


def check_alarms(t, http, problems):
    resources = t["Resources"]
    alarms = {n: r.get("Properties") or {} for n, r in resources.items() if r.get("Type") == "AWS::CloudWatch::Alarm"}
    watched = []
    for name, props in alarms.items():
        metrics = alarm_metrics(props)
        watched.extend(metrics)
        if not props.get("AlarmActions"):
            problems.append(f"alarm {name} has no AlarmActions: it notifies nobody")
        if "Metrics" in props:
            queries = props["Metrics"] or []
            stats = [q for q in queries if "MetricStat" in q]
            if len(stats) > 10:
                problems.append(f"alarm {name} reads {len(stats)} metrics; CloudWatch allows 10 in a metric-math alarm")
            returned = [q.get("Id") for q in queries if q.get("ReturnData", True) is not False]
            if len(returned) != 1:
                problems.append(f"alarm {name}: {len(returned)} queries return data ({returned}); exactly one must")
            ids = [q.get("Id") for q in queries]
            if len(set(ids)) != len(ids) or not all(isinstance(i, str) and re.match(r"^[a-z]", i) for i in ids):
                problems.append(f"alarm {name}: query Ids must be unique and start with a lower-case letter: {ids}")
        for ns, metric, dims in metrics:
            if ns == "AWS/DynamoDB" and metric == "ThrottledRequests" and "Operation" not in dims:
                problems.append(
                    f"alarm {name} watches ThrottledRequests without an Operation dimension: DynamoDB publishes it "
                    "per table and operation only, so it never fires (watch Read/WriteThrottleEvents)"
                )

    def has(ns, metric, dims):
        return any(w == (ns, metric, dims) for w in watched)

    for name, r in resources.items():
        if r.get("Type") == "AWS::DynamoDB::Table":
            table = repr({"Ref": name})
            indexes = [g.get("IndexName") for g in (r.get("Properties") or {}).get("GlobalSecondaryIndexes") or []]
            for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
                if not has("AWS/DynamoDB", metric, {"TableName": table}):
                    problems.append(f"table {name}: no alarm watches its {metric} (dimension TableName)")
                for index in indexes:
                    if not has("AWS/DynamoDB", metric, {"TableName": table, "GlobalSecondaryIndexName": repr(index)}):
                        problems.append(f"table {name}: no alarm watches {metric} of its index {index}")
        if r.get("Type") in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"):
            if not has("AWS/ApiGateway", "5xx", {"ApiId": repr({"Ref": name})}):
                problems.append(f"HTTP API {name}: no alarm watches its 5xx (AWS/ApiGateway, dimension ApiId)")
    for name in sorted(http):
        if not has("AWS/Lambda", "Errors", {"FunctionName": repr({"Ref": name})}):
            problems.append(f"function {name} serves the HTTP API but no alarm watches its Errors")
    return len(alarms)


def statements(t, name):
    props = t["Resources"][name].get("Properties") or {}
    for policy in props.get("Policies") or []:
        if isinstance(policy, dict):
            for st in policy.get("Statement") or []:
                yield st


def check_secrets(t, problems):
    keys = [n for n, r in t["Resources"].items() if r.get("Type") == "AWS::KMS::Key"]
    if len(keys) != 1:
        problems.append(f"stored secrets: expected one AWS::KMS::Key, found {keys}")
        return 0
    key = keys[0]
    if (t["Resources"][key].get("Properties") or {}).get("EnableKeyRotation") is not True:
        problems.append(f"KMS key {key}: EnableKeyRotation is not true")
    globals_env = (((t.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables") or {}
    if KMS_ENV in globals_env:
        problems.append(f"Globals set {KMS_ENV}: every function would get the secrets key")
    users = 0
    for name, r in t["Resources"].items():
        if r.get("Type") not in FUNCTION_TYPES:
            continue
        env = ((r.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        has_env = env.get(KMS_ENV) == {"Ref": key}
        actions = set()
        for st in statements(t, name):
            acts = st.get("Action")
            acts = [acts] if isinstance(acts, str) else (acts or [])
            if any(a.startswith("kms:") for a in acts):
                if st.get("Resource") != {"Fn::GetAtt": [key, "Arn"]}:
                    problems.append(f"function {name}: a kms statement not limited to {key}")
                actions.update(acts)
        wants = {"kms:Decrypt", "kms:GenerateDataKey"}
        if name in SECRET_USERS:
            users += 1
            if not has_env:
                problems.append(f"function {name} uses secrets but has no {KMS_ENV}: !Ref {key}")
            if not wants <= actions:
                problems.append(f"function {name} uses secrets but lacks {sorted(wants - actions)} on {key}")
        elif has_env or actions:
            problems.append(f"function {name} uses no secret but can use the secrets key ({KMS_ENV} or kms actions)")
    return users


def check(t):
    """(problems, warnings, summary) for the loaded template t."""
    problems, warnings = [], []
    if not isinstance(t.get("Resources"), dict):
        return ["the template has no Resources"], warnings, "template: nothing to check"
    out = None
    try:
        out = sam_transform(t)
    except Exception as e:  # the translator's errors list every resource it rejected
        causes = getattr(e, "causes", None) or [e]
        for c in causes:
            problems.append(f"SAM transform: {getattr(c, 'message', None) or c}")
    generated = set(out["Resources"]) if out else sam_generated_names(t)
    source = set(t["Resources"])
    count = check_references(t, source | generated, source | generated, "before the transform", problems)
    if out:
        count = check_references(out, set(out["Resources"]), set(out["Resources"]), "after the transform", problems)
    params_ok = check_parameters(t, problems, warnings)
    check_scaling(t, out, problems)
    functions = check_functions(t, out, problems)
    http = check_http_timeouts(t, out, problems)
    alarms = check_alarms(t, http, problems)
    secret_users = check_secrets(t, problems)
    summary = (
        f"template: {len(functions)} functions ({len(http)} behind the HTTP API), {count} references resolved, "
        f"{params_ok} of {len(t.get('Parameters') or {})} parameters ok, {alarms} alarms, "
        f"{secret_users} functions with the secrets key"
        + (f", SAM transform to {len(out['Resources'])} resources" if out else "")
    )
    return problems, warnings, summary


def self_test(path):
    """Each break of the template must be caught, with a message naming it."""
    base = load(path)
    problems, _, _ = check(base)
    if problems:
        print("self-test: the template itself has problems; run the plain check first", file=sys.stderr)
        return 1
    res = base["Resources"]
    http = sorted(http_functions(base, None))
    fn = http[0]
    table = next(n for n, r in res.items() if r["Type"] == "AWS::DynamoDB::Table")
    index = res[table]["Properties"]["GlobalSecondaryIndexes"][-1]["IndexName"]
    api = next(n for n, r in res.items() if r["Type"] == "AWS::Serverless::HttpApi")
    scaled = next(n for n in (base.get("Parameters") or {}) if n.endswith("MaxConcurrency"))
    enum = next(n for n, p in base["Parameters"].items() if "AllowedValues" in p and p["Type"] == "String")

    def drop_param(t):
        del t["Parameters"][scaled]

    def slow(t):
        t["Resources"][fn]["Properties"]["Timeout"] = 45

    def throttled_requests(t):
        t["Resources"]["OldThrottleAlarm"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "Namespace": "AWS/DynamoDB", "MetricName": "ThrottledRequests",
            "Dimensions": [{"Name": "TableName", "Value": {"Ref": table}}], "Statistic": "Sum", "Period": 300,
            "EvaluationPeriods": 1, "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:t"]}}

    def unwatched_index(t):
        for r in t["Resources"].values():
            props = r.get("Properties") or {}
            if r["Type"] == "AWS::CloudWatch::Alarm" and "Metrics" in props:
                props["Metrics"] = [q for q in props["Metrics"]
                                    if repr(index) not in repr(q.get("MetricStat", {}).get("Metric", {}).get("Dimensions"))]

    def no_5xx(t):
        t["Resources"] = {n: r for n, r in t["Resources"].items()
                          if (r.get("Properties") or {}).get("MetricName") != "5xx"}

    def no_errors_alarm(t):
        t["Resources"] = {n: r for n, r in t["Resources"].items()
                          if (r.get("Properties") or {}).get("Dimensions") != [{"Name": "FunctionName", "Value": {"Ref": fn}}]}

    def bad_code_uri(t):
        t["Resources"][fn]["Properties"]["CodeUri"] = "target/lambda/no-such-crate/"

    def duplicate_crate(t):
        t["Resources"]["ExtraFunction"] = copy.deepcopy(t["Resources"][fn])
        t["Resources"]["ExtraFunction"]["Properties"]["Events"] = {}

    def x86(t):
        t["Globals"]["Function"]["Architectures"] = ["x86_64"]

    def unknown_condition(t):
        t["Outputs"]["Broken"] = {"Value": {"Fn::If": ["NoSuchCondition", "a", "b"]}}

    def unknown_sub(t):
        t["Outputs"]["Broken"] = {"Value": {"Fn::Sub": ["${NoSuchResource.Arn}/${Known}", {"Known": "x"}]}}

    def escaped_sub(t):  # must stay clean: ${!Literal} and Sub-map variables resolve
        t["Outputs"]["Fine"] = {"Value": {"Fn::Sub": ["${!NotAReference}${AWS::Region}${Known}", {"Known": "x"}]}}

    def bad_default(t):
        t["Parameters"][enum]["Default"] = "not-allowed"

    def bad_number(t):
        t["Parameters"][scaled]["Default"] = 1

    def no_actions(t):
        del t["Resources"][f"{fn[:-len('Function')]}ErrorsAlarm"]["Properties"]["AlarmActions"]

    def secrets_everywhere(t):
        t["Globals"]["Function"]["Environment"]["Variables"][KMS_ENV] = {"Ref": "SecretsKey"}

    def reader_decrypts(t):
        t["Resources"]["LeadsFunction"]["Properties"]["Policies"].append(
            {"Statement": [{"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": {"Fn::GetAtt": ["SecretsKey", "Arn"]}}]})

    def dispatcher_without_key(t):
        del t["Resources"]["DispatcherFunction"]["Properties"]["Environment"]

    cases = [
        (drop_param, f"{scaled} at"), (slow, "Timeout 45"), (throttled_requests, "ThrottledRequests without"),
        (unwatched_index, f"of its index {index}"), (no_5xx, f"HTTP API {api}: no alarm"),
        (no_errors_alarm, f"function {fn} serves the HTTP API but no alarm"),
        (bad_code_uri, "no-such-crate"), (duplicate_crate, "2 functions in the template"),
        (x86, "Architectures ['x86_64']"), (unknown_condition, "condition NoSuchCondition"),
        (unknown_sub, "NoSuchResource"), (escaped_sub, None), (bad_default, f"parameter {enum}: default"),
        (bad_number, f"parameter {scaled}: default 1 is below MinValue"), (no_actions, "notifies nobody"),
        (secrets_everywhere, f"Globals set {KMS_ENV}"), (reader_decrypts, "function LeadsFunction uses no secret"),
        (dispatcher_without_key, f"function DispatcherFunction uses secrets but has no {KMS_ENV}"),
    ]
    failed = 0
    for breaker, expected in cases:
        t = copy.deepcopy(base)
        breaker(t)
        problems, _, _ = check(t)
        caught = not problems if expected is None else any(expected in p for p in problems)
        if not caught:
            failed += 1
            print(f"self-test: {breaker.__name__}: expected {expected!r}, got {problems}", file=sys.stderr)
    if duplicate_keys(Path(path).read_text()) or not duplicate_keys("A:\n  Environment: 1\n  Environment: 2\n"):
        failed += 1
        print("self-test: duplicate keys: not told apart", file=sys.stderr)
    print(f"check_template self-test: {len(cases) + 1 - failed} of {len(cases) + 1} breaks caught")
    return 1 if failed else 0


def main(argv):
    args = [a for a in argv if a != "--self-test"]
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    if "--self-test" in argv:
        return self_test(args[0])
    problems, warnings, summary = check(load(args[0]))
    problems += duplicate_keys(Path(args[0]).read_text())
    for w in warnings:
        print(f"warning: {w}")
    print(summary)
    if problems:
        print(f"{args[0]}: {len(problems)} problems:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
