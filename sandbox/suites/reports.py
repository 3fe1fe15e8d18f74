"""A finished suite run as JUnit XML, as a JSON result, and as an HTML report:
one self-contained file (inline CSS, no scripts) or the same report as a page
of the app; every request and response, API keys masked."""

import json
import xml.etree.ElementTree as ET

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from sandbox.display import mask_headers, mask_secret_in, safe_text
from sandbox.functions import sender as function_sender
from sandbox.suites import results, selectors
from sandbox.suites.models import SuiteRun

RESULT_FORMAT = "subscription-sandbox/suite-result@1"
# The report's own stylesheet: the page links it, the downloaded file inlines it.
REPORT_CSS = settings.BASE_DIR / "static" / "sandbox" / "report.css"


def masked(text: str, api_key: str) -> str:
    """Any copy of the key in text (an endpoint may echo it, in any form) is
    masked too."""
    return mask_secret_in(safe_text(text), api_key)


def _seconds(milliseconds: int | None) -> str:
    return f"{(milliseconds or 0) / 1000:.3f}"


def _answered(step: dict) -> bool:
    """Whether the step got an answer: an HTTP status, or a function that ran to
    an outcome of its own (it returned or threw), not a timeout or a crash."""
    if step["status"] is not None:
        return True
    # The delivery's reason may lead with its state ("not retried: Bad Request…").
    reason = step.get("reason") or ""
    return any(
        reason.startswith(f"{category}:") or f": {category}:" in reason
        for category in function_sender.ANSWERED
    )


def junit_xml(*, suite_run: SuiteRun) -> str:
    """One testsuite, one testcase per step; a failed expectation is a failure,
    a step that got no response at all an error, each with its reason."""
    steps = suite_run.results
    failures = [s for s in steps if not s["passed"] and _answered(s)]
    errors = [s for s in steps if not s["passed"] and not _answered(s)]
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
        *(
            [("variations", results.variations_summary(steps))]
            if suite_run.options.get("variations")
            else []
        ),
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
            tag = "failure" if _answered(step) else "error"
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
        # Variants never fail a testcase: what differed is told beside it.
        told = [
            *step["changes"],
            *([step["duplicate"]["sentence"]] if step.get("duplicate") else []),
            *(
                f"variant {line}"
                for line in results.variants_differ(step.get("variants", []))
            ),
        ]
        if told:
            out = ET.SubElement(case, "system-out")
            out.text = safe_text("\n".join(told))
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
        "variations": _variations(suite_run),
        "steps": suite_run.results,
    }


def _variations(suite_run: SuiteRun) -> dict | None:
    """How many variants went out and how many the endpoint handled differently
    from their step; None for a run without variations."""
    if not suite_run.options.get("variations"):
        return None
    variants = [v for step in suite_run.results for v in step.get("variants", [])]
    return {
        "sent": len(variants),
        "handled_differently": sum(1 for v in variants if v["differences"]),
        "summary": results.variations_summary(suite_run.results),
    }


def result_json(*, suite_run: SuiteRun, api_key: str = "") -> str:
    text = json.dumps(
        result_document(suite_run=suite_run), indent=2, ensure_ascii=False
    )
    return masked(text, api_key) + "\n"


def _exchange(attempt, api_key: str) -> dict:
    return {
        "number": attempt.number,
        "request_line": f"{attempt.request_method} {attempt.request_url}",
        # A function's run has no HTTP response: its Callback Return stands in.
        "function_call": attempt.function_call,
        "request_headers": mask_headers(attempt.request_headers),
        "request_body": masked(_pretty(attempt.request_body), api_key),
        "status": attempt.response_status,
        "response_headers": [
            (name, masked(value, api_key)) for name, value in attempt.response_headers
        ],
        "response_body": mask_secret_in(
            safe_text(_pretty(attempt.response_body)),
            api_key,
            cut=attempt.response_truncated,
        ),
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


def _variant_shown(variant: dict, deliveries: dict, api_key: str) -> dict:
    """A variant as the report shows it: the exchange it had only when the
    endpoint handled it differently (the rest read the same as the step)."""
    delivery = deliveries.get(variant["delivery_id"])
    attempts = delivery.timeline if delivery and variant.get("differences") else []
    return {
        **variant,
        "attempts_made": [_exchange(attempt, api_key) for attempt in attempts[-1:]],
    }


def step_shown(step: dict) -> dict:
    """A step's result with what its table row says about its variants."""
    variants = step.get("variants", [])
    return {
        **step,
        "variants": variants,
        "variants_differ": results.variants_differ(variants),
        "variants_open": any(v["state"] in results.OPEN_STATES for v in variants),
    }


def report_context(*, suite_run: SuiteRun, api_key: str = "") -> dict:
    """What the report shows: every step with its attempts, variants that were
    handled differently with theirs."""
    deliveries = selectors.suite_run_deliveries(suite_run=suite_run)
    steps = []
    for step in suite_run.results:
        delivery = deliveries.get(step["delivery_id"])
        attempts = delivery.timeline if delivery is not None else []
        shown = step_shown(step)
        shown["attempts_made"] = [_exchange(a, api_key) for a in attempts]
        shown["variants"] = [
            _variant_shown(variant, deliveries, api_key)
            for variant in shown["variants"]
        ]
        steps.append(shown)
    return {
        "suite_run": suite_run,
        "steps": steps,
        "variations_summary": results.variations_summary(suite_run.results),
        "variants_differ": any(step["variants_differ"] for step in steps),
    }


def html_report(*, suite_run: SuiteRun, api_key: str = "") -> str:
    """The report as one self-contained file: inline CSS, no scripts."""
    context = report_context(suite_run=suite_run, api_key=api_key)
    context["report_css"] = mark_safe(REPORT_CSS.read_text(encoding="utf-8"))
    html = render_to_string("suites/suiterun_report.html", context)
    return masked(html, api_key)


def html_report_page(
    *, suite_run: SuiteRun, api_key: str = "", request: HttpRequest
) -> str:
    """The same report inside the app's layout (printable without the nav)."""
    context = report_context(suite_run=suite_run, api_key=api_key)
    html = render_to_string("suites/suiterun_detail.html", context, request=request)
    return masked(html, api_key)
