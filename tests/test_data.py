"""Dataset loading from the shipped files into a writable cache, and its errors."""

import pytest
from torch_geometric.datasets import TUDataset

from a2q.common.errors import A2QError
from a2q.sw.data import DATASETS, check_name, load_dataset


def test_names_are_case_insensitive_and_unknown_ones_list_the_valid():
    assert check_name("cora") == "Cora"
    with pytest.raises(A2QError) as e:
        check_name("Kora")
    for name in DATASETS:
        assert name in str(e.value)


def test_copies_raw_files_into_the_cache(tmp_path):
    gd = load_dataset("MUTAG", root=tmp_path)
    assert (tmp_path / "TUDataset" / "MUTAG" / "raw").is_dir()
    assert (tmp_path / "TUDataset" / "MUTAG" / "processed").is_dir()
    assert len(gd.dataset) == 188 and gd.num_classes == 2 and not gd.node_level


def test_featureless_dataset_gets_degree_one_hot(tmp_path):
    gd = load_dataset("IMDB-BINARY", root=tmp_path)
    g = gd.dataset[0]
    assert g.x.shape[1] == gd.num_features
    assert (g.x.sum(1) == 1).all()


def test_missing_dataset_names_paths_and_what_was_found(tmp_path, monkeypatch):
    def no_network(self):
        raise OSError("network unreachable")

    monkeypatch.setattr(TUDataset, "download", no_network)
    source = tmp_path / "shipped"
    (source / "TUDataset" / "MUTAG" / "raw").mkdir(parents=True)
    (source / "TUDataset" / "MUTAG" / "raw" / "MUTAG_A.txt").write_text("1, 2\n")
    with pytest.raises(A2QError) as e:
        load_dataset("NCI1", root=tmp_path / "cache", source=source)
    msg = str(e.value)
    assert "NCI1" in msg and str(tmp_path / "cache") in msg and str(source) in msg
    assert "datasets found: MUTAG" in msg and "\n" not in msg
