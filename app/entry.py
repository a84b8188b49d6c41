"""The ``a2q`` console script. It imports nothing but ``sys`` before it can handle Ctrl-C, so
that an interrupt at any moment, the imports of PyTorch and Amaranth included, ends the
command with one line and exit status 130 (what is being written is left as it was:
:func:`a2q.common.files.atomic_folder`)."""

import sys


def main(argv: list[str] | None = None) -> int:
    try:
        from a2q.app.cli import main as run

        return run(argv)
    except KeyboardInterrupt:
        print("a2q: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
