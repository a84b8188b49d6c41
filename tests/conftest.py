import warnings

import pytest

warnings.filterwarnings("ignore", message=".*[Ss]parse.*")


@pytest.fixture(autouse=True)
def _quiet_sparse_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        yield


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A one-epoch A²Q Cora GCN run's checkpoint, loaded (``weights_only``): the base the
    checkpoint readers' tests corrupt."""
    import torch

    from a2q.sw.config import default_config
    from a2q.sw.run_folder import write_run
    from a2q.sw.train import train

    run = write_run(train(default_config("Cora", "gcn", "a2q", epochs=1), progress=False),
                    tmp_path_factory.mktemp("trained") / "run")
    return torch.load(run / "checkpoint.pt", weights_only=True)


@pytest.fixture(scope="session")
def build_root(tmp_path_factory):
    """The folder of the simulator models the RTL tests build: the parent of an xdist
    worker's base temp, shared by all workers of the run, so each model is built once."""
    root = tmp_path_factory.getbasetemp().parent / "rtl-models"
    root.mkdir(exist_ok=True)
    return root
