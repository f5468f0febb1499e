"""`tailbench submit`: a run folder checked against this checkout's registries, recipes, metrics and code, then copied into the results tree."""
