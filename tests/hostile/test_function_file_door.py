"""The hostile JavaScript corpus through the terminal's door for functions:
`sendevent --function FILE.js`. Each file is refused before anything is sent
(exit 2, with the reason) or runs to an outcome (exit 0 or 1); none ends in a
traceback, and nothing is stored for a refused one."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sandbox.delivery.models import Delivery
from tests.hostile.test_function_doors import JAVASCRIPT

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("case", JAVASCRIPT, ids=[case.name for case in JAVASCRIPT])
def test_sendevent_function_survives_hostile_sources(case, tmp_path):
    path = tmp_path / "function.js"
    path.write_text(case.text, encoding="utf-8")
    out, err = StringIO(), StringIO()
    try:
        call_command(
            "sendevent", "track", "--function", str(path), stdout=out, stderr=err
        )
        code = 0
    except CommandError as error:
        code, said = error.returncode, str(error)
    if case.refused:
        assert code == 2
        assert case.refused in said
        assert not Delivery.objects.exists()
    else:
        assert code in (0, 1), out.getvalue()
        delivery = Delivery.objects.get()
        assert delivery.attempts.count() == 1
        assert "Traceback" not in out.getvalue() + err.getvalue()
