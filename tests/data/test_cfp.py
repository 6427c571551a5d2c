"""CFP: its layout, people, LFW overlap and official FF/FP protocols; the ``lfw-color`` and
``cfp`` dataset names."""

from __future__ import annotations

from pathlib import Path

import pytest

from facerobust.cli import main
from facerobust.data import resolve_dataset
from facerobust.data.cfp import (
    cfp_names,
    cfp_pairs,
    cfp_people,
    held_out_pairs,
    lfw_overlap,
    pair_person_ids,
    protocol_label,
    training_people,
)
from facerobust.data.resolve import dataset_protocol
from facerobust.data.sources import detect_layout, open_dataset
from facerobust.eval.clean import CleanOptions, protocol_pairs
from facerobust.eval.datasource import DataSource

PEOPLE = 4  # fake people 001-004, 3 frontal + 2 profile photos each


def make_cfp(root: Path, folds: int = 2) -> Path:
    """A tiny CFP tree: images, both image lists, ``folds`` FF and FP folds, an overlap file."""
    images, proto = root / "Data" / "Images", root / "Protocol"
    front, prof = [], []
    for k in range(1, PEOPLE + 1):
        for view, n, listed in (("frontal", 3, front), ("profile", 2, prof)):
            folder = images / f"{k:03d}" / view
            folder.mkdir(parents=True)
            for i in range(1, n + 1):
                (folder / f"{i:02d}.jpg").write_bytes(f"{k}{view}{i}".encode())
                listed.append(f"../Data/Images/{k:03d}/{view}/{i:02d}.jpg")
    (root / "Data" / "list_name.txt").write_text("Ann A\nBob B\nCid C\nDee D\n")
    proto.mkdir()
    for name, files in (("Pair_list_F.txt", front), ("Pair_list_P.txt", prof)):
        (proto / name).write_text("".join(f"{i} {f}\n" for i, f in enumerate(files, 1)))
    # frontal image numbers: person k holds 3k-2..3k; profile: 2k-1, 2k
    for fold in range(1, folds + 1):
        for key, same, diff in (("FF", "1,2\n4,6\n", "1,4\n7,10\n"),
                                ("FP", "1,1\n4,3\n", "1,3\n7,8\n")):
            folder = proto / "Split" / key / f"{fold:02d}"
            folder.mkdir(parents=True)
            (folder / "same.txt").write_text(same)
            (folder / "diff.txt").write_text(diff)
    (root / "lfw_overlap.txt").write_text("# id\tname\n002\tBob B\n004\tDee D\n")
    return root


def test_fake_cfp_people_overlap_and_names(tmp_path: Path) -> None:
    root = make_cfp(tmp_path / "cfp")
    people = cfp_people(root)
    assert sorted(people) == ["001", "002", "003", "004"]
    assert [p.parent.name for p in people["001"]] == ["frontal"] * 3 + ["profile"] * 2
    assert len(cfp_people(root, views=("profile",))["003"]) == 2
    assert lfw_overlap(root) == {"002", "004"}
    train = training_people(root)
    assert sorted(train) == ["001", "003"] and not set(train) & lfw_overlap(root)
    assert cfp_names(root)["002"] == "Bob B"
    with pytest.raises(ValueError, match="views must be"):
        cfp_people(root, views=("side",))


def test_fake_cfp_protocols_pair_the_right_lists(tmp_path: Path) -> None:
    root = make_cfp(tmp_path / "cfp")
    ff, fp = cfp_pairs(root, "ff"), cfp_pairs(root, "FP")
    assert len(ff) == len(fp) == 2 * 4
    assert [p.fold for p in ff] == [0] * 4 + [1] * 4
    assert [p.same for p in ff[:4]] == [True, True, False, False]
    a, b = ff[1].path_a, ff[1].path_b  # "4,6": person 002 frontal 01 and 03
    assert (a.parts[-3:], b.parts[-3:]) == (("002", "frontal", "01.jpg"),
                                            ("002", "frontal", "03.jpg"))
    a, b = fp[1].path_a, fp[1].path_b  # "4,3": person 002 frontal 01, profile 01
    assert (a.parts[-3:], b.parts[-3:]) == (("002", "frontal", "01.jpg"),
                                            ("002", "profile", "01.jpg"))
    assert all(p.path_a.is_file() and p.path_b.is_file() for p in ff + fp)
    assert all((p.path_a.parts[-3] == p.path_b.parts[-3]) == p.same for p in ff + fp)


@pytest.mark.parametrize("bad", ["xx", "fpp", ""])
def test_bad_protocol_names_are_refused_naming_the_key(tmp_path: Path, bad: str) -> None:
    root = make_cfp(tmp_path / "cfp")
    with pytest.raises(ValueError, match=f"CFP protocol must be one of ff, fp.*got '{bad}'"):
        cfp_pairs(root, bad)
    with pytest.raises(ValueError, match=f"got '{bad}'"):
        CleanOptions(protocol=bad)
    with pytest.raises(ValueError, match="got 'ffx'"):
        protocol_label("ffx")


