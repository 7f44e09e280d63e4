"""The images ``--data`` evaluates on, and their class indices. No torch here: the plan
scans the folder (and refuses a bad one) before anything is built.

Two layouts:

- **ImageFolder** (torchvision's and timm's): one sub-folder per class, its images inside
  (sub-folders of it too). Classes are the sorted folder names, class ``i`` the ``i``-th;
  folders whose names are all ImageNet-1k WordNet ids (``n01440764``) take their index in
  the ImageNet-1k class list instead (the same order when all 1000 are there, and still
  right for a subset of them). Hidden folders (``.ipynb_checkpoints``) are not classes.
- **Flat folder + labels CSV** (``--labels FILE``): one row per image, ``filename,label``
  (a header row whose first cell is ``filename``, ``file``, ``image``, ``path`` or
  ``ImageId`` is skipped). The filename is relative to the folder (``.JPEG``, ``.jpg``,
  ``.jpeg`` or ``.png`` is tried when it has no extension); the label is the first word of
  the second cell (so Kaggle's ``LOC_val_solution.csv`` reads as it is): an integer class
  index, an ImageNet-1k WordNet id, or any other class name (indices then follow the
  sorted names, as for folders).
"""

from __future__ import annotations

import csv
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from archbench.core.errors import UsageError

#: Image file extensions (torchvision's ``IMG_EXTENSIONS``), case-insensitive.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: Extensions tried for a CSV filename given without one.
GUESSED_EXTENSIONS = (".JPEG", ".jpg", ".jpeg", ".png")
#: First cells that make the CSV's first row a header.
HEADER_CELLS = {"filename", "file", "image", "imageid", "image_id", "path"}


@dataclass(frozen=True)
class ImageSet:
    """The images of ``--data`` in evaluation order: (absolute path, class index)."""

    samples: tuple[tuple[str, int], ...]
    #: Classes the labels can take, or None for integer labels (then each label must be
    #: below the model's class count).
    classes: int | None
    #: How labels became indices, in words.
    layout: str


def imagenet_classes() -> list[str]:
    """The ImageNet-1k WordNet ids in class-index order (timm's list, read without
    importing timm)."""
    spec = importlib.util.find_spec("timm")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "data" / "_info" / "imagenet_synsets.txt"
        if path.is_file():
            return path.read_text().split()
    return []


def scan(data: str | Path, labels: str | Path | None = None) -> ImageSet:
    """The images of ``data`` and their class indices; UsageError for a folder that is
    missing, empty, or has a class without images."""
    root = Path(data).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise UsageError(f"--data {data}: {what}")
    if labels is not None:
        return _flat(root, Path(labels).expanduser())
    return _folders(root)


