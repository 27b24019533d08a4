import numpy as np
import pytest

from mlrepro.classic import read_csv
from mlrepro.errors import InputError


def write(tmp_path, text, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_reads_features_and_target(tmp_path):
    path = write(tmp_path, "size, rooms ,price\n1000,2,200000\n1500,3,275000.5\n\n2000,4,350000\n")
    X, y, names = read_csv(path, target="price")
    assert names == ["size", "rooms"]
    np.testing.assert_array_equal(X, [[1000, 2], [1500, 3], [2000, 4]])
    np.testing.assert_array_equal(y, [200000, 275000.5, 350000])
    assert X.dtype == np.float64 and X.flags.c_contiguous


def test_without_target_and_with_chosen_columns(tmp_path):
    path = write(tmp_path, "a,b,c\n1,2,3\n4,5,6\n")
    X, y, names = read_csv(path)
    assert y is None and names == ["a", "b", "c"] and X.shape == (2, 3)
    X, y, names = read_csv(path, target="a", columns=["c", "b"])
    assert names == ["c", "b"]
    np.testing.assert_array_equal(X, [[3, 2], [6, 5]])
    np.testing.assert_array_equal(y, [1, 4])


def test_byte_order_mark_and_scientific_notation(tmp_path):
    path = write(tmp_path, "x,y\n1e3,-2.5E-1\n", encoding="utf-8-sig")
    X, y, names = read_csv(path, target="y")
    assert names == ["x"] and X[0, 0] == 1000.0 and y[0] == -0.25


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("", {}, "empty file; expected a header row"),
        ("\n\n", {}, "empty file"),
        ("a,b\n", {}, "header only, no data rows"),
        ("a,b\n1,2\n", {"target": "price"}, "unknown target column 'price'; available: a, b"),
        ("a,b\n1,2\n", {"columns": ["z"]}, "unknown column 'z'; available: a, b"),
        ("a,b\n1,2\n", {"target": "a", "columns": ["a"]}, "target column 'a' is also listed"),
        ("a\n1\n", {"target": "a"}, "no feature columns left"),
        ("a,b\n1,2\n3,oops\n", {}, r"row 2 \(line 3\), column 'b': 'oops' is not a finite number"),
        ("a,b\n1,\n", {}, r"row 1 \(line 2\), column 'b': an empty cell is not a finite number"),
        ("a,b\nnan,2\n", {}, "column 'a': 'nan' is not a finite number"),
        ("a,b\n1,2\n3\n", {}, r"row 2 \(line 3\) has 1 fields, expected 2"),
        ("a,b\n1,2,3\n", {}, r"row 1 \(line 2\) has 3 fields, expected 2"),
        ("a,a\n1,2\n", {}, "repeats column name"),
        ("a,\n1,2\n", {}, "empty column name"),
    ],
)
def test_bad_files_are_one_line_errors_naming_the_file(tmp_path, text, kwargs, message):
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as err:
        read_csv(path, **kwargs)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a directory"):
        read_csv(tmp_path)


def test_binary_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        read_csv(path)
