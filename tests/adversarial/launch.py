"""``python -m tests.adversarial.launch run --in ...``: the real ``live-code`` CLI (``cli.main``) with
test-only overrides of the harness's settings, for deadlines no environment variable sets
(``fetch_deadline``, ``install_timeout``). The overrides come as JSON in ``LIVE_CODE_TEST_SETTINGS``
(removed from the environment before the harness reads it); without it this is ``live-code`` itself.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from live_code import cli
from live_code.run import pipeline

SETTINGS_VAR = "LIVE_CODE_TEST_SETTINGS"


def main() -> int:
    overrides: dict[str, Any] = json.loads(os.environ.pop(SETTINGS_VAR, "") or "{}")
    original = pipeline.Settings.from_environ.__func__  # type: ignore[attr-defined]  # a classmethod's function, to wrap it

    def from_environ(cls: type, environ: Any = None, **kw: Any) -> pipeline.Settings:
        return original(cls, environ, **{**kw, **overrides})

    pipeline.Settings.from_environ = classmethod(from_environ)  # type: ignore[method-assign,assignment]  # the settings override, patched in for this process
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
