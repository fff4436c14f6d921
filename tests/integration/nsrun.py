"""Run a command as a factory host inside a network namespace (test helper).

    ip netns exec NS unshare --uts --mount python -m tests.integration.nsrun \
        HOSTNAME HOSTS_FILE -- COMMAND...

Sets the UTS host name, bind-mounts HOSTS_FILE over /etc/hosts (private mount namespace,
so the host's file is untouched) and execs COMMAND.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def main(argv) -> int:
    hostname, hosts_file, sep, *command = argv
    if sep != "--" or not command:
        print("usage: nsrun HOSTNAME HOSTS_FILE -- COMMAND...", file=sys.stderr)
        return 2
    socket.sethostname(hostname)
    subprocess.run(["mount", "--bind", hosts_file, "/etc/hosts"], check=True)
    os.execvp(command[0], command)
    return 127   # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
