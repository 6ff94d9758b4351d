"""Checks of users' tables: one line naming file, line, column and fix."""

import pandas as pd
import pytest

from brainexpr.datasets.validate import (close_names, describe_unknown, numeric_columns,
                                         read_name_list, read_user_table)
from brainexpr.errors import InputError


def test_close_names_ignore_case():
    assert close_names("apoe", ["APOE", "APOC1", "MAPT"])[0] == "APOE"
    assert close_names("MAPTT", ["APOE", "MAPT"]) == ["MAPT"]
    assert close_names("ZZZ", ["APOE"]) == []
    assert describe_unknown(["apoe"], ["APOE"], "the model") == \
        "1 gene(s) not in the model: apoe (closest: APOE)"


@pytest.mark.parametrize("content,message", [
    ("", "is empty"),
    ("a;b;c\n1;2;3\n", "semicolon-separated, expected comma-separated"),
    ("a,b,a\n1,2,3\n", "column 'a' appears twice (columns 1 and 3)"),
    ("a,b\n", "has a header but no data rows"),
    ("a,b\n1,2\n3,4,5\n", "as many cells as the header"),
])
def test_bad_tables(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_user_table(path, "table", sep=",")


def test_binary_and_duplicated_rows(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"\x00\x01\x02")
    with pytest.raises(InputError, match="binary file"):
        read_user_table(tmp_path / "b.csv")
    (tmp_path / "r.csv").write_text("region,v\nA,1\nB,2\nA,3\n")
    with pytest.raises(InputError, match="line 4: row name 'A' appears more than once"):
        read_user_table(tmp_path / "r.csv", index_col=0)


def test_numeric_columns_name_line_and_column(tmp_path):
    table = pd.DataFrame({"g": ["1", "x", "2"], "h": ["1", "1e308", "inf"]})
    with pytest.raises(InputError, match=r"f.csv, line 3, column 'g': 'x' is not a number"):
        numeric_columns(table, ["g"], "f.csv")
    with pytest.raises(InputError, match=r"line 3, column 'h': value 1e308 is not finite"):
        numeric_columns(table, ["h"], "f.csv")
    values = numeric_columns(pd.DataFrame({"g": ["1", None]}), ["g"], "f.csv")
    assert values["g"].isna().tolist() == [False, True]
    with pytest.raises(InputError, match="the value is missing"):
        numeric_columns(pd.DataFrame({"g": ["1", None]}), ["g"], "f.csv", allow_missing=False)


def test_name_list(tmp_path):
    (tmp_path / "g.txt").write_text("APOE\n\nMAPT\nAPOE\n")
    assert read_name_list(tmp_path / "g.txt") == ["APOE", "MAPT"]


def test_check_choice_names_the_allowed_values_and_the_closest():
    from brainexpr.datasets.validate import check_choice, check_choices

    assert check_choice("knn", ("kriging", "knn"), "model") == "knn"
    assert check_choice(None, (None, "srs"), "gene_norm") is None
    with pytest.raises(InputError, match=r"^model must be one of 'kriging', 'knn', got 'krigin' "
                                         r"\(did you mean 'kriging'\?\)$"):
        check_choice("krigin", ("kriging", "knn"), "model")
    with pytest.raises(InputError, match=r"mask must be one of 'brain' or a NIfTI file, got "
                                         r"'zzz'$"):
        check_choice("zzz", ("brain",), "mask", or_else="a NIfTI file")
    with pytest.raises(ValueError, match="got 3$") as info:
        check_choice(3, (1, 2), "resolution", error=ValueError)
    assert not isinstance(info.value, InputError)
    assert check_choices(["png"], ("png", "svg"), "formats") == ["png"]
    with pytest.raises(InputError, match=r"formats must be among 'png', 'svg', got \['sgv'\] "
                                         r"\(did you mean 'svg'\?\)"):
        check_choices(["png", "sgv"], ("png", "svg"), "formats")
    with pytest.raises(InputError, match=r"got \[\]"):
        check_choices([], ("png",), "formats")
