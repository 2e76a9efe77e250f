"""Loaders on small DSB2018-layout and folder-layout trees written here, bad inputs included."""
import logging

import numpy as np
import pytest
import tifffile
from skimage.io import imsave

from trainers.data import DataError, check_data_spec, load_samples, parse_data_spec, split_by_image


def disk(h, w, cy, cx, r):
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def write_dsb(root, n=3, h=40, w=50):
    for i in range(n):
        d = root / f"id{i}"
        (d / "images").mkdir(parents=True)
        (d / "masks").mkdir()
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., 3] = 255
        for j, (cy, cx) in enumerate([(10, 10), (25, 35)]):
            m = disk(h, w, cy, cx, 6)
            rgba[m, :3] = 200
            imsave(d / "masks" / f"m{j}.png", (m * 255).astype(np.uint8), check_contrast=False)
        imsave(d / "images" / f"id{i}.png", rgba, check_contrast=False)
    return root


def write_folder(root, n=3, h=33, w=47, binary=False, tif=False, masks="masks"):
    (root / "images").mkdir(parents=True)
    (root / masks).mkdir()
    for i in range(n):
        lab = np.zeros((h, w), np.uint16)
        lab[disk(h, w, 8, 8, 5)] = 1
        lab[disk(h, w, 20, 30, 6)] = 2
        img = (lab > 0).astype(np.uint16) * 1000 + 50
        if tif:
            tifffile.imwrite(root / "images" / f"s{i}.tif", img)
        else:
            imsave(root / "images" / f"s{i}.png", img, check_contrast=False)
        mask = ((lab > 0) * 255).astype(np.uint8) if binary else lab
        imsave(root / masks / f"s{i}.png", mask, check_contrast=False)
    return root


def test_dsb2018_layout_builds_instances(tmp_path):
    samples = load_samples(f"dsb2018:{write_dsb(tmp_path)}")
    assert len(samples) == 3
    s = samples[0]
    assert s.image.shape == (1, 40, 50) and s.image.dtype == np.float32
    assert set(np.unique(s.label)) == {0, 1, 2}
    assert (s.label == 1).sum() == disk(40, 50, 10, 10, 6).sum()
    rgb = load_samples(f"dsb2018:{tmp_path}", channels=3)[0]
    assert rgb.image.shape == (3, 40, 50)


@pytest.mark.parametrize("binary, tif, masks", [(False, False, "masks"), (True, True, "labels")])
def test_folder_layout_instance_or_binary_masks(tmp_path, binary, tif, masks):
    samples = load_samples(f"folder:{write_folder(tmp_path, binary=binary, tif=tif, masks=masks)}")
    assert [s.name for s in samples] == ["s0", "s1", "s2"]
    assert samples[0].label.max() == 2  # binary masks are split into connected components
    assert samples[0].image.shape == (1, 33, 47)


def test_folder_unmatched_files_are_counted_in_a_warning(tmp_path, caplog):
    root = write_folder(tmp_path)
    imsave(root / "images" / "extra.png", np.zeros((33, 47), np.uint8), check_contrast=False)
    with caplog.at_level(logging.WARNING):
        assert len(load_samples(f"folder:{root}")) == 3
    assert "1 file(s) without a partner" in caplog.text and "extra" in caplog.text


def test_synthetic_is_seeded_and_sized():
    a = load_samples("synthetic:4", seed=1)
    b = load_samples("synthetic:4", seed=1)
    c = load_samples("synthetic:4", seed=2)
    assert len(a) == 4 and all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert not np.array_equal(a[0].image, c[0].image)
    for s in a:
        n = s.label.max()
        assert n >= 3 and set(np.unique(s.label)) == set(range(n + 1))  # labels exact and dense
        fg, bg = s.image[0][s.label > 0].mean(), s.image[0][s.label == 0].mean()
        assert fg > 2 * bg  # nuclei brighter than background


