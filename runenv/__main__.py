"""Entry point: `python -m runenv` and the `runenv` console script."""

from runenv.cli import main

if __name__ == "__main__":
    main()
