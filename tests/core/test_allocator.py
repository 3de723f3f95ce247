"""The allocator setting inference jobs make (glibc's mallopt)."""

import platform

import pytest

from metaflood.core.allocator import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_keeping_freed_memory():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # asked once per process
