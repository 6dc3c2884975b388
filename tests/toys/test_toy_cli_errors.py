"""The toy CLI names the option at fault (issue 14.5): an env keyword the env does not take is a one-line
error naming --env-kwargs, exit status 2, no traceback."""

from toy_envs.train import main


def test_unknown_env_kwarg_names_the_option(tmp_path, capsys):
    code = main(["--env", "toy_envs/KeyDoor-v0", "--env-kwargs", '{"foo": 1}', "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: --env-kwargs {\"foo\": 1}: toy_envs/KeyDoor-v0 does not accept them"), err
    assert "'foo'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_env_kwargs_that_are_not_a_json_object_name_the_option(capsys):
    code = main(["--env-kwargs", "[1, 2]"])
    err = capsys.readouterr().err
    assert code == 2 and "env_kwargs" in err and "Traceback" not in err, err
