"""Real-data loaders: small fixtures in each released file format, loaded through the FaceDataset contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facelab.data.build import build_dataset
from facelab.data.celeba import CelebA
from facelab.data.datasets import ImageFolder, find_images, variant_path
from facelab.data.ffhq import FFHQ
from facelab.data.hub_dataset import HubDataset
from facelab.data.splits import balanced_split, prevalence_table
from facelab.data.transforms import center_crop_resize, ffhq_attributes, load_image, to_binary

CELEBA_NAMES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()
RED, GREEN, BLUE = (255, 0, 0), (0, 160, 0), (0, 0, 255)


def banded(width: int = 178, height: int = 218, band: int = 20) -> Image.Image:
    """Green image with a red band on top and a blue one at the bottom, each exactly `band` rows."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:] = GREEN
    arr[:band] = RED
    arr[height - band:] = BLUE
    return Image.fromarray(arr)


def assert_contract(item: dict, size: int, n_attrs: int) -> None:
    """The FaceDataset item contract."""
    assert item["image"].shape == (3, size, size) and item["image"].dtype == torch.float32
    assert -1.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["attributes"].shape == (n_attrs,) and item["attributes"].dtype == torch.float32
    assert set(item["attributes"].unique().tolist()) <= {0.0, 1.0}


# ---- transforms -------------------------------------------------------------------------------


def test_center_crop_removes_celeba_top_and_bottom_bands():
    out = np.asarray(center_crop_resize(banded(), 64)).astype(int)
    assert out.shape == (64, 64, 3)
    # 178x218 -> central 178x178 drops exactly 20 rows each side: only green survives
    assert np.abs(out - np.array(GREEN)).max() <= 2
    wide = np.asarray(center_crop_resize(banded(band=21), 64)).astype(int)
    assert wide[0, :, 0].mean() > 20 and wide[-1, :, 2].mean() > 20  # one row more of each band shows


def test_center_crop_explicit_crop_and_bad_crop():
    arr = np.zeros((218, 178, 3), np.uint8)
    arr[39:179, 19:159] = GREEN  # the central 140x140 square
    out = np.asarray(center_crop_resize(Image.fromarray(arr), 32, crop=140)).astype(int)
    assert np.abs(out - np.array(GREEN)).max() <= 2
    with pytest.raises(ValueError, match="larger than the image's shorter side"):
        center_crop_resize(Image.fromarray(arr), 32, crop=200)


@pytest.mark.parametrize("make, expected", [
    (lambda: Image.new("RGBA", (10, 10), (255, 0, 0, 0)), (127, 127, 127)),  # transparent -> mid-grey
    (lambda: Image.new("RGBA", (10, 10), (255, 0, 0, 255)), (255, 0, 0)),
    (lambda: Image.new("L", (10, 10), 200), (200, 200, 200)),
    (lambda: Image.new("RGB", (10, 10), (10, 200, 30)).convert("P", palette=Image.ADAPTIVE), (10, 200, 30)),
    (lambda: Image.new("CMYK", (10, 10), (0, 0, 0, 0)), (255, 255, 255)),
    (lambda: Image.fromarray(np.full((10, 10), 32896, np.uint16)), (128, 128, 128)),  # I;16 scaled, not clipped
])
def test_modes_normalised_to_rgb(make, expected):
    out = center_crop_resize(make(), 8)
    assert out.mode == "RGB" and out.size == (8, 8)
    assert np.abs(np.asarray(out).astype(int) - np.array(expected)).max() <= 3


def test_large_jpeg_draft_decoding_keeps_crop_geometry(tmp_path):
    # 4x CelebA, with an explicit 560 crop (140 at CelebA scale): the JPEG is decoded at 1/4
    arr = np.zeros((872, 712, 3), np.uint8)
    arr[:] = RED
    arr[156:716, 76:636] = GREEN  # the central 560x560 square
    Image.fromarray(arr).save(tmp_path / "big.jpg", quality=95)
    out = np.asarray(load_image(tmp_path / "big.jpg", 32, crop=560)).astype(int)
    assert out.shape == (32, 32, 3) and np.abs(out - np.array(GREEN)).max() <= 12
    full = np.asarray(load_image(tmp_path / "big.jpg", 32)).astype(int)
    assert full[0, 0, 0] > 200 and full[16, 16, 1] > 120  # default crop keeps the red frame


