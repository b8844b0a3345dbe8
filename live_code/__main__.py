from __future__ import annotations

from live_code.cli import main

raise SystemExit(main())