def test_bad_protocol_lines_name_file_and_line(tmp_path: Path) -> None:
    root = make_cfp(tmp_path / "cfp")
    (root / "Protocol" / "Split" / "FP" / "02" / "diff.txt").write_text("1,3\n7;8\n")
    with pytest.raises(ValueError, match=r"FP/02/diff.txt:2: expected 'i,j'"):
        cfp_pairs(root, "fp")
    (root / "Protocol" / "Split" / "FF" / "01" / "same.txt").write_text("1,99\n")
    with pytest.raises(ValueError, match=r"same.txt:1: image number 99 is not"):
        cfp_pairs(root, "ff")


def test_open_dataset_reads_cfp_with_its_protocol(tmp_path: Path) -> None:
    root = make_cfp(tmp_path / "cfp")
    assert detect_layout(root) == "cfp"
    ds = open_dataset(root)
    assert ds.layout == "cfp" and len(ds.people) == PEOPLE and ds.n_images == PEOPLE * 5
    assert ds.pairs == cfp_pairs(root, "ff")
    fp = open_dataset(root, protocol="fp")
    assert fp.pairs == cfp_pairs(root, "fp")
    assert protocol_pairs(fp, None, 0)[1] == "CFP-FP"
    lfw = tmp_path / "lfw"
    (lfw / "images").mkdir(parents=True)
    (lfw / "pairs.txt").write_text("1 1\nA 1 2\nA 1 B 1\n")
    with pytest.raises(ValueError, match="protocol 'fp' applies to CFP only"):
        open_dataset(lfw, protocol="fp")


def test_lfw_color_and_cfp_resolve_under_the_data_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    monkeypatch.setenv("FACEROBUST_DATA", str(data))
    with pytest.raises(FileNotFoundError, match="dataset 'cfp' not found") as err:
        resolve_dataset("cfp")
    assert "data fetch lfw" not in str(err.value)
    make_cfp(data / "cfp")
    (data / "lfw-color" / "images").mkdir(parents=True)
    assert resolve_dataset("cfp") == data / "cfp"
    assert resolve_dataset("lfw-color") == data / "lfw-color"
    assert resolve_dataset("lfw-colour") == data / "lfw-color"
    assert resolve_dataset("cfp", data) == data / "cfp"
    assert resolve_dataset("cfp", data / "cfp") == data / "cfp"


@pytest.mark.data
def test_real_cfp_protocols(data_root: Path) -> None:
    root = data_root / "cfp"
    if not (root / "Protocol").is_dir():
        pytest.skip(f"{root} has no CFP protocol")
    for key in ("ff", "fp"):
        pairs = cfp_pairs(root, key)
        assert len(pairs) == 7000 and sum(p.same for p in pairs) == 3500
        assert sorted({p.fold for p in pairs}) == list(range(10))
        assert all((p.path_a.parts[-3] == p.path_b.parts[-3]) == p.same for p in pairs)
        second = {p.path_b.parent.name for p in pairs}
        assert second == ({"frontal"} if key == "ff" else {"profile"})
    people, train = cfp_people(root), training_people(root)
    assert len(people) == 500 and all(len(v) == 14 for v in people.values())
    assert len(train) == 500 - len(lfw_overlap(root)) == 328


def test_cfp_protocol_names_pick_the_protocol(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    make_cfp(data / "cfp")
    monkeypatch.setenv("FACEROBUST_DATA", str(data))
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    assert resolve_dataset("cfp-fp") == resolve_dataset("cfp-ff") == data / "cfp"
    assert (dataset_protocol("cfp-fp"), dataset_protocol("cfp"), dataset_protocol("lfw")) \
        == ("fp", None, None)
    assert DataSource(dataset="cfp-fp").open().pairs == cfp_pairs(data / "cfp", "fp")
    assert DataSource(dataset="cfp").open().pairs == cfp_pairs(data / "cfp", "ff")
    assert main(["eval-clean", "--dataset", "cfp-fp", "--protocol", "ff",
                 "--out", str(tmp_path / "o")]) == 2


def test_held_out_pairs_keep_only_people_no_training_uses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_cfp(tmp_path / "cfp")
    # per fold: same 001, same 002, diff 001-002, diff 003-004; held out: 002 and 004
    for key in ("ff", "fp"):
        kept = held_out_pairs(root, cfp_pairs(root, key))
        assert [(p.fold, p.same) for p in kept] == [(0, True), (1, True)]
        assert all(set(pair_person_ids(p)) <= lfw_overlap(root) for p in kept)
        assert not set(pair_person_ids(kept[0])) & set(training_people(root))
    chosen, label = protocol_pairs(open_dataset(root, protocol="fp"), None, 0, held_out=True)
    assert label == "CFP-FP held-out people" and len(chosen) == 2
    lfw = tmp_path / "lfw"
    for name in ("A_0001", "A_0002", "B_0001"):
        (lfw / "images" / name[0]).mkdir(parents=True, exist_ok=True)
        (lfw / "images" / name[0] / f"{name}.jpg").write_bytes(b"x")
    (lfw / "pairs.txt").write_text("1 1\nA 1 2\nA 1 B 1\n")
    with pytest.raises(ValueError, match="held_out applies to CFP only.*lfw layout"):
        protocol_pairs(open_dataset(lfw), None, 0, held_out=True)
    with pytest.raises(TypeError, match="held_out must be True or False, got 'yes'"):
        CleanOptions(held_out="yes")  # type: ignore[arg-type]
    assert main(["eval-clean", "--data", str(lfw), "--held-out",
                 "--out", str(tmp_path / "o")]) == 2
    assert "held_out applies to CFP only" in capsys.readouterr().err
