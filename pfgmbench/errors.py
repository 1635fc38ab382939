"""User-facing errors: one line naming the problem and the fix, exit code 2."""


class UserError(Exception):
    """Bad input from the user (preset, D, data set, checkpoint, --set key...).

    The CLI prints `error: <message>` on one line and exits with code 2.
    """
