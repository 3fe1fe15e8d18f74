"""A finished suite run as JUnit XML, as a JSON result and as a self-contained
HTML report (inline CSS, no scripts, every request and response, API keys
masked)."""

import json
import xml.etree.ElementTree as ET

from django.template.loader import render_to_string

from sandbox.display import mask_headers, mask_secret, safe_text
from sandbox.suites import selectors
from sandbox.suites.models import SuiteRun

RESULT_FORMAT = "subscription-sandbox/suite-result@1"


def _masked(text: str, api_key: str) -> str:
    """Any copy of the key in text (an endpoint may echo it) is masked too."""
    text = safe_text(text)
    if api_key and len(api_key) >= 4:
        text = text.replace(api_key, mask_secret(api_key))
    return text


def _seconds(milliseconds: int | None) -> str:
    return f"{(milliseconds or 0) / 1000:.3f}"


def junit_xml(*, suite_run: SuiteRun) -> str:
    """One testsuite, one testcase per step; a failed expectation is a failure,
    a step that got no response at all an error, each with its reason."""
    steps = suite_run.results
    failures = [s for s in steps if not s["passed"] and s["status"] is not None]
    errors = [s for s in steps if not s["passed"] and s["status"] is None]
    suites = ET.Element("testsuites", name="Subscription Sandbox")
    testsuite = ET.SubElement(
        suites,
        "testsuite",
        name=suite_run.suite_name,
        tests=str(len(steps)),
        failures=str(len(failures)),
        errors=str(len(errors)),
        skipped="0",
        time=_seconds(suite_run.duration_ms),
        timestamp=suite_run.created_at.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    properties = ET.SubElement(testsuite, "properties")
    for name, value in (
        ("target", suite_run.target_name),
        ("endpoint", suite_run.endpoint_url),
        ("verdict", suite_run.verdict),
    ):
        ET.SubElement(properties, "property", name=name, value=safe_text(value))
    classname = f"suite.{suite_run.suite_name}"
    for step in steps:
        case = ET.SubElement(
            testsuite,
            "testcase",
            name=f"{step['number']}. {step['label']}",
            classname=classname,
            time=_seconds(step["latency_ms"]),
        )
        if not step["passed"]:
            tag = "failure" if step["status"] is not None else "error"
            detail = ET.SubElement(
                case, tag, message=safe_text(step["failure"]), type="expectation"
            )
            detail.text = safe_text(
                "\n".join(
                    [
                        f"expected: {step['expected']}",
                        f"state: {step['state']}, outcome: {step['outcome']}, "
                        f"status: {step['status']}, attempts: {step['attempts']}",
                        f"reason: {step['reason']}",
                        f"messageId: {step['message_id']}",
                    ]
                )
            )
        if step["changes"]:
            out = ET.SubElement(case, "system-out")
            out.text = safe_text("\n".join(step["changes"]))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def result_document(*, suite_run: SuiteRun) -> dict:
    return {
        "format": RESULT_FORMAT,
        "suite": suite_run.suite_name,
        "source": suite_run.source,
        "target": {"name": suite_run.target_name, "endpoint": suite_run.endpoint_url},
        "started_at": suite_run.created_at.isoformat(),
        "duration_ms": suite_run.duration_ms,
        "options": suite_run.options,
        "passed": suite_run.passed,
        "verdict": suite_run.verdict,
        "compared_with_run": suite_run.compared_with_id,
        "run": suite_run.run_id,
        "steps": suite_run.results,
    }


def result_json(*, suite_run: SuiteRun, api_key: str = "") -> str:
    text = json.dumps(
        result_document(suite_run=suite_run), indent=2, ensure_ascii=False
    )
    return _masked(text, api_key) + "\n"


def _exchange(attempt, api_key: str) -> dict:
    return {
        "number": attempt.number,
        "request_line": f"{attempt.request_method} {attempt.request_url}",
        "request_headers": mask_headers(attempt.request_headers),
        "request_body": _masked(_pretty(attempt.request_body), api_key),
        "status": attempt.response_status,
        "response_headers": [
            (name, _masked(value, api_key)) for name, value in attempt.response_headers
        ],
        "response_body": _masked(_pretty(attempt.response_body), api_key),
        "error": attempt.error_message or attempt.get_error_kind_display(),
        "outcome": attempt.outcome,
        "reason": attempt.reason,
        "latency_ms": attempt.latency_ms,
    }


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return text


def html_report(*, suite_run: SuiteRun, api_key: str = "") -> str:
    deliveries = selectors.suite_run_deliveries(suite_run=suite_run)
    steps = []
    for step in suite_run.results:
        delivery = deliveries.get(step["delivery_id"])
        attempts = delivery.timeline if delivery is not None else []
        steps.append(
            {**step, "attempts_made": [_exchange(a, api_key) for a in attempts]}
        )
    html = render_to_string(
        "suites/suiterun_report.html", {"suite_run": suite_run, "steps": steps}
    )
    return _masked(html, api_key)
