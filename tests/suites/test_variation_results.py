"""Reading a variant's answer against its step's (pure: no database)."""

from sandbox.suites import results
from sandbox.suites.fileformat import Expectation


def _step(**actual) -> results.StepResult:
    return results.step_result(
        number=1,
        label="Sign up",
        event_type="identify",
        message_id="m-1",
        delivery_id=1,
        expect=None,
        actual=results.Actual(**actual),
    )


def _variant(original: results.StepResult, **actual) -> dict:
    return results.variant_result(
        name="snake-case-traits",
        delivery_id=2,
        message_id="m-2",
        original=original,
        actual=results.Actual(**actual),
    )


def test_a_variant_answered_otherwise_says_how_in_one_line():
    step = _step(state="delivered", outcome="green", status=200)
    variant = _variant(
        step, state="failed", outcome="red", status=400, message="Missing email"
    )
    assert variant["differences"] == [
        "answered 400 instead of 200: Missing email",
        "red instead of green",
    ]
    assert variant["description"].startswith("Reserved traits in snake_case")
    assert results.variants_differ([variant]) == [
        "snake-case-traits: answered 400 instead of 200: Missing email; "
        "red instead of green"
    ]


def test_a_variant_handled_the_same_has_no_differences():
    step = _step(state="delivered", outcome="green", status=200)
    variant = _variant(step, state="delivered", outcome="green", status=200)
    assert variant["differences"] == []
    assert results.variants_differ([variant]) == []


def test_an_open_variant_or_step_is_not_compared_yet():
    step = _step(state="delivered", outcome="green", status=200)
    assert _variant(step, state="pending")["differences"] == [results.VARIANT_OPEN]
    still_open = _step(state="retrying")
    variant = _variant(still_open, state="delivered", outcome="green", status=200)
    assert variant["differences"] == []


def test_variants_never_change_whether_a_step_passed():
    step = results.step_result(
        number=1,
        label="Sign up",
        event_type="identify",
        message_id="m-1",
        delivery_id=1,
        expect=Expectation(statuses=(200,)),
        actual=results.Actual(state="delivered", outcome="green", status=200),
    )
    step.variants = [_variant(step, state="failed", outcome="red", status=400)]
    assert step.passed
    assert results.verdict([step], review=True) == results.READY


def test_the_variations_summary():
    same = {"number": 1, "variants": [{"differences": []}, {"differences": []}]}
    differs = {"number": 2, "variants": [{"differences": ["x"]}, {"differences": []}]}
    none = {"number": 3, "variants": []}
    assert results.variations_summary([none]) == ""
    assert results.variations_summary([same, none]) == (
        "every variant of 1 step handled like its step (2 sent)"
    )
    assert results.variations_summary([same, differs, none]) == (
        "1 of 4 variants handled differently from their step (in 1 step)"
    )
