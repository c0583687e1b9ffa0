import sys

from simulator.cli import main

if __name__ == "__main__":  # process pools (spawn) import this module again
    sys.exit(main())
