"""Pipeline stage: WebDataset shard writing (``write``), the streaming loader (``read``, built from
``shardset``, ``stages`` and ``workers``) and the augmentation it applies (``augment``).

The loader's API is importable from here; the imports are lazy so that ``geopre --help`` and the
writer do not load torch.
"""

_EXPORTS = {
    "LoaderConfig": "geopre.shards.read", "ShardLoader": "geopre.shards.read", "train_loader": "geopre.shards.read",
    "val_loader": "geopre.shards.read", "resolve_shards": "geopre.shards.shardset",
    "AugmentConfig": "geopre.shards.augment", "prepare_batch": "geopre.shards.augment",
    "WriteConfig": "geopre.shards.write", "write_shards": "geopre.shards.write",
    "SourceSpec": "geopre.shards.sources",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'geopre.shards' has no attribute {name!r}")
