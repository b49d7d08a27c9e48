"""Progress on rank 0: a tqdm bar on a terminal, periodic plain lines in logs, nothing elsewhere."""

from __future__ import annotations

import io

from mmzoo.train.progress import Progress


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


def test_logs_get_a_line_every_few_steps_and_at_the_end():
    stream = io.StringIO()
    progress = Progress(120, 0, enabled=True, stream=stream, line_every=50, min_interval=1e9)
    for step in range(1, 121):
        progress.update(step, {"loss": 1.0})
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["50/120", "100/120", "120/120"]
    assert "\r" not in stream.getvalue()


def test_other_ranks_print_nothing():
    stream = Terminal()
    progress = Progress(5, 0, enabled=False, stream=stream)
    progress.update(5, {"loss": 1.0})
    progress.message("hello")
    progress.close()
    assert stream.getvalue() == ""