def test_exif_orientation_applied(tmp_path):
    img = Image.new("RGB", (40, 20), RED)
    img.paste(BLUE, (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise: the blue left half ends on top
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    with Image.open(tmp_path / "rot.jpg") as im:
        out = np.asarray(center_crop_resize(im, 20)).astype(int)
    assert out[2, 10, 2] > 200 and out[-3, 10, 0] > 200


def test_to_binary_codings():
    assert to_binary([-1, 1, 1]).tolist() == [0, 1, 1]
    assert to_binary([True, False]).tolist() == [1, 0]
    assert to_binary(["true", "no", "1"]).tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="'age' is not binary"):
        to_binary([3, 31, 60], "age")


# ---- CelebA -----------------------------------------------------------------------------------


@pytest.fixture
def celeba(tmp_path) -> tuple[Path, np.ndarray, list[int]]:
    """A 12-image CelebA tree in the released format: 8 train / 2 valid / 2 test."""
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    values = rng.choice([-1, 1], size=(12, 40))
    parts = [0] * 8 + [1] * 2 + [2] * 2
    lines = ["12", " ".join(CELEBA_NAMES) + " "]
    for i in range(12):
        name = f"{i + 1:06d}.jpg"
        banded().save(root / "img_align_celeba" / name, quality=95)
        lines.append(name + " " + " ".join(f"{v:2d}" for v in values[i]))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(parts)))
    return root, values, parts


def test_celeba_official_splits_and_attributes(celeba):
    root, values, parts = celeba
    sizes = {s: len(CelebA(root, split=s, size=32)) for s in ("train", "valid", "test", "all")}
    assert sizes == {"train": 8, "valid": 2, "test": 2, "all": 12}
    ds = CelebA(root, split="valid", size=32)
    assert ds.attribute_names == CELEBA_NAMES and ds.factor_names is None and ds.factor_sizes is None
    item = ds[1]
    assert_contract(item, 32, 40)
    assert "mask" not in item
    assert item["attributes"].tolist() == ((values[9] + 1) / 2).tolist()  # image 10 is the 2nd valid one
    # the cropped CelebA frame loses its coloured bands: green channel dominates everywhere
    assert (item["image"][1] > item["image"][0]).all() and (item["image"][1] > item["image"][2]).all()
    sub = CelebA(root, split="test", size=16, attributes=["Smiling", "Male"])
    assert sub.attribute_names == ["Smiling", "Male"]
    male, smiling = CELEBA_NAMES.index("Male"), CELEBA_NAMES.index("Smiling")
    assert sub[0]["attributes"].tolist() == [(values[10, smiling] + 1) / 2, (values[10, male] + 1) / 2]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["attributes"].shape == (2, 40)


@pytest.mark.parametrize("missing, named", [
    ("list_attr_celeba.txt", "list_attr_celeba.txt from the CelebA release"),
    ("list_eval_partition.txt", "list_eval_partition.txt from the CelebA release"),
    ("img_align_celeba", "img_align_celeba/ from the CelebA"),
])
def test_celeba_missing_file_names_it(celeba, missing, named):
    root = celeba[0]
    target = root / missing
    if target.is_dir():
        for f in target.iterdir():
            f.unlink()
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(FileNotFoundError) as err:
        CelebA(root, split="train")
    assert str(target) in str(err.value) and named in str(err.value)


def test_celeba_bad_attribute_row_and_unknown_attribute(celeba):
    root = celeba[0]
    with pytest.raises(ValueError, match="unknown attribute"):
        CelebA(root, attributes=["Bald", "Tall"])
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].rsplit(" ", 1)[0]  # drop one value
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match="line 6: expected a file name and 40 values"):
        CelebA(root)


def test_celeba_missing_image_skipped_and_counted(celeba):
    root = celeba[0]
    (root / "img_align_celeba" / "000002.jpg").unlink()
    ds = CelebA(root, split="train", size=16)
    assert len(ds) == 7 and ds.skipped == 1 and ds.skipped_files[0].endswith("000002.jpg")


def test_background_variant_and_mask(celeba):
    root = celeba[0]
    with pytest.raises(FileNotFoundError, match="python training/prepare_data.py --dataset celeba --root"):
        CelebA(root, background="grey")
    ds_all = CelebA(root, split="all")
    for rel in ds_all.files:  # what prepare_data writes: source-sized variant PNGs and L masks
        grey = variant_path(root, rel, "grey")
        grey.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (178, 218), (127, 127, 127)).save(grey)
        mask = variant_path(root, rel, "mask")
        mask.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.tile((np.arange(178) >= 89).astype(np.uint8) * 255, (218, 1))).save(mask)
    assert variant_path(root, ds_all.files[0], "grey") == root / "facelab_background/grey/img_align_celeba/000001.png"
    item = CelebA(root, background="grey", size=16)[0]
    assert_contract(item, 16, 40)
    assert torch.allclose(item["image"], torch.full_like(item["image"], 127 / 127.5 - 1), atol=1e-2)
    assert item["mask"].shape == (1, 16, 16)
    assert item["mask"][0, :, :7].max() < 0.05 and item["mask"][0, :, 9:].min() > 0.95


