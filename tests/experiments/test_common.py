"""experiments.common: a configuration that cannot be used is one line and exit code 2."""
import json

import pytest

from experiments.common import read_config


@pytest.mark.parametrize("content,needle", [
    (None, "cannot read the configuration"),            # no such file
    ("not json", "cannot read the configuration"),
    ("[1, 2]", "must be a JSON object"),
    ('{"name": "x"}', "configuration has no 'runs'"),
])
def test_bad_configuration_is_one_line_and_exit_2(tmp_path, capsys, content, needle):
    path = tmp_path / "cfg.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        read_config(str(path), None, ("name", "runs"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err


def test_data_root_is_substituted(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"name": "x", "dir": "{data}/mnist"}))
    cfg = read_config(str(path), str(tmp_path), ("name",))
    assert cfg["dir"] == f"{tmp_path}/mnist"
