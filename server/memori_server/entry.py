"""Console entry point: explains a missing `[server]` extra instead of a traceback."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from memori_server.cli import main as cli_main
    except ImportError as error:
        print(
            f"memori-server: {error.name or 'a server dependency'} is not installed; "
            "install the server with: pip install 'memori-grpc[server]'",
            file=sys.stderr,
        )
        return 1
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
