"""The PyTorch Whisper decoder: one cached step at a time equals one full causal pass."""

import pytest
import torch

from pipeline.models.whisper_decoder import SelfAttentionCache, WhisperDecoder


def test_cached_steps_equal_the_full_pass() -> None:
    torch.manual_seed(0)
    decoder = WhisperDecoder(vocab_size=50, d_model=32, num_heads=4, num_layers=2, max_length=16)
    torch.nn.init.normal_(decoder.positions)
    cross = decoder.cross_kv(torch.randn(1, 20, 32))
    tokens = torch.randint(0, 50, (1, 9))
    full = decoder(tokens, cross)  # (1, 9, 32)

    cache = SelfAttentionCache(len(decoder.layers))
    steps = [decoder(tokens[:, :4], cross, cache)]  # the prompt in one call
    steps += [decoder(tokens[:, i : i + 1], cross, cache) for i in range(4, 9)]
    assert cache.length == 9
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)


def test_filled_cache_takes_one_token_per_call() -> None:
    decoder = WhisperDecoder(vocab_size=50, d_model=32, num_heads=4, num_layers=1, max_length=16)
    cross = decoder.cross_kv(torch.randn(1, 5, 32))
    cache = SelfAttentionCache(1)
    decoder(torch.tensor([[1, 2]]), cross, cache)
    with pytest.raises(ValueError, match="one token per call"):
        decoder(torch.tensor([[3, 4]]), cross, cache)


def test_rows_sharing_a_memory_row_get_what_a_copy_of_it_gives() -> None:
    """``memory_rows``: the fallback's samples of one segment read its keys once; each row's
    states equal those it gets with its own copy of the memory."""
    torch.manual_seed(0)
    decoder = WhisperDecoder(vocab_size=50, d_model=32, num_heads=4, num_layers=2, max_length=16)
    memory = torch.randn(2, 20, 32)
    memory_rows = [1, 0, 1, 1]
    tokens = torch.randint(0, 50, (4, 3))
    shared = decoder(tokens, decoder.cross_kv(memory), memory_rows=memory_rows)
    copied = decoder(tokens, decoder.cross_kv(memory[memory_rows]))
    torch.testing.assert_close(shared, copied, rtol=1e-5, atol=1e-5)
