"""Generated songs with ground truth, for the example, the benchmarks and the tests.

Tooling kept apart from the pipeline: the runner never imports it. Every generated track
carries its truth (kind, voice level, voiced spans) in the catalog it writes, because a vocal
detector can only be scored against data that says where the voice really is.
"""
