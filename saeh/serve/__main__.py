"""`python -m saeh.serve ...`: the same as `saeh serve ...` (`saeh.cli.serve`)."""

if __name__ == "__main__":
    import sys

    from saeh.cli import run
    from saeh.cli.serve import main

    sys.argv[0] = "saeh serve"  # error lines are named after the command
    sys.exit(run(main))
