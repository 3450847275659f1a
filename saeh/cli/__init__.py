"""Command-line entry points behind the thin top-level scripts (`hash_su_ae_train.py`, `generate_hash.py`,
`evaluate.py`). Each module has `main(argv=None) -> int`."""

import os
import sys

from saeh.errors import SaehError


def run(main, argv=None, **kwargs):
    """Call `main(argv, **kwargs)`; print a user's mistake (`SaehError`) as one line on stderr and return 2.

    Bugs keep their traceback: only errors we raise on purpose are shortened.
    """
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU features) hides the useful output; warnings stay.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return main(argv, **kwargs) or 0
    except SaehError as error:
        program = os.path.basename(sys.argv[0]) or "saeh"
        print(f"{program}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
