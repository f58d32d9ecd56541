"""Runs sushy-tools' Redfish emulator for slipway's Redfish driver tests.

Usage: python sushy-launch.py SUSHY-EMULATOR-ARGS...

The same as the `sushy-emulator` command, except that the fake driver applies a
power change after 1 s instead of after a random 1-11 s, so the tests can wait
for each change in bounded, short time (power changes stay asynchronous, as on a
real BMC), and the emulator logs each action it performs.
"""
import logging
import sys

from sushy_tools.emulator.resources.systems import fakedriver


class _OneSecond:
    """Stands in for the `random` module inside the fake driver."""

    @staticmethod
    def randint(_low, _high):
        return 1


fakedriver.random = _OneSecond

# Log each Redfish action ("System ... power state set to ...") so the tests can
# see which requests arrived, in order.
logging.getLogger("sushy_tools.emulator.main").setLevel(logging.INFO)

from sushy_tools.emulator.main import main  # noqa: E402

sys.argv[0] = "sushy-emulator"
sys.exit(main())
