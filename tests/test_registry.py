from typing import Literal

import pytest

from plait.errors import ConfigError
from plait.registry import Registry


def make_registry() -> Registry:
    reg: Registry = Registry("widget")

    @reg.register("square", types=("image",), data_params=("size",))
    def square(size: int, colour: str = "red") -> tuple[int, str]:
        """A square widget."""
        return size, colour

    @reg.register("circle", types=("text",))
    def circle(radius: float = 1.0) -> float:
        return radius

    return reg


def test_build_passes_user_and_data_params():
    reg = make_registry()
    assert reg.build("square", {"colour": "blue"}, size=3) == (3, "blue")
    assert reg.names() == ["circle", "square"]
    assert reg.names("image") == ["square"]
    assert reg.params("square") == ["colour"]  # data params are not the user's
    assert reg.get("square").description == "A square widget."


def test_unknown_name_lists_valid_names_and_suggests():
    with pytest.raises(
        ConfigError, match=r"unknown widget 'sqare'. Did you mean 'square'\? Valid widgets: circle, square"
    ):
        make_registry().get("sqare")


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) radius; valid: colour"):
        make_registry().build("square", {"radius": 2}, size=1)


def test_bad_parameter_value_is_a_config_error():
    reg: Registry = Registry("widget")

    @reg.register("picky")
    def picky(n: int = 1) -> int:
        if n < 0:
            raise ValueError("n must be positive")
        return n

    with pytest.raises(ConfigError, match="rejected its parameters"):
        reg.build("picky", {"n": -1})


def test_a_value_outside_its_literal_lists_the_allowed_ones():
    reg: Registry = Registry("widget")

    @reg.register("shaped")
    class Shaped:
        def __init__(self, stride: Literal[1, 2] = 1, norm: Literal["batch", "none"] = "batch") -> None:
            self.stride, self.norm = stride, norm

    assert reg.build("shaped", {"stride": 2}).stride == 2
    with pytest.raises(ConfigError, match=r"widget 'shaped': stride must be one of 1, 2; got 3"):
        reg.build("shaped", {"stride": 3})
    with pytest.raises(ConfigError, match=r"norm must be one of 'batch', 'none'; got 'layer'"):
        reg.build("shaped", {"norm": "layer"})


def test_double_registration_is_refused():
    reg = make_registry()
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("circle")(lambda: None)
