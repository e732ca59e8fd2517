"""fraudblock: coordinates blocking of fraudsters' numbers and handsets across operators."""
