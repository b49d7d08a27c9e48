"""Progress on rank 0: a tqdm bar on a terminal, one plain line per logged step in logs, nothing elsewhere."""

from __future__ import annotations

import io

from mmzoo.train.progress import Progress, batches_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_bar_with_loss_and_throughput():
    stream = Terminal()
    progress = Progress(10, 0, enabled=True, stream=stream)
    for step in range(1, 11):
        progress.update(step, {"loss": 0.5, "samples/s": 123.4} if step % 5 == 0 else {})
    progress.message("step 10 eval: accuracy 0.9")
    progress.close()
    text = stream.getvalue()
    assert "10/10" in text and "loss=0.5" in text and "samples/s=123.4" in text
    assert "step 10 eval: accuracy 0.9" in text


def test_logs_get_one_line_per_logged_step_and_nothing_else():
    stream = io.StringIO()
    progress = Progress(12, 0, enabled=True, stream=stream)
    for step in range(1, 13):
        logged = step % 5 == 0 or step == 12  # what the trainer passes: stats on log_every steps and the last
        progress.update(step, {"loss": 1.0, "samples/s": 80.0} if logged else {})
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["5/12", "10/12", "12/12"]
    assert all("loss 1" in line and "samples/s 80" in line for line in lines)
    assert "\r" not in stream.getvalue()


def test_eval_bar_on_a_terminal_and_nothing_in_a_log():
    batches = list(range(7))
    terminal = Terminal()
    assert list(batches_bar(batches, desc="eval", enabled=True, stream=terminal)) == batches
    assert "eval:" in terminal.getvalue() and "/7 [" in terminal.getvalue()  # a bar over the 7 batches
    log = io.StringIO()
    assert list(batches_bar(batches, desc="eval", enabled=True, stream=log)) == batches
    assert log.getvalue() == ""
    quiet = Terminal()
    assert list(batches_bar(batches, desc="eval", enabled=False, stream=quiet)) == batches
    assert quiet.getvalue() == ""


def test_other_ranks_print_nothing():
    stream = Terminal()
    progress = Progress(5, 0, enabled=False, stream=stream)
    progress.update(5, {"loss": 1.0})
    progress.message("hello")
    progress.close()
    assert stream.getvalue() == ""
