"""The ``a2q`` console script. It imports nothing but ``sys`` and ``signal`` before it can
handle Ctrl-C (and SIGTERM, handled alike), so that an interrupt at any moment, the imports of
PyTorch and Amaranth included, ends the command with one line and exit status 130 (what is being written is left as it was:
:func:`a2q.common.files.atomic_folder`)."""

import signal
import sys


def _terminated(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminated)  # a kill ends the command as Ctrl-C does
    try:
        from a2q.app.cli import main as run

        return run(argv)
    except KeyboardInterrupt:
        import warnings

        warnings.simplefilter("ignore")  # objects left half-built say nothing at exit
        print("a2q: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
