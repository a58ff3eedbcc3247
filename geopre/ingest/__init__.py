"""Pipeline stage: download, subsample, static-frame filter, triplets, manifests."""
