"""Pipeline stage: WebDataset shard writing, reading and splitting."""
