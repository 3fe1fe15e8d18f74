"""A running suite's step table, live: what the page shows as results arrive,
and the HTML each push of the run's progress carries with it."""

from django.template.loader import render_to_string

from sandbox.display import mask_secret_everywhere
from sandbox.suites import reports, results, selectors
from sandbox.suites.models import SuiteRun

# The partial's name, the table's DOM id and what a push replaces.
SUITE_RUN_STEPS = "suite-run-steps"
STEPS_TEMPLATE = f"suites/suiterun_running.html#{SUITE_RUN_STEPS}"


def running_context(*, suite_run: SuiteRun) -> dict:
    """Each step as stored now (open ones say so), which step is being sent,
    and how many have their final outcome; an echoed API key masked."""
    api_key = selectors.suite_run_api_key(suite_run=suite_run)
    steps = []
    for result in selectors.suite_run_step_results(suite_run=suite_run):
        shown = reports.step_shown(result.as_dict())
        shown["open"] = result.state in results.OPEN_STATES
        steps.append(mask_secret_everywhere(shown, api_key))
    open_steps = [step for step in steps if step["open"]]
    # Steps go out in the order of their deliveries (shuffled, not by number).
    current = min(open_steps, key=lambda step: step["delivery_id"] or 0, default=None)
    return {
        "suite_run": suite_run,
        "steps": steps,
        "steps_total": len(steps),
        "steps_done": len(steps) - len(open_steps),
        "current": current,
        "live": True,
    }


def run_steps_html(run_id: int) -> str:
    """The step table for a run's progress push; "" when no suite ran it."""
    suite_run = selectors.suite_run_of_run(run_id=run_id)
    if suite_run is None:
        return ""
    context = running_context(suite_run=suite_run)
    return render_to_string(STEPS_TEMPLATE, context).strip()