def test_variants_written_small_follow_an_explicit_crop(celeba):
    # prepare_data --size 32 writes the source's largest centred square at 32x32: a crop of 140
    # on the 178-wide source is 140*32/178 ~ 25 px there
    root = celeba[0]
    for rel in CelebA(root, split="all").files:
        arr = np.zeros((32, 32), np.uint8)
        arr[3:29, 3:29] = 255  # the 140-crop spans 3.4..28.6 here
        for variant, img in (("mask", Image.fromarray(arr)), ("blur", Image.fromarray(arr).convert("RGB"))):
            path = variant_path(root, rel, variant)
            path.parent.mkdir(parents=True, exist_ok=True)
            img.save(path)
    item = CelebA(root, background="blur", size=16, crop=140)[0]
    assert item["mask"].min() > 0.6 and item["image"].min() > 0.2
    uncropped = CelebA(root, background="blur", size=16)[0]
    assert uncropped["mask"][0, 0, 0] < 0.05 and uncropped["image"][0, 0, 0] < -0.9


# ---- image folders -----------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path) -> Path:
    """Good images in five formats (one nested), a corrupted file and a truncated JPEG."""
    root = tmp_path / "faces"
    (root / "sub").mkdir(parents=True)
    for k, ext in enumerate(["jpg", "jpeg", "png", "webp", "bmp"]):
        Image.new("RGB", (40 + k, 50), (40 * k, 90, 200)).save(root / f"img{k}.{ext}")
    Image.new("L", (30, 30), 100).save(root / "sub" / "grey.png")
    (root / "broken.jpg").write_bytes(b"this is not an image at all")
    full = root / "full.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full, quality=95)
    data = full.read_bytes()
    (root / "trunc.jpg").write_bytes(data[: len(data) // 2])  # header intact, pixels cut
    full.unlink()
    return root


def test_folder_skips_corrupt_and_truncated_without_crashing(folder):
    ds = ImageFolder(folder, size=24)
    # the construction scan finds both, the truncated JPEG by its missing end marker
    assert len(ds) == 6 and ds.skipped_by_reason == {"not_an_image": 1, "truncated": 1}
    assert [Path(f).name for f in ds.skipped_files] == ["broken.jpg", "trunc.jpg"]
    assert ds.attribute_names == [] and ds.factor_names is None
    (folder / "img0.jpg").write_bytes(b"broken after the scan")
    items = [ds[i] for i in range(len(ds))]  # img0.jpg fails to load now: the next image stands in
    for item in items:
        assert_contract(item, 24, 0)
    assert ds.skipped == 3 and ds.skipped_files[2].endswith("img0.jpg")
    assert len(list(torch.utils.data.DataLoader(ds, batch_size=4))) == 2


def test_folder_csv_and_json_labels(folder):
    (folder / "broken.jpg").unlink()
    (folder / "trunc.jpg").unlink()
    names = [p.as_posix() for p in find_images(folder)]
    rows = ["filename,Smiling,Male,age,note"]
    rows += [f"{n},{1 if i % 2 else -1},{'true' if i < 3 else 'false'},{20 + i},x" for i, n in enumerate(names)]
    (folder / "labels.csv").write_text("\n".join(rows[:-1]) + "\n")  # last image unlabelled
    ds = ImageFolder(folder, size=16)
    assert ds.attribute_names == ["Smiling", "Male"] and len(ds) == 5 and ds.unlabelled == 1
    assert ds.labels.tolist() == [[0, 1], [1, 1], [0, 1], [1, 0], [0, 0]]
    with pytest.raises(ValueError, match="'age' is not binary"):
        ImageFolder(folder, attributes=["age"])
    (folder / "labels.csv").unlink()
    for i, n in enumerate(names):
        (folder / n).with_suffix(".json").write_text(json.dumps({"Bangs": bool(i % 3 == 0), "name": "x"}))
    ds = ImageFolder(folder, size=16, labels="json")
    assert ds.attribute_names == ["Bangs"] and ds.labels[:, 0].tolist() == [1, 0, 0, 1, 0, 0]
    for i, n in enumerate(names[:2]):  # metadata without binary labels: nothing is dropped
        (folder / n).with_suffix(".json").write_text(json.dumps({"camera": "x", "iso": 100 * (i + 1)}))
    for n in names[2:]:
        (folder / n).with_suffix(".json").unlink()
    ds = ImageFolder(folder, size=16)
    assert len(ds) == 6 and ds.attribute_names == [] and ds.unlabelled == 0


def test_folder_balanced_named_splits_are_disjoint(folder):
    (folder / "broken.jpg").unlink()
    parts = [set(map(str, ImageFolder(folder, split=s, check=False).files)) for s in ("train", "valid", "test")]
    assert sum(map(len, parts)) == 7 and not (parts[0] & parts[1]) and not (parts[1] & parts[2])
    with pytest.raises(ValueError, match="choose one of train, valid, test, all"):
        ImageFolder(folder, split="val")


# ---- FFHQ ---------------------------------------------------------------------------------------


FFHQ_LABELS = [
    [{"faceAttributes": {"gender": "male", "age": 31.0, "glasses": "ReadingGlasses", "smile": 0.9,
                         "facialHair": {"moustache": 0.6, "beard": 0.7, "sideburns": 0.1},
                         "hair": {"bald": 0.1, "invisible": False,
                                  "hairColor": [{"color": "brown", "confidence": 0.9},
                                                {"color": "black", "confidence": 0.5}]}}}],
    {"faceAttributes": {"gender": "female", "age": 24, "glasses": "NoGlasses", "smile": 0.1}},
    {"gender": "female", "age": 12, "glasses": "Sunglasses", "smile": 0.6},
    {"gender": "male", "age": 61, "glasses": "NoGlasses", "smile": 0.0},
    [],  # FFHQ-Features-Dataset's "no face found"
]


@pytest.fixture
def ffhq(tmp_path) -> Path:
    root = tmp_path / "ffhq"
    (root / "00000").mkdir(parents=True)
    for i, label in enumerate(FFHQ_LABELS):
        Image.new("RGB", (48, 48), (50 * i, 100, 100)).save(root / "00000" / f"{i:05d}.png")
        (root / "00000" / f"{i:05d}.json").write_text(json.dumps(label))
    return root


def test_ffhq_json_forms_mapped_to_celeba_names(ffhq):
    ds = FFHQ(ffhq, size=32)
    assert len(ds) == 4 and ds.unlabelled == 1  # the [] label file
    assert ds.attribute_names[:4] == ["Male", "Young", "Eyeglasses", "Smiling"]
    assert "Age_over_15" in ds.attribute_names and "Mustache" not in ds.attribute_names  # not in every file
    col = {a: ds.labels[:, k].tolist() for k, a in enumerate(ds.attribute_names)}
    assert col["Male"] == [1, 0, 0, 1] and col["Young"] == [0, 1, 1, 0]
    assert col["Eyeglasses"] == [1, 0, 1, 0] and col["Smiling"] == [1, 0, 1, 0]
    assert col["Age_over_15"] == [1, 1, 0, 1] and col["Age_7_14"] == [0, 0, 1, 0]
    assert ds.ages.tolist() == [31, 24, 12, 61]
    assert_contract(ds[0], 32, len(ds.attribute_names))
    adults = FFHQ(ffhq, size=32, age_range=(15, math.inf))
    assert adults.ages.tolist() == [31, 24, 61] and len(adults) == 3
    details, _ = ffhq_attributes(FFHQ_LABELS[0])
    assert details["Mustache"] == 1 and details["No_Beard"] == 0 and details["Brown_Hair"] == 1
    assert details["Black_Hair"] == 0 and details["Bald"] == 0
    unlabelled = FFHQ(ffhq, size=32, labels="none")
    assert len(unlabelled) == 5 and unlabelled.attribute_names == []


def test_ffhq_labels_dir_layout(ffhq, tmp_path):
    labels = tmp_path / "json"
    labels.mkdir()
    for f in (ffhq / "00000").glob("*.json"):
        f.rename(labels / f.name)
    ds = FFHQ(ffhq, size=16, labels_dir=labels, attributes=["Male"])
    assert ds.attribute_names == ["Male"] and ds.labels[:, 0].tolist() == [1, 0, 0, 1]


# ---- Hugging Face datasets ------------------------------------------------------------------------


@pytest.fixture
def hub_dir(tmp_path) -> Path:
    from datasets import Dataset, Features, Image as HFImage, Value

    images = [Image.new("RGB", (40, 60), (30 * i, 0, 0)) for i in range(6)]
    ds = Dataset.from_dict(
        {"image": images, "Male": [True, False] * 3, "Smiling": [-1, 1, 1, -1, 1, 1],
         "age": [20, 30, 40, 50, 60, 70], "caption": ["a"] * 6},
        features=Features({"image": HFImage(), "Male": Value("bool"), "Smiling": Value("int32"),
                           "age": Value("int32"), "caption": Value("string")}))
    ds.save_to_disk(str(tmp_path / "hf"))
    return tmp_path / "hf"


def test_hub_dataset_from_disk(hub_dir):
    ds = HubDataset(hub_dir, size=16)
    assert ds.attribute_names == ["Male", "Smiling"] and len(ds) == 6
    assert ds.labels.tolist() == [[1, 0], [0, 1], [1, 1], [0, 0], [1, 1], [0, 1]]
    item = ds[2]
    assert_contract(item, 16, 2)
    assert item["image"][0].mean().item() == pytest.approx(60 / 127.5 - 1, abs=0.02)
    only = build_dataset("hub", str(hub_dir), size=8, attribute_columns=["Smiling"])
    assert only.attribute_names == ["Smiling"] and only[0]["image"].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="'age' is not binary"):
        HubDataset(hub_dir, attribute_columns=["age"])
    with pytest.raises(ValueError, match="image column 'img' not in the dataset"):
        HubDataset(hub_dir, image_column="img")


def test_hub_unreadable_image_cell_skipped(tmp_path):
    import io

    from datasets import Dataset, Features, Image as HFImage, Value

    good = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 255, 0)).save(good, "JPEG")
    cells = [{"bytes": b"garbage", "path": None}, {"bytes": good.getvalue(), "path": None}]
    features = Features({"image": HFImage(), "label": Value("int64")})
    Dataset.from_dict({"image": cells, "label": [0, 1]}, features=features).save_to_disk(str(tmp_path / "d"))
    ds = HubDataset(tmp_path / "d", size=8)
    item = ds[0]
    assert ds.skipped == 1 and item["attributes"].tolist() == [1.0] and item["image"][1].min() > 0.9


