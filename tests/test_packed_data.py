"""bpgan-pack: image folder -> one packed crop file (at most 64 MiB) that recipes train from."""
import numpy as np
import pytest
from PIL import Image

from bpgan.toolkit.cli.pack import main as pack_main
from bpgan.toolkit.cli.quantize import main as quantize_main
from bpgan.toolkit.datasets import ImageCrops, embedded_image_path, load_rgb
from bpgan.toolkit.datasets.packed import load_packed, pack_crops
from tiny_recipe import write_tiny


@pytest.fixture()
def folder(tmp_path):
    photo = load_rgb(embedded_image_path())
    (tmp_path / "imgs").mkdir()
    for i, (y, x) in enumerate([(0, 0), (100, 150), (300, 40)]):
        Image.fromarray(photo[y:y + 90, x:x + 120]).save(tmp_path / "imgs" / f"p{i}.png")
    return tmp_path / "imgs"


def test_the_packed_crops_are_the_images_pixels_where_recorded(folder, tmp_path):
    meta = pack_crops(str(folder), tmp_path / "c.npz", 48, 7, seed=3)
    crops, origin, stored = load_packed(tmp_path / "c.npz")
    assert stored == meta and crops.shape == (7, 48, 48, 3) and crops.dtype == np.uint8
    images = [load_rgb(folder / name) for name in meta["images"]]
    for crop, (i, y, x) in zip(crops, origin):
        assert np.array_equal(crop, images[i][y:y + 48, x:x + 48])
    again = pack_crops(str(folder), tmp_path / "d.npz", 48, 7, seed=3)   # seeded: the same crops
    assert again == meta and np.array_equal(load_packed(tmp_path / "d.npz")[0], crops)
    data = ImageCrops(str(tmp_path / "c.npz"), 32)
    import torch
    batch = data.random_batch(4, torch.Generator().manual_seed(0))
    assert batch.shape == (4, 3, 32, 32) and batch.min() >= -1 and batch.max() <= 1


def test_the_size_limit_and_bad_files_are_one_line(folder, tmp_path, capsys):
    with pytest.raises(ValueError, match="over the 1 MiB limit: at most 104 fit"):
        pack_crops(str(folder), tmp_path / "big.npz", 56, 1000, max_bytes=2 ** 20)
    assert not (tmp_path / "big.npz").exists()
    assert pack_main([str(folder), str(tmp_path / "x.npz"), "--crop", "100"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not a packed crop file"):
        load_packed(tmp_path / "bad.npz")


def test_a_recipe_trains_from_the_packed_file(folder, tmp_path, capsys):
    assert pack_main([str(folder), str(tmp_path / "p.npz"), "--crop", "64", "--count", "12", "--max-mib", "1"]) == 0
    assert "12 crops of 64x64 from 3 images" in capsys.readouterr().out
    assert pack_main([str(folder), str(tmp_path / "full.npz"), "--crop", "48", "--max-mib", "1"]) == 0   # as many as fit
    assert "141 crops of 48x48" in capsys.readouterr().out and (tmp_path / "full.npz").stat().st_size <= 2 ** 20
    recipe = write_tiny(tmp_path / "tiny.yaml", data={"train": str(tmp_path / "p.npz"), "val": str(tmp_path / "p.npz"),
                                                      "crop": 32, "val_crop": 48, "val_count": 2})
    assert quantize_main([str(recipe), "--out", str(tmp_path / "run"), "--until", "float", "--quiet"]) == 0
    assert (tmp_path / "run" / "float" / "model.pt").is_file()
