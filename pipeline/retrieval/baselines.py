"""The zero-shot methods ``run embed --model`` takes by name instead of a training run.

Apart from ``embed``, so the CLI can list them in its help without importing torch."""

BASELINES = ("whisper-avg", "transcript-text")
