"""Dataset loading: PyG's own ``Planetoid`` and ``TUDataset`` classes over a writable cache.

The machines this project runs on have no network beyond package registries, so the raw
files ship in ``../shared/datasets`` (read-only). :func:`load_dataset` copies a dataset's
``raw/`` folder from that source into a writable cache (PyG writes ``processed/`` next to
``raw/``) and loads it with PyG's class. Where neither the cache nor the source holds the
dataset, PyG's own download runs (it works on a machine with a network); if that fails the
error names the paths searched and the datasets found there.

Locations:
- cache: ``--data-root`` or ``$A2Q_DATA_ROOT``, else ``~/.cache/a2q/datasets``;
- source of shipped raw files: ``$A2Q_DATASETS_SOURCE``, else the nearest ``shared/datasets``
  above the checkout (normally ``<checkout>/../shared/datasets``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from a2q.common.choices import DATASETS, PLANETOID
from a2q.common.errors import A2QError
from a2q.common.files import file_lock

#: TU datasets without node features: nodes get a one-hot of their degree (as GIN's paper does)
FEATURELESS = ("IMDB-BINARY", "REDDIT-BINARY")


def _kind_folder(name: str) -> str:
    return "planetoid" if name in PLANETOID else "TUDataset"


def default_cache() -> Path:
    env = os.environ.get("A2Q_DATA_ROOT")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "a2q" / "datasets"


def default_source() -> Path:
    """``$A2Q_DATASETS_SOURCE``, else the first ``shared/datasets`` found walking up from the
    checkout, then from the working directory (a checkout normally sits beside ``shared/``)."""
    env = os.environ.get("A2Q_DATASETS_SOURCE")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent
    for base in (checkout, Path.cwd().resolve()):
        for d in (base, *base.parents):
            if (d / "shared" / "datasets").is_dir():
                return d / "shared" / "datasets"
    return checkout.parent / "shared" / "datasets"


def check_name(name: str) -> str:
    """Return the canonical spelling of a dataset name, or raise listing the valid ones."""
    for known in DATASETS:
        if known.lower() == name.lower():
            return known
    raise A2QError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")


def is_node_level(name: str) -> bool:
    return check_name(name) in PLANETOID


def _found(folder: Path) -> list[str]:
    found = []
    for kind in ("planetoid", "TUDataset"):
        d = folder / kind
        if d.is_dir():
            found += sorted(p.name for p in d.iterdir()
                            if (p / "raw").is_dir() and any((p / "raw").iterdir()))
    return found


def _seed_cache(name: str, cache: Path, source: Path) -> None:
    """Copy ``raw/`` from the shipped source into the cache if the cache lacks it."""
    kind = _kind_folder(name)
    dst = cache / kind / name / "raw"
    if dst.is_dir() and any(dst.iterdir()):
        return
    src = source / kind / name / "raw"
    if not src.is_dir():
        return
    tmp = dst.with_name("raw.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    tmp.rename(dst)


@dataclass
class GraphDataset:
    """What a training loop needs: the PyG dataset and its shape."""

    name: str
    dataset: object  # torch_geometric.data.Dataset (InMemoryDataset)
    num_features: int
    num_classes: int
    node_level: bool


def _degree_one_hot(dataset) -> int:
    """Attach a one-hot of each node's degree as features (for datasets without any)."""
    from torch_geometric.transforms import OneHotDegree
    from torch_geometric.utils import degree

    max_deg = 0
    for g in dataset:
        if g.num_edges:
            max_deg = max(max_deg, int(degree(g.edge_index[0], g.num_nodes).max()))
    dataset.transform = OneHotDegree(max_deg)
    return max_deg + 1


def load_dataset(name: str, root: str | os.PathLike | None = None,
                 source: str | os.PathLike | None = None) -> GraphDataset:
    """Load ``name`` with PyG's class from the cache ``root`` (see module docstring)."""
    name = check_name(name)
    cache = Path(root) if root is not None else default_cache()
    src = Path(source) if source is not None else default_source()
    kind = _kind_folder(name)
    try:
        with file_lock(cache / f".{name}.lock"):
            _seed_cache(name, cache, src)
            if name in PLANETOID:
                from torch_geometric.datasets import Planetoid

                ds = Planetoid(root=str(cache / kind), name=name)
            else:
                from torch_geometric.datasets import TUDataset

                ds = TUDataset(root=str(cache / kind), name=name)
    except A2QError:
        raise
    except Exception as exc:  # PyG's download or parse failed
        found = sorted(set(_found(cache)) | set(_found(src)))
        raise A2QError(
            f"dataset {name} not found: looked in {cache / kind / name / 'raw'} and "
            f"{src / kind / name / 'raw'}, and PyG's download failed ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); datasets found: "
            f"{', '.join(found) if found else 'none'} (set A2Q_DATASETS_SOURCE to the folder "
            "holding planetoid/ and TUDataset/)") from None
    if name in PLANETOID:
        return GraphDataset(name, ds, ds.num_features, ds.num_classes, True)
    num_features = ds.num_features
    if name in FEATURELESS or num_features == 0:
        num_features = _degree_one_hot(ds)
    return GraphDataset(name, ds, num_features, ds.num_classes, False)