def _touching_pairs(label):
    """Pairs of different nuclei that share an edge between two pixels."""
    pairs = set()
    for a, b in ((label[1:], label[:-1]), (label[:, 1:], label[:, :-1])):
        both = (a > 0) & (b > 0) & (a != b)
        pairs |= {tuple(sorted(p)) for p in zip(a[both].tolist(), b[both].tolist(), strict=True)}
    return pairs


def test_synthetic_has_clumps_sizes_densities_and_a_brightfield_variant():
    samples = load_samples("synthetic:16", seed=0)
    assert sum(len(_touching_pairs(s.label)) >= 2 for s in samples) >= 12  # touching nuclei in most images
    counts = [int(s.label.max()) for s in samples]
    assert max(counts) >= 2 * min(counts)  # sparse and crowded fields
    areas = [np.bincount(s.label.ravel())[1:].mean() for s in samples]
    assert max(areas) >= 2 * min(areas)  # magnification varies
    bright = load_samples("synthetic-brightfield:16", seed=0)
    for f, b in zip(samples, bright, strict=True):
        assert np.array_equal(f.label, b.label)  # the same nuclei, another modality
        fg, bg = b.image[0][b.label > 0].mean(), b.image[0][b.label == 0].mean()
        assert fg < 0.6 * bg  # dark nuclei on a light field
    assert bright[0].name.startswith("synthetic-brightfield")


def test_bad_inputs_raise_data_error_naming_the_problem(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_samples(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        check_data_spec(f"dsb2018:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="no sample folders"):
        load_samples(f"dsb2018:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="expected 'dsb2018:PATH'"):
        parse_data_spec("kaggle:/x")
    with pytest.raises(DataError, match="at least 2"):
        parse_data_spec("synthetic:1")


def test_dsb_sample_without_masks(tmp_path):
    root = write_dsb(tmp_path)
    for f in (root / "id1" / "masks").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"id1: sample without masks"):
        load_samples(f"dsb2018:{root}")


def test_dsb_mask_size_mismatch(tmp_path):
    root = write_dsb(tmp_path)
    imsave(root / "id2" / "masks" / "m9.png", np.zeros((10, 10), np.uint8), check_contrast=False)
    with pytest.raises(DataError, match=r"m9.png: mask size \(10, 10\) does not match image size \(40, 50\)"):
        load_samples(f"dsb2018:{root}")


def test_corrupt_image_is_named(tmp_path):
    root = write_folder(tmp_path)
    (root / "images" / "s1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"s1.png: unreadable image"):
        load_samples(f"folder:{root}")


def test_folder_size_mismatch_and_no_pairs(tmp_path):
    root = write_folder(tmp_path / "a")
    imsave(root / "masks" / "s0.png", np.zeros((5, 5), np.uint8), check_contrast=False)
    with pytest.raises(DataError, match=r"s0.png: mask size"):
        load_samples(f"folder:{root}")
    root = write_folder(tmp_path / "b")
    for f in (root / "masks").iterdir():
        f.rename(f.with_name("x" + f.name))
    with pytest.raises(DataError, match="no image/mask pairs"):
        load_samples(f"folder:{root}")
    (tmp_path / "c" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="images/ and masks/"):
        load_samples(f"folder:{tmp_path / 'c'}")


def test_split_is_by_image_reproducible_and_disjoint():
    samples = load_samples("synthetic:10")
    tr1, va1 = split_by_image(samples, 0.3, seed=4)
    tr2, va2 = split_by_image(samples, 0.3, seed=4)
    _, va3 = split_by_image(samples, 0.3, seed=5)
    assert [s.name for s in va1] == [s.name for s in va2] and len(va1) == 3 and len(tr1) == 7
    assert not {s.name for s in tr1} & {s.name for s in va1}
    assert [s.name for s in va1] != [s.name for s in va3]
    with pytest.raises(DataError, match="val_fraction"):
        split_by_image(samples, 1.0, 0)
