"""The names the CLI accepts (no heavy imports, so that ``a2q --help`` and ``a2q golden`` start
fast)."""

#: node-level datasets (one graph, Planetoid split)
PLANETOID = ("Cora", "CiteSeer", "PubMed")
#: graph-level datasets (TU collection)
TU = ("MUTAG", "PROTEINS", "ENZYMES", "NCI1", "IMDB-BINARY", "REDDIT-BINARY")
DATASETS = PLANETOID + TU
MODELS = ("gcn", "gin", "gat")
METHODS = ("fp32", "uniform", "dq", "a2q")
#: the models the export, the golden model and the layer engine take
ENGINE_MODELS = ("gcn", "gin")
#: the engine's lanes unless a command is told otherwise
DEFAULT_LANES = 16
#: a layer's order: "combine-first" (X W, then the sum over the neighbours: GCN, GIN-0) or
#: "aggregate-first" (the sum, then W: GIN as its paper and A²Q's train it)
ORDERS = ("combine-first", "aggregate-first")