def test_hub_offline_repo_id_error_names_the_fix():
    with pytest.raises(ConnectionError) as err:
        HubDataset("someone/celeba-faces")
    text = str(err.value)
    assert "HF_HUB_OFFLINE" in text and "save_to_disk" in text and "network" in text


# ---- splits and build_dataset -----------------------------------------------------------------------


def test_balanced_split_keeps_prevalence_equal():
    rng = np.random.default_rng(1)
    n = 3000
    attrs = np.stack([rng.random(n) < p for p in (0.02, 0.07, 0.3, 0.5)], axis=1).astype(np.float32)
    names = ["Bald", "Mustache", "Smiling", "Male"]
    parts, report = balanced_split(attrs, names, seed=3)
    assert [len(p) for p in parts] == [2400, 300, 300]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    for a in ["Bald", "Mustache", "Smiling"]:  # default strata: the 3 most imbalanced attributes
        for split in ("train", "valid", "test"):
            assert abs(report[split][a] - report["all"][a]) <= 2.5 / 300
    again, _ = balanced_split(attrs, names, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    table = prevalence_table(report)
    assert table.splitlines()[0].startswith("| attribute | all | train | valid | test |")
    assert "| Bald |" in table
    with pytest.raises(ValueError, match="sum to 1"):
        balanced_split(attrs, names, fractions=(0.8, 0.3))
    with pytest.raises(ValueError, match="unknown stratify"):
        balanced_split(attrs, names, stratify=["Tall"])


def test_build_dataset_names(folder, celeba):
    with pytest.raises(ValueError, match="choose one of synthfaces, celeba, ffhq, folder, hub"):
        build_dataset("mnist")
    assert len(build_dataset("celeba", str(celeba[0]), size=16, split="test")) == 2
    ds = build_dataset("folder", str(folder), size=16, split="all")
    assert isinstance(ds, ImageFolder) and len(ds) == 6  # broken.jpg and trunc.jpg left out
    with pytest.raises(ValueError, match="needs root"):
        build_dataset("ffhq")
    with pytest.raises(FileNotFoundError, match="prepare_data.py --dataset folder --root"):
        build_dataset("folder", str(folder), background="blur")


def test_build_dataset_synthfaces():
    pytest.importorskip("facelab.data.synthfaces")
    train = build_dataset("synthfaces", size=32, length=4)
    test = build_dataset("synthfaces", size=32, length=4, split="test")
    assert_contract(train[0], 32, len(train.attribute_names))
    assert not torch.equal(train[0]["image"], test[0]["image"])
