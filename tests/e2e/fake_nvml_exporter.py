"""The exporter with FakeNvml in place of the real `pynvml`, for e2e stacks on hosts without a GPU.

    python fake_nvml_exporter.py CONTROL_FILE exporter --config tts-sentinel.yml

builds one FakeNvml (one GPU), hands it to the exporter through `load_nvml` (the one place
the exporter loads the real binding), runs `tts-sentinel exporter ...` and follows
CONTROL_FILE: each JSON line is played to the fake as the driver would report it:
`{"xid": [gpu_index, xid]}` (an event to every set registered for it) or `{"lose": gpu_index}`.
A line that is not one of these is logged and skipped.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exporter"))
from fake_nvml import FakeNvml  # noqa: E402

import tts_sentinel.exporter.gpu as gpu  # noqa: E402
from tts_sentinel.cli import main  # noqa: E402

log = logging.getLogger("fake_nvml_exporter")


def follow(control: Path, nvml: FakeNvml) -> None:
    """Play each new line of `control` to the fake, forever (a daemon thread)."""
    offset = 0
    while True:
        if control.exists():
            data = control.read_bytes()
            end = data.rfind(b"\n") + 1
            for line in data[offset:end].decode(errors="replace").splitlines():
                try:
                    order = json.loads(line)
                    if "xid" in order:
                        index, xid = order["xid"]
                        nvml.xid(int(index), int(xid))
                    elif "lose" in order:
                        nvml.lose(int(order["lose"]))
                    else:
                        raise ValueError("neither xid nor lose")
                    log.info("played %s", line)
                except (ValueError, TypeError, IndexError, KeyError) as exc:
                    log.error("skipped control line %r: %s", line, exc)
            offset = max(offset, end)
        time.sleep(0.1)


if __name__ == "__main__":
    control_file, argv = Path(sys.argv[1]), sys.argv[2:]
    fake = FakeNvml()
    gpu.load_nvml = lambda: fake
    threading.Thread(target=follow, args=(control_file, fake), daemon=True).start()
    sys.exit(main(argv))
