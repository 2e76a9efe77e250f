"""nasseg command line (placeholder until the orchestrator lands)."""
import sys


def main(argv: list[str] | None = None) -> int:
    print("nasseg: the search command is not implemented yet", file=sys.stderr)
    return 2
