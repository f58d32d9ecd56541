#!/usr/bin/env python3
"""subreaper.py COMMAND [ARG...]: run COMMAND as a child subreaper's child.

ipmi_sim's chassis script starts the machine (QEMU) in the background and exits, so
the machine is orphaned. Orphans normally go to PID 1, which in a container may never
reap them: an exited QEMU then stays a zombie, and "is it still running?" (kill -0)
says yes. As a child subreaper (prctl PR_SET_CHILD_SUBREAPER) this process adopts
those orphans and reaps them at once.

SIGTERM/SIGINT/SIGHUP are passed to COMMAND; the exit status is COMMAND's.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("subreaper: prctl: %s" % os.strerror(ctypes.get_errno()), file=sys.stderr)
        return 1
    child = os.fork()
    if child == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        finally:
            os._exit(127)

    def forward(sig, _frame):
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    status = 1
    while True:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            return status
        except InterruptedError:
            continue
        if pid == child:
            status = os.waitstatus_to_exitcode(st)
            if status < 0:
                status = 128 - status
            # Adopted orphans still running (a machine left on) are not ours to
            # wait for: the caller kills them by their pid files.
            return status


if __name__ == "__main__":
    sys.exit(main())
