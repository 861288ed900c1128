"""A plain torch.nn build of HarDNet and the g-network's decoder, for the parity tests of model/heads/hardnet.ts
and model/gnet.ts. Written for these tests from the architecture in docs/methods.md 2.3; module names follow
PyTorch's HarDNet (base.N...) and the g-network's ModelEmb (backbone., decoder.up1/up2/final).

  gnet_reference.py hardnet CONFIG OUT_DIR
      Builds HarDNet from CONFIG (JSON: stem, grmul, stages, extra, input) with random weights and BatchNorm
      statistics, plus an `extra` unread stage and a classifier as an ImageNet file has; saves its state dict
      to OUT_DIR/hardnet.pth (torch.save); prints JSON: the input, the features in inference mode, the
      features of one training-mode forward and the running statistics after it (NHWC, flattened).
  gnet_reference.py gnet CONFIG WEIGHTS INPUT
      Loads WEIGHTS (safetensors written by GNet.exportTrainable) into the backbone + decoder strictly (only
      num_batches_tracked may be absent), runs inference on INPUT (safetensors, tensor "x", NHWC) and prints
      JSON: the dense embeddings resized to CONFIG's grid (align_corners=True), NHWC, flattened.
"""
import json
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_layer(cin, cout, k=3, stride=1):
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)),
        ("norm", nn.BatchNorm2d(cout)),
        ("relu", nn.ReLU6()),
    ]))


class HarDBlock(nn.Module):
    def __init__(self, cin, growth, grmul, n):
        super().__init__()
        widths, self.reads, layers = [cin], [], []
        for k in range(1, n + 1):
            reads, w, p = [], growth, 1
            while p <= k:
                if k % p == 0:
                    reads.append(k - p)
                    if p > 1:
                        w *= grmul
                p *= 2
            w = int(int(w + 1) / 2) * 2
            layers.append(conv_layer(sum(widths[j] for j in reads), w))
            widths.append(w)
            self.reads.append(reads)
        self.layers = nn.ModuleList(layers)
        self.kept = [k for k in range(1, n + 1) if k % 2 == 1 or k == n]
        self.out_channels = sum(widths[k] for k in self.kept)

    def forward(self, x):
        outs = [x]
        for reads, layer in zip(self.reads, self.layers):
            outs.append(layer(torch.cat([outs[j] for j in reads], 1)))
        return torch.cat([outs[k] for k in self.kept], 1)


class HarDNet(nn.Module):
    """Stem, max-pool, stages; features after the transitions of pooled stages and the last built stage."""

    def __init__(self, cfg):
        super().__init__()
        s0, s1 = cfg["stem"]
        base = [conv_layer(3, s0, 3, 2), conv_layer(s0, s1), nn.MaxPool2d(3, 2, 1)]
        self.taps, ch, n = [], s1, len(cfg["stages"])
        for i, st in enumerate(cfg["stages"]):
            block = HarDBlock(ch, st["growth"], cfg["grmul"], st["layers"])
            base += [block, conv_layer(block.out_channels, st["width"], 1)]
            ch = st["width"]
            if st["pool"] or i == n - 1:
                self.taps.append(len(base) - 1)
            if st["pool"] and (i < n - 1 or cfg.get("extra")):
                base.append(nn.MaxPool2d(2, 2))
        extra = cfg.get("extra")
        if extra:
            block = HarDBlock(ch, extra["growth"], cfg["grmul"], extra["layers"])
            base += [block, nn.Dropout(0.1), conv_layer(block.out_channels, extra["width"], 1)]
            base.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                                      nn.Linear(extra["width"], 1000)))
        self.base = nn.ModuleList(base)

    def forward(self, x):
        feats = []
        for i, m in enumerate(self.base[:self.taps[-1] + 1]):
            x = m(x)
            if i in self.taps:
                feats.append(x)
        return feats


class UpSkip(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.BN = nn.BatchNorm2d(cout)

    def forward(self, x, skip):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return F.leaky_relu(self.BN(self.conv2(self.conv1(torch.cat([x, skip], 1)))), 0.01)


class Final(nn.Module):
    def __init__(self, cin, embed, outputs):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, embed, 3, padding=1)
        self.BN1 = nn.BatchNorm2d(embed)
        self.conv2 = nn.Conv2d(embed, outputs * embed, 3, padding=1)

    def forward(self, x):
        return self.conv2(F.relu(self.BN1(self.conv1(x))))


class Decoder(nn.Module):
    def __init__(self, skips, embed, outputs):
        super().__init__()
        c4, c8, c16 = skips
        self.up1 = UpSkip(c16 + c8, c8)
        self.up2 = UpSkip(c8 + c4, c4)
        self.final = Final(c4, embed, outputs)

    def forward(self, f4, f8, f16):
        return torch.tanh(self.final(self.up2(self.up1(f16, f8), f4)))


class GNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.backbone = HarDNet(cfg)
        self.decoder = Decoder(cfg["skips"], cfg["embed"], cfg["outputs"])

    def forward(self, x, grid):
        dense = self.decoder(*self.backbone(x))
        return F.interpolate(dense, (grid, grid), mode="bilinear", align_corners=True)


def nhwc(t):
    return t.permute(0, 2, 3, 1).detach().numpy().ravel().tolist()


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header, out = json.loads(raw[8:8 + n]), {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        data = np.frombuffer(raw[8 + n + s:8 + n + e], dtype=np.float32).reshape(v["shape"])
        out[k] = torch.from_numpy(data.copy())
    return out


def hardnet_case(cfg, out_dir):
    torch.manual_seed(0)
    net = HarDNet(cfg)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(net.state_dict(), f"{out_dir}/hardnet.pth")
    x = torch.randn(cfg["input"])  # NCHW
    net.eval()
    with torch.no_grad():
        evals = net(x)
        net.train()
        trains = net(x)
    built = {f"base.{i}" for i in range(net.taps[-1] + 1)}
    stats = {k: v.numpy().ravel().tolist() for k, v in net.state_dict().items()
             if k.split(".")[0] + "." + k.split(".")[1] in built and "running_" in k}
    return {"x": nhwc(x), "eval": [nhwc(f) for f in evals], "train": [nhwc(f) for f in trains],
            "shapes": [list(f.permute(0, 2, 3, 1).shape) for f in evals], "stats": stats}


def gnet_case(cfg, weights, input_path):
    net = GNet(cfg)
    missing, unexpected = net.load_state_dict(read_safetensors(weights), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"state dict does not fit: missing {missing}, unexpected {unexpected}")
    x = read_safetensors(input_path)["x"].permute(0, 3, 1, 2)
    net.eval()
    with torch.no_grad():
        return {"dense": nhwc(net(x, cfg["grid"]))}


if __name__ == "__main__":
    config = json.loads(sys.argv[2])
    if sys.argv[1] == "hardnet":
        result = hardnet_case(config, sys.argv[3])
    else:
        result = gnet_case(config, sys.argv[3], sys.argv[4])
    sys.stdout.write(json.dumps(result))
