"""The tutorials' exercise runner: a stub is a reminder, a wrong attempt fails, a right one passes."""

import pytest

from toy_envs.exercises import try_exercise


def _check_double(fn):
    for x in (0, 1, 5):
        assert fn(x) == 2 * x, f"x={x}: got {fn(x)}, want {2 * x}"


def test_a_stub_prints_a_reminder(capsys):
    def my_double(x):
        raise NotImplementedError("your code here")

    assert try_exercise(_check_double, my_double) is False
    assert "my_double is not written yet" in capsys.readouterr().out


def test_a_wrong_attempt_fails_with_the_checks_message():
    with pytest.raises(AssertionError, match="x=1: got 1, want 2"):
        try_exercise(_check_double, lambda x: x)


def test_a_right_attempt_passes():
    assert try_exercise(_check_double, lambda x: x + x) is True


def test_arguments_must_be_functions():
    with pytest.raises(TypeError, match="two functions"):
        try_exercise(_check_double, 3)