def _images_under(folder: Path) -> list[str]:
    found = []
    for parent, _, names in sorted(os.walk(folder, followlinks=True)):
        found += [os.path.join(parent, n) for n in sorted(names)
                  if n.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def _folders(root: Path) -> ImageSet:
    names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not names:
        loose = _images_under(root)
        hint = (f" ({len(loose)} images lie there without class folders: give their labels "
                "with --labels FILE.csv)" if loose else "")
        raise UsageError(f"--data {root}: no class folders (ImageFolder layout: one folder "
                         f"per class){hint}")
    imagenet = imagenet_classes()
    index = {n: i for i, n in enumerate(imagenet)}
    by_wnid = bool(index) and all(n in index for n in names)
    samples: list[tuple[str, int]] = []
    for i, name in enumerate(names):
        images = _images_under(root / name)
        if not images:
            raise UsageError(f"--data {root}: class folder {name!r} holds no image "
                             f"({', '.join(IMAGE_EXTENSIONS)})")
        samples += [(path, index[name] if by_wnid else i) for path in images]
    if by_wnid:
        layout = (f"ImageFolder, {len(names)} class folders named by ImageNet-1k WordNet ids: "
                  "each takes its ImageNet-1k index (timm's class list)")
        return ImageSet(tuple(samples), len(imagenet), layout)
    layout = f"ImageFolder, {len(names)} class folders: sorted names, class i = i-th name"
    return ImageSet(tuple(samples), len(names), layout)


def _rows(path: Path) -> list[tuple[int, str, str]]:
    """(line number, filename, label word) of every data row of the labels CSV."""
    if not path.is_file():
        raise UsageError(f"--labels {path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [(n, r) for n, r in enumerate(csv.reader(f), start=1) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--labels {path}: cannot be read as CSV ({exc})") from None
    if rows and rows[0][1][0].strip().lower() in HEADER_CELLS:
        rows = rows[1:]
    out = []
    for n, row in rows:
        words = row[1].split() if len(row) > 1 else []
        if not row[0].strip() or not words:
            raise UsageError(f"--labels {path}: line {n} is not 'filename,label': {row!r}")
        out.append((n, row[0].strip(), words[0]))
    if not out:
        raise UsageError(f"--labels {path}: no rows (expected 'filename,label' lines)")
    return out


def _find(root: Path, name: str) -> str | None:
    path = root / name
    if path.is_file():
        return str(path)
    if not path.suffix:
        for ext in GUESSED_EXTENSIONS:
            if path.with_suffix(ext).is_file():
                return str(path.with_suffix(ext))
    return None


def _flat(root: Path, labels: Path) -> ImageSet:
    rows = _rows(labels)
    paths = [_find(root, name) for _, name, _ in rows]
    missing = [(n, name) for (n, name, _), p in zip(rows, paths) if p is None]
    if missing:
        n, name = missing[0]
        raise UsageError(f"--labels {labels}: {len(missing)} listed image(s) not found in "
                         f"{root}, the first {name!r} (line {n})")
    words = [label for _, _, label in rows]
    if all(w.isdigit() for w in words):
        layout = f"flat folder, {labels.name}: integer class indices"
        return ImageSet(tuple(zip(paths, map(int, words))), None, layout)
    if any(w.lstrip("-").isdigit() for w in words):
        bad = next(w for w in words if w.lstrip("-").isdigit())
        raise UsageError(f"--labels {labels}: labels mix class indices ({bad!r}) with names, "
                         "or hold a negative index")
    imagenet = imagenet_classes()
    index = {n: i for i, n in enumerate(imagenet)}
    if index and all(w in index for w in words):
        layout = (f"flat folder, {labels.name}: ImageNet-1k WordNet ids, each its ImageNet-1k "
                  "index (timm's class list)")
        return ImageSet(tuple((p, index[w]) for p, w in zip(paths, words)), len(imagenet),
                        layout)
    names = sorted(set(words))
    order = {n: i for i, n in enumerate(names)}
    layout = f"flat folder, {labels.name}: {len(names)} class names, sorted, class i = i-th"
    return ImageSet(tuple((p, order[w]) for p, w in zip(paths, words)), len(names), layout)


def check_classes(images: ImageSet, head: int, model: str, data: str) -> None:
    """UsageError unless ``model``'s ``head`` classes fit the data's labels."""
    if images.classes is None:
        top = max(label for _, label in images.samples)
        if top >= head:
            raise UsageError(f"--data {data}: label {top} is out of range for {model}, whose "
                             f"head has {head} classes (indices 0-{head - 1})")
        return
    if images.classes != head:
        raise UsageError(f"--data {data}: {images.classes} classes ({images.layout}), but "
                         f"{model}'s head has {head}; the class count must match")


def chosen(samples: tuple[tuple[str, int], ...], limit: int | None
           ) -> tuple[tuple[str, int], ...]:
    """``--limit N``: N images evenly spaced through the evaluation order (the first N of
    an ImageFolder would all be its first class), in that order; all without a limit."""
    if not limit or limit >= len(samples):
        return samples
    return tuple(samples[i * len(samples) // limit] for i in range(limit))
