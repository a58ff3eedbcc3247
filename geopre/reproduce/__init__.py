"""`geopre reproduce`: the paper's claims measured end to end on the embedded world (see study.py)."""
