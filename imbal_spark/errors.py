"""Named errors. Every message names the column, value, class or key that is wrong and says
what to do; jobs print it as one line and exit with code 2."""


class ImbalSparkError(ValueError):
    """Base class of every user-facing error of imbal-spark."""

    exit_code = 2


class ConfigError(ImbalSparkError):
    """A config file or command-line option is unknown, missing or of the wrong type."""


class InputError(ImbalSparkError):
    """The input data is missing, unreadable, empty or does not have the expected shape."""


#: The flag that names a column of each role (by the start of the role's description).
_ROLE_FLAGS = (("label", "--label-col"), ("--by", "--by"), ("feature", "--features"), ("id column", "--id-cols"),
               ("order", "--order-col"), ("partition", "--partition-by"), ("categorical", "--categorical"))


class MissingColumnError(InputError):
    """A column the job needs is not in the input."""

    def __init__(self, column, available, role="column"):
        self.column = column
        shown = ", ".join(available[:20]) + (" ..." if len(available) > 20 else "")
        flag = next((f for r, f in _ROLE_FLAGS if role.startswith(r)), None)
        super().__init__(
            f"{role} {column!r} is not in the input; available columns: {shown}. "
            f"Pass the right name{f' ({flag})' if flag else ''}."
        )


class OutputExistsError(ImbalSparkError):
    """The destination exists and the job was not told to overwrite it."""

    def __init__(self, path):
        self.path = path
        super().__init__(
            f"output {path!r} already exists; pass --mode overwrite to replace it "
            f"or choose another --output"
        )


class EnvironmentError_(ImbalSparkError):
    """The machine lacks something Spark needs (Java 17+)."""
