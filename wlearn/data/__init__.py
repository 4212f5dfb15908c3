"""Datasets: embedded defaults that ship with the repository or an installed
package, and loaders for the full data that ``data_scripts/`` prepares."""

from wlearn.data._common import DATA_ROOT, full_data_missing
from wlearn.data.mnist import (
    DigitData,
    load_digit_data,
    load_digits,
    load_mnist,
    load_mnist5k,
    read_idx,
)
from wlearn.data.ordinal import (
    OrdinalData,
    RotatedDigits,
    load_anes96_party,
    load_diabetes_ordinal,
    load_rotated_digits,
    rotate_images,
    rotated_digits,
)

__all__ = [
    "DATA_ROOT",
    "full_data_missing",
    "DigitData",
    "load_digit_data",
    "load_digits",
    "load_mnist",
    "load_mnist5k",
    "read_idx",
]
__all__ += ["OrdinalData", "load_anes96_party", "load_diabetes_ordinal"]
__all__ += ["RotatedDigits", "load_rotated_digits", "rotate_images", "rotated_digits"]

from wlearn.data.tags import TagData, load_tags  # noqa: E402

__all__ += ["TagData", "load_tags"]
