"""geopre: geometric pretraining for monocular depth estimation, as a data pipeline.

Stages: ``ingest`` (video -> moving frame triplets), ``shards`` (WebDataset tars),
``model``/``train`` (geometric pretraining, depth fine-tuning), ``data`` (dataset readers)
and ``synth`` (the embedded synthetic driving world used offline and in tests).
"""

__version__ = "0.1.0"
