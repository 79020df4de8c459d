"""`make bench`: performance and cost measurements of the payment workflow (see BENCHMARKS.md). Not tests."""
