"""experiments.table2: the published figure beside ours, mean ± std (ddof 1) and every seed."""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import table2


def _protocol(tests):
    full = {str(s): {"test_error": t, "train_error": 0.01 * (s + 1)} for s, t in enumerate(tests)}
    return {"config": {"full": {"flags": ["--val-split", "5000", "--epochs", "2"]}},
            "arms": {"1FC 784-500-10": {"chosen_factor": 2.0, "base_lrs": [0.2, 0.08], "full": full},
                     "not a Table II row": {"chosen_factor": 1.0, "base_lrs": [0.1], "full": {}}}}


def test_rows(tmp_path, capsys):
    tests = [0.031, 0.029, 0.034]
    from experiments.headline import at_equal_epochs
    seeds = {str(s): {"epochs": 2, "history": [
        {"val_error": 0.05, "test_error": 0.04, "train_error_on_the_fly": 0.05},
        {"val_error": 0.03, "test_error": t, "train_error_on_the_fly": 0.03}]}
        for s, t in enumerate([0.02, 0.021, 0.019])}
    seeds["1"]["epochs"] = 3           # one seed an epoch ahead: the row is taken at epoch 2
    seeds["1"]["history"].append({"val_error": 0.01, "test_error": 0.005, "train_error_on_the_fly": 0.01})
    headline = {"name": "mnist-medium-drop0.1", "total_epochs": 20, "seeds": seeds,
                "equal_epochs": at_equal_epochs(seeds),
                "flags": ["--preset", "mnist-medium", "--lr-schedule", "step", "--lr-step-epochs", "20",
                          "--lr-gamma", "0.1"]}
    p, h = tmp_path / "p.json", tmp_path / "h.json"
    p.write_text(json.dumps(_protocol(tests)))
    h.write_text(json.dumps(headline))
    assert table2.main(["--protocol", str(p), "--headline", str(h), "--paper-ms", "100"]) == 0
    out = capsys.readouterr().out.splitlines()
    fc = next(line for line in out if line.startswith("| 1FC"))
    m, s = np.mean(tests), np.std(tests, ddof=1)
    assert f"**{100 * m:.2f} ± {100 * s:.2f}**" in fc and "3.10 / 2.90 / 3.40" in fc
    assert "2.37 / 0.15" in fc and "x2 = 0.4,0.16" in fc
    conv = next(line for line in out if line.startswith("| 2C1FC"))
    assert "`mnist-medium-drop0.1`: x1 = 0.2,0.15,0.08 (pilots), x0.1 per 20 epochs" in conv
    assert "1.02 / 0.54" in conv and "2 of 20 (partial)" in conv and "2.00 / 2.10 / 1.90" in conv
    paper = next(line for line in out if line.startswith("| 2C2FC"))
    assert "1.7 h per 60,000-image epoch" in paper       # 60,000 x 100 ms
    assert not any("not a Table II row" in line for line in out)


