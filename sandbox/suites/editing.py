"""Edits to a stored suite's file document: steps moved, replaced, deleted or
added, the suite renamed. Each edit gives a new document that the file format
has read in full, or raises SuiteFileError listing every problem with its JSON
path, so a stored suite is always a valid file (pure: no Django)."""

import copy

from sandbox import spec
from sandbox.suites import fileformat

NO_SUCH_STEP = "steps[{index}]: there is no step {number}; the suite has {count}"
CANNOT_MOVE = "steps[{index}]: step {number} is already the {end} step"
LAST_STEP = (
    "steps[0]: a suite needs at least one step; delete the suite to remove them all"
)
DOCUMENT_PROBLEM = "{path}: {problem}"
IN_A_FILE = " (in the suite file, where a step's event starts 3 levels down)"


def checked(document: object) -> dict:
    """The document as the file format reads and writes it back."""
    problem = spec.value_problem(document)
    if problem is not None:
        raise fileformat.SuiteFileError([_where(document, problem)])
    return fileformat.suite_document(fileformat.suite_from_document(document))


def _where(document: object, problem: str) -> str:
    """The problem at the step that has it: an event may be fine alone and too
    deep as part of the file."""
    steps = document.get("steps") if isinstance(document, dict) else None
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        # Nested as in the file: the document, its steps, the step.
        in_file = spec.value_problem({"steps": [step]})
        if in_file is not None:
            alone = spec.value_problem(step)
            return DOCUMENT_PROBLEM.format(
                path=f"steps[{index}]",
                problem=in_file if alone is not None else in_file + IN_A_FILE,
            )
    return DOCUMENT_PROBLEM.format(path="(the document)", problem=problem)


def _steps(document: dict) -> list:
    steps = document.get("steps")
    return steps if isinstance(steps, list) else []


def _index(document: dict, number: int) -> int:
    count = len(_steps(document))
    if not 1 <= number <= count:
        raise fileformat.SuiteFileError(
            [NO_SUCH_STEP.format(index=number - 1, number=number, count=count)]
        )
    return number - 1


def step_moved(document: dict, *, number: int, offset: int) -> dict:
    """Step `number` (from 1) moved `offset` places: -1 is up, 1 is down.
    A {{messageId:stepN}} that would then name a later step is refused."""
    index = _index(document, number)
    to = index + offset
    if not 0 <= to < len(_steps(document)):
        end = "first" if offset < 0 else "last"
        raise fileformat.SuiteFileError(
            [CANNOT_MOVE.format(index=index, number=number, end=end)]
        )
    edited = copy.deepcopy(document)
    steps = edited["steps"]
    steps.insert(to, steps.pop(index))
    return checked(edited)


def step_deleted(document: dict, *, number: int) -> dict:
    index = _index(document, number)
    if len(_steps(document)) == 1:
        raise fileformat.SuiteFileError([LAST_STEP])
    edited = copy.deepcopy(document)
    del edited["steps"][index]
    return checked(edited)


def step_replaced(document: dict, *, number: int, step: dict) -> dict:
    index = _index(document, number)
    edited = copy.deepcopy(document)
    edited["steps"][index] = step
    return checked(edited)


def step_added(document: dict, *, step: dict) -> dict:
    edited = copy.deepcopy(document)
    edited["steps"] = [*_steps(document), step]
    return checked(edited)


def renamed(document: dict, *, name: str) -> dict:
    edited = copy.deepcopy(document)
    edited["name"] = name
    return checked(edited)


def new_document(*, name: str, step: dict) -> dict:
    return checked({"format": fileformat.FORMAT, "name": name, "steps": [step]})


# Fields Segment sets on every delivery: a step that kept them would send stale
# ones (receivedAt) or, for the messageId, an event Segment drops as a repeat.
_SET_BY_SEGMENT = ("messageId", "receivedAt")


def event_step(event: dict) -> dict:
    """A step that sends this event, fresh on every run: its messageId left
    out (each run makes one), expecting it delivered (green or yellow)."""
    sent = {key: value for key, value in event.items() if key not in _SET_BY_SEGMENT}
    return {
        "event": sent,
        "expect": {"outcome": list(fileformat.DEFAULT_OUTCOMES)},
    }
