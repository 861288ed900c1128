"""Writes SAM parity cases with the official PyTorch code, for model/sam/torch_cases_test.ts.

Usage: python3 torch_cases.py SRC OUT, where SRC holds the official segment_anything package (it is not part
of this repository) and OUT receives cases.json plus, per case, NAME.ckpt.safetensors (the state dict) and
NAME.io.safetensors (inputs and outputs, NCHW, float32). Only numpy and torch are needed.
"""
import json
import os
import struct
import sys
import types
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

# The package's __init__ pulls in the predictor and torchvision; the model classes need only torch.
_pkg = types.ModuleType("segment_anything")
_pkg.__path__ = [os.path.join(sys.argv[1], "segment_anything")]
sys.modules["segment_anything"] = _pkg
from segment_anything.modeling import (  # noqa: E402
    ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer)

OUT = sys.argv[2]


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy() if torch.is_tensor(t) else t, dtype=np.float32)
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def build(c, img_size):
    grid = img_size // c["patch_size"]
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=c["depth"], embed_dim=c["embed_dim"], img_size=img_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=c["num_heads"],
            patch_size=c["patch_size"], qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=c["global_attn_indexes"], window_size=c["window_size"], out_chans=c["out_chans"]),
        prompt_encoder=PromptEncoder(
            embed_dim=c["out_chans"], image_embedding_size=(grid, grid), input_image_size=(img_size, img_size),
            mask_in_chans=c["mask_in_chans"]),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=c["out_chans"], mlp_dim=c["decoder_mlp_dim"],
                                          num_heads=c["decoder_num_heads"]),
            transformer_dim=c["out_chans"], iou_head_depth=3, iou_head_hidden_dim=c["iou_head_hidden_dim"]),
    ).eval()


