"""Helpers for the inference tests: a manifest of real photos with string labels, and tiny models."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

# class name -> scikit-image sample photo (shipped in the wheel, nothing downloaded)
PHOTOS = {"astronaut": "astronaut", "cat": "chelsea", "coffee": "coffee", "rocket": "rocket"}
CROPS_PER_CLASS = 12
TEST_PER_CLASS = 4

PHOTO_SPEC = {
    "encoders": {"image": {"type": "cnn", "in_channels": 3, "channels": [8, 16], "output_dim": 16,
                           "image_size": 32}},
    "fusion": {"type": "concat"},
    "head": {"type": "classification", "num_classes": 4},
}


def write_photo_manifest(folder: Path) -> Path:
    """``folder/photos.csv``: random crops of four real photos (PNG files) with string labels, an id
    column and a train/test split; returns the CSV's path."""
    import skimage.data
    from PIL import Image

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for label, photo in PHOTOS.items():
        pixels = getattr(skimage.data, photo)()
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        h, w = pixels.shape[:2]
        for i in range(CROPS_PER_CLASS):
            side = int(rng.integers(min(h, w) // 2, min(h, w)))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = Image.fromarray(pixels[top : top + side, left : left + side, :3]).resize((40, 40))
            name = f"{label}-{i}.png"
            crop.save(images / name)
            split = "test" if i < TEST_PER_CLASS else "train"
            rows.append({"image": f"images/{name}", "id": f"{label}-{i}", "target": label, "split": split})
    return write_csv(folder / "photos.csv", rows)


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def photo_run_config(manifest: Path, output_dir: Path, steps: int = 40) -> dict:
    """A run config training PHOTO_SPEC on the manifest's train split, evaluated on its test split."""
    params = {"path": str(manifest)}  # columns image and id (no encoder reads the id)
    return {
        "model": {**PHOTO_SPEC},
        "data": {"train": {"dataset": "manifest", "split": "train", "params": params},
                 "eval": {"dataset": "manifest", "split": "test", "params": params},
                 "batch_size": 8},
        "optim": {"name": "adamw", "lr": 3.0e-3, "steps": steps},
        "output_dir": str(output_dir),
        "seed": 0,
    }
