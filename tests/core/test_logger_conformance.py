"""check_logger: passes a logger that keeps the contract, names the first promise a broken one breaks."""

from __future__ import annotations

import pytest

from mmzoo.testing import check_logger
from mmzoo.testing.logger_conformance import sample_records


class Keeper:
    """Keeps every record; only log() is required."""

    def __init__(self, limit: int = 100):
        self.limit = limit
        self.records = []

    def log(self, record):
        self.records.append(record)


class Mutator(Keeper):
    def log(self, record):
        record.pop("time")


class Picky(Keeper):
    """Assumes every record has a loss (evaluation records have none)."""

    def log(self, record):
        self.records.append(float(record["loss"]))


class StartOnly:
    def start(self, run):
        pass


def test_a_logger_with_only_log_passes_and_sees_every_sample_record():
    logger = check_logger(Keeper, {"limit": 3})
    assert logger.records == sample_records()


def test_the_builtin_tensorboard_logger_passes_by_name(tmp_path):
    check_logger("tensorboard", {"log_dir": "events"}, run_dir=tmp_path, resumed_at_step=2)
    assert list((tmp_path / "events").glob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (StartOnly, "StartOnly: a logger needs a log\\(record\\) method"),
        (Mutator, "Mutator: log\\(\\) changed the record it was given"),
        (Picky, "Picky: log \\(step 2, split eval\\) raised KeyError: 'loss'"),
    ],
)
def test_broken_promises_are_named(factory, message):
    with pytest.raises(AssertionError, match=message):
        check_logger(factory)
