"""`python -m loraledger ARGS` runs the same entry point as the `loraledger` console script."""

from loraledger.api.cli import main

if __name__ == "__main__":
    main()