def randomize(model, seed):
    """Every parameter and buffer random (the official zero init of pos_embed and rel_pos would hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            noise = torch.randn(t.shape, generator=g)
            is_norm = ("norm" in name or "neck.1" in name or "neck.3" in name or "output_upscaling.1" in name
                       or "mask_downscaling.1" in name or "mask_downscaling.4" in name)
            t.copy_(1 + 0.1 * noise if is_norm and name.endswith("weight") else 0.2 * noise)


def resized_state_dict(sd, c, img_size):
    """SAMed's load-time resizing: pos_embed bilinearly, the global blocks' rel-pos tables linearly."""
    grid = img_size // c["patch_size"]
    out = dict(sd)
    pe = sd["image_encoder.pos_embed"].permute(0, 3, 1, 2)
    out["image_encoder.pos_embed"] = F.interpolate(pe, (grid, grid), mode="bilinear",
                                                   align_corners=False).permute(0, 2, 3, 1)
    for i in range(c["depth"]):
        if i in c["global_attn_indexes"] or c["window_size"] == 0:
            for hw in "hw":
                k = f"image_encoder.blocks.{i}.attn.rel_pos_{hw}"
                t = sd[k][None, None]
                out[k] = F.interpolate(t, (2 * grid - 1, t.shape[-1]), mode="bilinear", align_corners=False)[0, 0]
    return out


@torch.no_grad()
def full_case(name, c, raw_hw, seed):
    model = build(c, c["image_size"])
    randomize(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    h, w = raw_hw
    grid = c["image_size"] // c["patch_size"]
    raw = torch.rand((1, 3, h, w), generator=g) * 255
    io = {"raw_image": raw}
    x = model.preprocess(raw[0])[None]
    emb = model.image_encoder(x)
    pe = model.prompt_encoder.get_dense_pe()
    io.update(preprocessed_image=x, image_embeddings=emb, dense_pe=pe)
    box = torch.tensor([[3.0, 5.0, w - 6.0, h - 2.0]])
    pts = (torch.tensor([[[4.0, 7.0], [w - 3.0, h / 2], [10.5, 3.25]]]), torch.tensor([[1.0, 0.0, -1.0]]))
    pts2 = (torch.tensor([[[w / 2, h / 3], [2.0, h - 1.0]]]), torch.tensor([[0.0, 1.0]]))
    mask = torch.randn((1, 1, 4 * grid, 4 * grid), generator=g)
    io.update({"box": box, "points.coords": pts[0], "points.labels": pts[1], "points_box.coords": pts2[0],
               "points_box.labels": pts2[1], "mask_input": mask})
    sets = {"none": ({}, False), "box": ({"boxes": box}, True), "points": ({"points": pts}, True),
            "points_box": ({"points": pts2, "boxes": box}, False), "mask": ({"masks": mask}, False)}
    for key, (prompt, multi) in sets.items():
        sparse, dense = model.prompt_encoder(points=prompt.get("points"), boxes=prompt.get("boxes"),
                                             masks=prompt.get("masks"))
        masks, iou = model.mask_decoder(image_embeddings=emb, image_pe=pe, sparse_prompt_embeddings=sparse,
                                        dense_prompt_embeddings=dense, multimask_output=multi)
        io.update({f"{key}.sparse": sparse, f"{key}.dense": dense, f"{key}.low_res_masks": masks,
                   f"{key}.iou": iou})
        if key == "none":
            io["none.masks_original_size"] = model.postprocess_masks(masks, (h, w), (h, w))
    # The g-network's batch quirk: two images, one empty prompt.
    raw2 = torch.rand((2, 3, c["image_size"], c["image_size"]), generator=g) * 255
    emb2 = model.image_encoder(torch.stack([model.preprocess(r) for r in raw2]))
    sparse, dense = model.prompt_encoder(points=None, boxes=None, masks=None)
    masks, iou = model.mask_decoder(image_embeddings=emb2, image_pe=pe, sparse_prompt_embeddings=sparse,
                                    dense_prompt_embeddings=dense, multimask_output=False)
    io.update({"batch2.raw_image": raw2, "batch2.image_embeddings": emb2, "batch2.low_res_masks": masks,
               "batch2.iou": iou})
    save_safetensors(model.state_dict(), f"{OUT}/{name}.ckpt.safetensors")
    save_safetensors(io, f"{OUT}/{name}.io.safetensors")
    return {"name": name, "kind": "full", "config": c}


@torch.no_grad()
def resize_case(name, c, input_size, seed):
    """Encoder only, at an input size other than the config's: the weights are resized as SAMed does."""
    model = build(c, c["image_size"])
    randomize(model, seed)
    sd = model.state_dict()
    resized = build(c, input_size)
    resized.load_state_dict(resized_state_dict(sd, c, input_size))
    x = torch.randn((1, 3, input_size, input_size), generator=torch.Generator().manual_seed(seed + 1))
    save_safetensors(sd, f"{OUT}/{name}.ckpt.safetensors")
    save_safetensors({"input": x, "image_embeddings": resized.image_encoder(x)}, f"{OUT}/{name}.io.safetensors")
    return {"name": name, "kind": "resize", "config": c, "input_size": input_size}


def cfg(**kw):
    base = dict(image_size=64, patch_size=8, embed_dim=32, depth=2, num_heads=2, window_size=3,
                global_attn_indexes=[1], out_chans=16, mask_in_chans=8, decoder_mlp_dim=32, decoder_num_heads=2,
                iou_head_hidden_dim=24)
    base.update(kw)
    return base


cases = [
    full_case("patch4_heads3_pad", cfg(image_size=56, patch_size=4, embed_dim=48, depth=3, num_heads=3,
                                       window_size=5, global_attn_indexes=[0], decoder_num_heads=1), (50, 41), 1),
    full_case("patch16_heads4", cfg(patch_size=16, num_heads=4, out_chans=24, mask_in_chans=4,
                                    decoder_num_heads=4, iou_head_hidden_dim=8), (64, 60), 2),
    full_case("all_global", cfg(window_size=0, global_attn_indexes=[], depth=3), (33, 64), 3),
    resize_case("upsized_96", cfg(), 96, 4),
    resize_case("downsized_40", cfg(global_attn_indexes=[0, 1]), 40, 5),
]
with open(f"{OUT}/cases.json", "w") as f:
    json.dump(cases, f)
