"""A full disk while taking an output's lock: a clear error naming the option, and no lock file left."""

import errno
import os

import pytest

from gen.errors import GenError
from gen.outputs import output_lock


def test_no_room_for_the_lock_owner_is_a_clear_error_and_leaves_no_lock(tmp_path, monkeypatch):
    def full(fd, data, offset):  # the one fault a test may inject: a disk that is full (none can be made here)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", full)
    out = tmp_path / "runs" / "ddpm"
    for option in ("--out", "--out"):  # twice: the first leaves nothing that would refuse the second
        with pytest.raises(GenError, match=r"--out .*ddpm: cannot write .ddpm.lock beside it \(No space left on device\); free some space"):
            with output_lock(out, option):
                pytest.fail("the block must not run without a lock")
    assert list((tmp_path / "runs").iterdir()) == []
