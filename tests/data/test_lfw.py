from __future__ import annotations

from pathlib import Path

import pytest

from facerobust.data.lfw import LFWPairs, parse_pairs


def write_lfw(root: Path, text: str, *, images: str | None = "images",
              name: str = "pairs.txt") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
    img_root = root / images if images else root
    for person, n in (("Ann_A", 3), ("Bob_B", 2), ("Cy_C", 1)):
        (img_root / person).mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            (img_root / person / f"{person}_{i:04d}.jpg").write_bytes(b"x")
    return root


GOOD = "2\t1\nAnn_A\t1\t2\nBob_B\t1\tCy_C\t1\nAnn_A 1 3\nAnn_A 2 Bob_B 2\n"


@pytest.mark.parametrize("layout", ["images", None])
def test_parse_two_folds_both_layouts(tmp_path: Path, layout: str | None) -> None:
    root = write_lfw(tmp_path / "lfw", GOOD, images=layout)
    lfw = LFWPairs(root)
    img = root / "images" if layout else root
    assert len(lfw) == 4 and lfw.n_folds == 2
    p = lfw.pairs
    assert (p[0].path_a, p[0].path_b, p[0].same, p[0].fold) == (
        img / "Ann_A/Ann_A_0001.jpg", img / "Ann_A/Ann_A_0002.jpg", True, 0)
    assert (p[1].same, p[1].fold) == (False, 0)
    assert p[3].path_b == img / "Bob_B/Bob_B_0002.jpg" and p[3].fold == 1 and not p[3].same
    assert lfw.missing() == []
    people = lfw.people()
    assert list(people) == ["Ann_A", "Bob_B", "Cy_C"] and len(people["Ann_A"]) == 3


def test_view1_file_single_count_header(tmp_path: Path) -> None:
    root = write_lfw(tmp_path / "lfw", "1\nAnn_A 1 2\nAnn_A 1 Cy_C 1\n", name="pairsDevTest.txt")
    lfw = LFWPairs(root, pairs_file="pairsDevTest.txt")
    assert [(q.same, q.fold) for q in lfw.pairs] == [(True, 0), (False, 0)]


@pytest.mark.parametrize(("text", "match"), [
    ("", "empty pairs file"),
    ("a b c\n", r"pairs.txt:1: header must be"),
    ("x 1\n", r"pairs.txt:1: fold count must be an integer, got 'x'"),
    ("1 0\n", r"pairs.txt:1: header announces no pairs"),
    ("1 1\nAnn_A 1 2\n", r"announces 1 fold\(s\) x 2 x 1 = 2 pair lines, found 1"),
    ("1 1\nAnn_A 1 2 3\nAnn_A 1 Bob_B 1\n", r"pairs.txt:2: matched pair must be 'name i j'"),
    ("1 1\n\nAnn_A 1 2\nAnn_A 1 Bob_B\n", r"pairs.txt:4: mismatched pair must be"),
    ("1 1\nAnn_A one 2\nAnn_A 1 Bob_B 1\n", r"pairs.txt:2: image number must be an integer"),
    ("1 1\nAnn_A 1 2\nAnn_A 1 Bob_B -1\n", r"pairs.txt:3: image number must be >= 0"),
])
def test_format_errors_name_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    root = write_lfw(tmp_path / "lfw", text)
    with pytest.raises(ValueError, match=match):
        LFWPairs(root)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="LFW folder not found"):
        LFWPairs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="pairs file not found"):
        LFWPairs(tmp_path / "empty")
    with pytest.raises(ValueError, match="not a text file"):
        (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x81")
        parse_pairs(tmp_path / "bin.txt", tmp_path)


def test_missing_images_are_listed(tmp_path: Path) -> None:
    root = write_lfw(tmp_path / "lfw", "1 1\nAnn_A 1 9\nAnn_A 1 Bob_B 1\n")
    assert LFWPairs(root).missing() == [root / "images/Ann_A/Ann_A_0009.jpg"]


@pytest.mark.data
def test_real_lfw_protocols(lfw_root: Path) -> None:
    lfw = LFWPairs(lfw_root)
    assert len(lfw) == 6000 and lfw.n_folds == 10
    assert sum(p.same for p in lfw.pairs) == 3000
    assert all(sum(p.fold == k and p.same for p in lfw.pairs) == 300 for k in range(10))
    assert lfw.missing() == []
    train = LFWPairs(lfw_root, pairs_file="pairsDevTrain.txt")
    test = LFWPairs(lfw_root, pairs_file="pairsDevTest.txt")
    assert (len(train), len(test)) == (2200, 1000)
    assert len(lfw.people()) == 5749
