"""Flow tools: the checks, schema, graph, script and their commands."""
