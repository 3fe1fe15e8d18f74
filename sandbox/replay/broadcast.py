"""A replay's live figures: the HTML each push of its run's progress carries."""

from django.template.loader import render_to_string

from sandbox.replay import selectors

# The partial's name, the element's DOM id and what a push replaces.
REPLAY_PROGRESS = "replay-progress"
PROGRESS_TEMPLATE = f"replay/replay_detail.html#{REPLAY_PROGRESS}"


def replay_progress_html(run_id: int) -> str:
    """The replay's figures as its page renders them; "" for a run that is not a
    replay's."""
    replay = selectors.replay_of_run(run_id=run_id)
    if replay is None:
        return ""
    context = {"replay": replay, "progress": selectors.replay_progress(replay=replay)}
    return render_to_string(PROGRESS_TEMPLATE, context).strip()
