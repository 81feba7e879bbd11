from __future__ import annotations

import pytest
from formats_support import dev_evidence


@pytest.fixture(scope="session")
def evidence() -> dict[str, list[str]]:
    return dev_evidence()
