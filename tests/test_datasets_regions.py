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
