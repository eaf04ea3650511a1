"""The rules `ivr check` runs, by family; ivr.flowtools.checks puts them together."""
