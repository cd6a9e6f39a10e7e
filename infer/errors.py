"""The exceptions genuine's library raises; library code never exits the process.

    from genuine.infer.errors import GenuineError, UsageError
    raise UsageError(f"{root}: no photos in the test split")

Every error names the file or argument and the reason, in words a user can act on. The CLI turns any GenuineError
into its message on stderr and exit code 2 (`inspect` and `scan` give a model that cannot be used exit code 4);
anything else is a bug and keeps its traceback.
"""


class GenuineError(Exception):
    """Base of every error the library raises on purpose."""


class UsageError(GenuineError, ValueError):
    """Arguments or data that cannot be used as given: an empty split, an output folder that holds something else,
    a run folder of another model. The message says what to do instead."""
