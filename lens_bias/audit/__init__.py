"""The bias audit: the field's benchmarks and studies as measures, run with or without interventions."""
