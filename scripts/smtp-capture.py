#!/usr/bin/python3
"""smtp-capture.py ADDRESS PORT DIR: an SMTP server that keeps every message it accepts as
DIR/<n>.eml, the envelope recipients first (X-Rcpt-To lines), for the cluster (scripts/cluster.sh),
whose hosts' mailers deliver to it. Debian's python3-aiosmtpd; no authentication, no TLS."""
import asyncio
import itertools
import os
import sys

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, folder):
        self.folder = folder
        self.seq = itertools.count(len(os.listdir(folder)) + 1)

    async def handle_DATA(self, server, session, envelope):
        head = "".join("X-Rcpt-To: %s\r\n" % r for r in envelope.rcpt_tos).encode()
        path = os.path.join(self.folder, "%06d.eml" % next(self.seq))
        # Written aside, then renamed: a reader never sees half a message.
        with open(path + ".part", "wb") as f:
            f.write(head + envelope.original_content)
        os.rename(path + ".part", path)
        return "250 kept"


def main():
    address, port, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    controller = Controller(Keep(folder), hostname=address, port=port)
    controller.start()
    print("smtp-capture: listening on %s:%d, keeping messages in %s" % (address, port, folder),
          flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