def test_the_paper_row_from_a_partial_run(tmp_path, capsys):
    """A 2C2FC run of one seed, 2 of the paper's 250 epochs: its figure, marked partial and
    single-seed (no ± from one seed), and what the epochs left would take."""
    seeds = {"0": {"epochs": 2, "history": [
        {"val_error": 0.05, "test_error": 0.045, "train_error_on_the_fly": 0.08},
        {"val_error": 0.03, "test_error": 0.0312, "train_error_on_the_fly": 0.04}]}}
    # as --report writes it for 1 of 3 planned seeds: no "equal_epochs"
    paper = {"name": "paper-mnist", "total_epochs": 250, "seeds": seeds,
             "flags": ["--preset", "paper-mnist"]}
    p, h = tmp_path / "p.json", tmp_path / "paper.json"
    p.write_text(json.dumps(_protocol([0.03, 0.03, 0.03])))
    h.write_text(json.dumps(paper))
    assert table2.main(["--protocol", str(p), "--paper-headline", str(h), "--paper-ms", "60"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| 2C2FC"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1] == "Lin, Bal, Sengupta 2024 (float32, 250 epochs): 0.97 / -"
    assert cells[2].startswith("`paper-mnist`: the paper's rates 0.25,0.15,0.1,0.08, constant")
    # 60,000 x 60 ms = 1.0 h per epoch; 248 epochs left = 10.3 days
    assert "1.0 h per 60,000-image epoch, 10 days for the 248 epochs left" in cells[2]
    assert cells[3] == "2 of 250 (partial)" and cells[4] == "-"
    assert cells[5] == "3.12 (seed 0 only)" and cells[6] == "4.00"


def _fc_report(name, arch, tests, epochs_done, total=30):
    """An FC row's run at length as ``--report`` writes it (every seed at ``epochs_done``)."""
    from experiments.headline import at_equal_epochs
    seeds = {str(s): {"epochs": epochs_done, "history": [
        {"val_error": 0.03 - 0.001 * e, "test_error": t + 0.001 * (epochs_done - 1 - e),
         "train_error_on_the_fly": 0.02} for e in range(epochs_done)]}
        for s, t in enumerate(tests)}
    return {"name": name, "total_epochs": total, "seeds": seeds, "equal_epochs": at_equal_epochs(seeds),
            "flags": ["--preset", "mnist-small", "--arch", arch, "--lrs", "0.4,0.16",
                      "--lr-schedule", "step", "--lr-step-epochs", "20", "--lr-gamma", "0.1"]}


def test_an_fc_row_at_length_sits_under_its_short_row(tmp_path, capsys):
    """The FC runs at length: the last epoch every seed has finished (its best-on-validation
    weights: here the last epoch, validation falling), mean ± std and each seed, under the
    sweep's short row; partial before the planned total."""
    p, fc = tmp_path / "p.json", tmp_path / "fc.json"
    p.write_text(json.dumps(_protocol([0.031, 0.029, 0.034])))
    fc.write_text(json.dumps(_fc_report("table2-1fc-e30", "1x28x28:f500-f10", [0.021, 0.019, 0.020], 12)))
    assert table2.main(["--protocol", str(p), "--fc-headline", str(fc)]) == 0
    out = capsys.readouterr().out.splitlines()
    i = next(k for k, line in enumerate(out) if line.startswith("| 1FC"))
    short, long_ = out[i], out[i + 1]
    assert "| 2 |" in short and long_.startswith("| 1FC 784-500-10 | O'Connor et al. [8]: 2.37 / 0.15")
    cells = [c.strip() for c in long_.split("|")[1:-1]]
    assert cells[2] == "`table2-1fc-e30`: 0.4,0.16 (the row's sweep), x0.1 per 20 epochs (pilots)"
    assert cells[3] == "12 of 30 (partial)"
    assert cells[4] == f"**{100 * np.mean([0.021, 0.019, 0.020]):.2f} ± {100 * np.std([0.021, 0.019, 0.020], ddof=1):.2f}**"
    assert cells[5] == "2.10 / 1.90 / 2.00" and cells[6] == "2.00"


def test_an_fc_report_of_another_network_is_refused(tmp_path, capsys):
    p, fc = tmp_path / "p.json", tmp_path / "fc.json"
    p.write_text(json.dumps(_protocol([0.031, 0.029, 0.034])))
    fc.write_text(json.dumps(_fc_report("x", "1x28x28:f100-f10", [0.02] * 3, 3)))
    with pytest.raises(SystemExit) as e:
        table2.main(["--protocol", str(p), "--fc-headline", str(fc)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "f100-f10" in err[0] and "not a Table II FC row" in err[0]


def test_schedule_words_use_the_clis_defaults_when_a_flag_is_absent():
    # the CLI's documented defaults: --lr-gamma 0.5, --lr-step-epochs 1, --lr-min-factor 0
    assert table2.schedule_of(["--lr-schedule", "step"]) == ", x0.5 per 1 epochs (pilots)"
    assert table2.schedule_of(["--lr-schedule", "cosine"]) == ", cosine to x0"
    assert table2.schedule_of([]) == ""
    assert table2.schedule_of(["--lr-schedule", "step", "--lr-gamma", "0.1", "--lr-step-epochs", "20"]) \
        == ", x0.1 per 20 epochs (pilots)"
