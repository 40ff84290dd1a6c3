"""Settings for the whole suite.

Several tests press Ctrl-C on a command they started (SIGINT) and check that it stops where
the store is consistent. A suite started in the background by a shell without job control
inherits SIGINT ignored, and so would those commands: Python keeps an ignored SIGINT ignored,
as a background job should, and the command would never see the Ctrl-C. The suite takes
SIGINT back, so the commands it starts get it as a terminal would send it.
"""

from __future__ import annotations

import signal

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
