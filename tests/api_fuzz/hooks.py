"""Schemathesis checks for Siyu's API fuzz run (.ci/fuzz-api).

A 500 is a defect: the handler met input it did not expect. A 502 or 503 is an answer (a
marketplace or WeCom that cannot be reached from CI, a payment provider not set up) and is
not counted.
"""

import schemathesis


@schemathesis.check
def no_internal_error(ctx, response, case):
    if response.status_code == 500:
        raise AssertionError(
            f"500 from {case.method} {case.formatted_path}: {response.text[:400]}"
        )
