"""PyTorch reference timings for `deno task bench` (run with a python3 that has torch; prints one JSON line).

A same-shape SAM ViT-B image encoder written here from the architecture in docs/methods.md (patch embedding,
absolute positions, 12 blocks of windowed/global attention with decomposed relative positions, conv neck),
with random weights: the timing of a forward pass depends on the shapes, not on the weights, so the official
segment_anything code is not needed. `--train` times a LoRA step instead (rank-4 LoRA on q and v, encoder
frozen, loss = mean of the embedding; no head, so it slightly under-counts our LoRaMedNet step).

usage: python3 bench/torch_encoder.py --size 1024 [--batch 1] [--train] [--repeat 1] [--threads N (default: every core)]
"""
import argparse
import json
import os
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

EMBED, DEPTH, HEADS, WINDOW, GLOBAL, OUT, PATCH = 768, 12, 12, 14, (2, 5, 8, 11), 256, 16


def rel_pos(table, q, k):
    """The decomposed relative-position table resized to q x k offsets (as SAM's get_rel_pos)."""
    n = 2 * max(q, k) - 1
    if table.shape[0] != n:
        table = F.interpolate(table.T[None], size=n, mode="linear")[0].T
    coords = (torch.arange(q)[:, None] * max(k / q, 1.0)) - (torch.arange(k)[None, :] * max(q / k, 1.0))
    return table[(coords + (k - 1) * max(q / k, 1.0)).long()]


class Block(nn.Module):
    def __init__(self, window, size, rank):
        super().__init__()
        self.window = window
        side = window if window else size
        self.n1, self.n2 = nn.LayerNorm(EMBED, eps=1e-6), nn.LayerNorm(EMBED, eps=1e-6)
        self.qkv, self.proj = nn.Linear(EMBED, 3 * EMBED), nn.Linear(EMBED, EMBED)
        self.rh = nn.Parameter(torch.zeros(2 * side - 1, EMBED // HEADS))
        self.rw = nn.Parameter(torch.zeros(2 * side - 1, EMBED // HEADS))
        self.mlp = nn.Sequential(nn.Linear(EMBED, 4 * EMBED), nn.GELU(), nn.Linear(4 * EMBED, EMBED))
        self.lora = rank and nn.ModuleList(
            [nn.Linear(EMBED, rank, bias=False), nn.Linear(rank, EMBED, bias=False),
             nn.Linear(EMBED, rank, bias=False), nn.Linear(rank, EMBED, bias=False)])

    def attn(self, x):
        b, h, w, c = x.shape
        qkv = self.qkv(x)
        if self.lora:
            qa, qb, va, vb = self.lora
            qkv = qkv + torch.cat([qb(qa(x)), torch.zeros_like(x), vb(va(x))], -1)
        qkv = qkv.reshape(b, h * w, 3, HEADS, -1).permute(2, 0, 3, 1, 4).reshape(3, b * HEADS, h * w, -1)
        q, k, v = qkv.unbind(0)
        d = q.shape[-1]
        logits = (q * d ** -0.5) @ k.transpose(-2, -1)
        rq = q.reshape(b * HEADS, h, w, d)
        relh = torch.einsum("bhwc,hkc->bhwk", rq, rel_pos(self.rh, h, h))
        relw = torch.einsum("bhwc,wkc->bhwk", rq, rel_pos(self.rw, w, w))
        logits = (logits.view(b * HEADS, h, w, h, w) + relh[:, :, :, :, None] + relw[:, :, :, None, :])
        o = logits.view(b * HEADS, h * w, h * w).softmax(-1) @ v
        return self.proj(o.view(b, HEADS, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1))

    def forward(self, x):
        shortcut, x = x, self.n1(x)
        if self.window:
            b, h, w, c = x.shape
            ph, pw = (-h) % self.window, (-w) % self.window
            x = F.pad(x, (0, 0, 0, pw, 0, ph))
            hp, wp = h + ph, w + pw
            s = self.window
            x = x.view(b, hp // s, s, wp // s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, s, s, c)
            x = self.attn(x)
            x = x.view(b, hp // s, wp // s, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
            x = x[:, :h, :w]
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.n2(x))


class Encoder(nn.Module):
    def __init__(self, size, rank):
        super().__init__()
        g = size // PATCH
        self.patch = nn.Conv2d(3, EMBED, PATCH, PATCH)
        self.pos = nn.Parameter(torch.zeros(1, g, g, EMBED))
        self.blocks = nn.ModuleList(
            [Block(0 if i in GLOBAL else WINDOW, g, rank) for i in range(DEPTH)])
        self.neck = nn.Sequential(nn.Conv2d(EMBED, OUT, 1, bias=False), nn.GroupNorm(1, OUT),
                                  nn.Conv2d(OUT, OUT, 3, padding=1, bias=False), nn.GroupNorm(1, OUT))

    def forward(self, x):
        x = self.patch(x).permute(0, 2, 3, 1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.neck(x.permute(0, 3, 1, 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Encoder(a.size, 4 if a.train else 0)
    x = torch.randn(a.batch, 3, a.size, a.size)
    best = float("inf")
    if a.train:
        for name, prm in model.named_parameters():
            prm.requires_grad = ".lora." in name
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        if a.train:
            opt.zero_grad()
            model(x).mean().backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({
        "backend": "torch",
        "seconds": best,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
