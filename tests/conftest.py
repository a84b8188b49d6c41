import warnings

import pytest

warnings.filterwarnings("ignore", message=".*[Ss]parse.*")


@pytest.fixture(autouse=True)
def _quiet_sparse_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        yield
