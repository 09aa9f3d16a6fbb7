"""The Whisper text decoder in PyTorch, built from a CTranslate2 model file.

CTranslate2 generates the tokens but hides the decoder's hidden states. Given the generated
tokens, one teacher-forced, batched pass of this decoder yields the final-layer state from
which each token was predicted (the WEALY features), far cheaper than one pass per token.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pipeline.models.ct2_weights import ModelFileError, read_model_variables

_LAYER_NORM_EPS = 1e-5


def _dequantized(variables: dict[str, np.ndarray], name: str) -> torch.Tensor:
    """A weight as float32, undoing CTranslate2's int8/int16 per-row quantisation."""
    value = variables[name]
    if value.dtype in (np.int8, np.int16):
        scale = variables[name + "_scale"].astype(np.float32)
        return torch.from_numpy(value.astype(np.float32) / scale.reshape(-1, 1))
    return torch.from_numpy(value.astype(np.float32))


class _Attention(nn.Module):
    def __init__(self, d_model: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.layer_norm = nn.LayerNorm(d_model, eps=_LAYER_NORM_EPS)
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, d_model = x.shape
        return x.view(batch, length, self.num_heads, d_model // self.num_heads).transpose(1, 2)

    def cross_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the encoder output, computed once per segment."""
        keys, values = self.key_value(memory).chunk(2, dim=-1)
        return self._heads(keys), self._heads(values)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, d)
        cross: tuple[torch.Tensor, torch.Tensor] | None,  # cross_kv(memory); None: causal self
        past: list[torch.Tensor] | None = None,  # self-attention keys/values so far, updated
        groups: list[torch.Tensor] | None = None,  # per memory row, the rows of x reading it
    ) -> torch.Tensor:
        h = self.layer_norm(x)
        if cross is None:
            keys, values = (self._heads(t) for t in self.key_value(h).chunk(2, dim=-1))
            if past:
                keys, values = torch.cat([past[0], keys], 2), torch.cat([past[1], values], 2)
            if past is not None:
                past[:] = [keys, values]
            # A cached step is one new token, which may see every position: no mask needed.
            causal = keys.shape[2] == x.shape[1]
        else:
            (keys, values), causal = cross, False
        queries = self._heads(self.query(h))
        if groups is None:
            attended = F.scaled_dot_product_attention(queries, keys, values, is_causal=causal)
        else:
            attended = _grouped_attention(queries, keys, values, groups)
        batch, _, length, _ = attended.shape
        return x + self.out(attended.transpose(1, 2).reshape(batch, length, -1))


def _grouped_attention(
    queries: torch.Tensor,  # (B, H, T, dh)
    keys: torch.Tensor,  # (S, H, L, dh)
    values: torch.Tensor,
    groups: list[torch.Tensor],  # per memory row s, the query rows that read it
) -> torch.Tensor:
    """Cross-attention where several query rows read the same memory row (the samples of one
    segment at several temperatures): each memory row's keys are read once for all its query
    rows, which sit side by side on the query axis. Reading 1500 keys per row per step was
    most of a sampling step."""
    attended = torch.empty_like(queries)
    _, heads, length, width = queries.shape
    for s, rows in enumerate(groups):
        if not len(rows):
            continue
        side_by_side = queries[rows].transpose(0, 1).reshape(1, heads, len(rows) * length, width)
        out = F.scaled_dot_product_attention(side_by_side, keys[s : s + 1], values[s : s + 1])
        attended[rows] = out.reshape(heads, len(rows), length, width).transpose(0, 1)
    return attended


class SelfAttentionCache:
    """Per decoder layer, the self-attention keys/values of the tokens decoded so far, so that
    sampling one more token costs one position rather than the whole sequence again."""

    def __init__(self, num_layers: int) -> None:
        self.layers: list[list[torch.Tensor]] = [[] for _ in range(num_layers)]

    @property
    def length(self) -> int:
        return self.layers[0][0].shape[2] if self.layers[0] else 0


class _DecoderLayer(nn.Module):
    def __init__(self, d_model: int, num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attention = _Attention(d_model, num_heads)
        self.cross_attention = _Attention(d_model, num_heads)
        self.ffn_norm = nn.LayerNorm(d_model, eps=_LAYER_NORM_EPS)
        self.ffn_in = nn.Linear(d_model, ffn_dim)
        self.ffn_out = nn.Linear(ffn_dim, d_model)

    def forward(
        self,
        x: torch.Tensor,
        cross: tuple[torch.Tensor, torch.Tensor],
        past: list[torch.Tensor] | None = None,
        groups: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        x = self.self_attention(x, None, past)
        x = self.cross_attention(x, cross, groups=groups)
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))


class WhisperDecoder(nn.Module):
    """Pre-norm Whisper decoder; ``forward`` returns final-layer states (after the last norm)."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        num_heads: int,
        num_layers: int,
        max_length: int,
    ) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, d_model)
        self.register_buffer("positions", torch.zeros(max_length, d_model))
        ffn_dim = 4 * d_model
        self.layers = nn.ModuleList(
            _DecoderLayer(d_model, num_heads, ffn_dim) for _ in range(num_layers)
        )
        self.layer_norm = nn.LayerNorm(d_model, eps=_LAYER_NORM_EPS)

    @property
    def d_model(self) -> int:
        return self.embeddings.embedding_dim

    def cross_kv(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the cross-attention keys/values of (B, S, d) encoder output."""
        if memory.ndim != 3:
            raise ValueError(f"memory must be (B, S, d), got shape {tuple(memory.shape)}")
        memory = memory.to(self.embeddings.weight.dtype)
        return [layer.cross_attention.cross_kv(memory) for layer in self.layers]

    def forward(
        self,
        tokens: torch.Tensor,  # (B, T) int64
        cross: list[tuple[torch.Tensor, torch.Tensor]],  # cross_kv(memory)
        cache: SelfAttentionCache | None = None,
        memory_rows: list[int] | None = None,  # per row of tokens, its row of cross; None: its own
    ) -> torch.Tensor:  # (B, T, d)
        """States of ``tokens``; with a ``cache``, ``tokens`` continue the cached ones (one token
        per call once the cache holds any) and the cache grows by them. Rows that share a
        ``memory_rows`` entry share that row's cross-attention keys and values.

        Causal attention alone suffices for right-padded rows: no valid position sees padding.
        """
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be (B, T), got shape {tuple(tokens.shape)}")
        start = cache.length if cache is not None else 0
        if start and tokens.shape[1] != 1:
            raise ValueError("a filled cache takes one token per call")
        x = self.embeddings(tokens) + self.positions[start : start + tokens.shape[1]]
        pasts = cache.layers if cache is not None else [None] * len(self.layers)
        groups = None
        if memory_rows is not None:
            members = [
                [r for r, m in enumerate(memory_rows) if m == s] for s in range(len(cross[0][0]))
            ]
            groups = [torch.tensor(rows, dtype=torch.long, device=x.device) for rows in members]
        for layer, layer_cross, past in zip(self.layers, cross, pasts, strict=True):
            x = layer(x, layer_cross, past, groups)
        return self.layer_norm(x)

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """Token logits from final states; the output projection is tied to the embeddings."""
        return states @ self.embeddings.weight.T

    @classmethod
    def from_ct2_model(cls, model_file: Path) -> WhisperDecoder:
        """Build the decoder with the exact weights of a CTranslate2 Whisper ``model.bin``."""
        spec_name, v = read_model_variables(model_file)
        if spec_name != "WhisperSpec":
            raise ModelFileError(f"{model_file}: expected a WhisperSpec model, got {spec_name}")
        num_layers = sum(
            1 for k in v if k.startswith("decoder/layer_") and k.endswith("ffn/linear_0/bias")
        )
        vocab_size, d_model = v["decoder/embeddings/weight"].shape
        num_heads = int(v["decoder/num_heads"])
        max_length = v["decoder/position_encodings/encodings"].shape[0]
        model = cls(vocab_size, d_model, num_heads, num_layers, max_length)
        state = {
            "embeddings.weight": _dequantized(v, "decoder/embeddings/weight"),
            "positions": _dequantized(v, "decoder/position_encodings/encodings"),
            "layer_norm.weight": _dequantized(v, "decoder/layer_norm/gamma"),
            "layer_norm.bias": _dequantized(v, "decoder/layer_norm/beta"),
        }
        parts = {
            "self_attention": ("self_attention", ("linear_0", "linear_1")),
            "cross_attention": ("attention", ("linear_0", "linear_1", "linear_2")),
        }
        for i in range(num_layers):
            src = f"decoder/layer_{i}"
            dst = f"layers.{i}"
            for name, (ct2_name, linears) in parts.items():
                a = f"{src}/{ct2_name}"
                state[f"{dst}.{name}.layer_norm.weight"] = _dequantized(v, f"{a}/layer_norm/gamma")
                state[f"{dst}.{name}.layer_norm.bias"] = _dequantized(v, f"{a}/layer_norm/beta")
                if len(linears) == 2:  # fused query/key/value, then output
                    qkv_w = _dequantized(v, f"{a}/linear_0/weight")
                    qkv_b = _dequantized(v, f"{a}/linear_0/bias")
                    state[f"{dst}.{name}.query.weight"] = qkv_w[:d_model]
                    state[f"{dst}.{name}.query.bias"] = qkv_b[:d_model]
                    state[f"{dst}.{name}.key_value.weight"] = qkv_w[d_model:]
                    state[f"{dst}.{name}.key_value.bias"] = qkv_b[d_model:]
                    out = "linear_1"
                else:  # query, fused key/value (from the encoder output), then output
                    state[f"{dst}.{name}.query.weight"] = _dequantized(v, f"{a}/linear_0/weight")
                    state[f"{dst}.{name}.query.bias"] = _dequantized(v, f"{a}/linear_0/bias")
                    state[f"{dst}.{name}.key_value.weight"] = _dequantized(
                        v, f"{a}/linear_1/weight"
                    )
                    state[f"{dst}.{name}.key_value.bias"] = _dequantized(v, f"{a}/linear_1/bias")
                    out = "linear_2"
                state[f"{dst}.{name}.out.weight"] = _dequantized(v, f"{a}/{out}/weight")
                state[f"{dst}.{name}.out.bias"] = _dequantized(v, f"{a}/{out}/bias")
            state[f"{dst}.ffn_norm.weight"] = _dequantized(v, f"{src}/ffn/layer_norm/gamma")
            state[f"{dst}.ffn_norm.bias"] = _dequantized(v, f"{src}/ffn/layer_norm/beta")
            for ours, theirs in (("ffn_in", "linear_0"), ("ffn_out", "linear_1")):
                state[f"{dst}.{ours}.weight"] = _dequantized(v, f"{src}/ffn/{theirs}/weight")
                state[f"{dst}.{ours}.bias"] = _dequantized(v, f"{src}/ffn/{theirs}/bias")
        model.load_state_dict(state, strict=True)
        return model.eval()
