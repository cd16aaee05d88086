import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["pytester"]  # tests/test_pytest_plugin.py runs pytest on example scenario tests


def pytest_collection_modifyitems(config, items):
    # `-p no:blkrace` (or a checkout run without installing blkrace) leaves the
    # tests built on the plugin's fixture without it: skip them and say why.
    if config.pluginmanager.has_plugin("blkrace"):
        return
    import pytest

    skip = pytest.mark.skip(reason="the blkrace pytest plugin is not loaded (-p no:blkrace, or blkrace not installed)")
    for item in items:
        if "blkrace_check" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)
