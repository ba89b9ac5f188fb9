"""User-facing errors: one exception type the CLI turns into a one-line message and exit code 2."""


def flag(name: str) -> str:
    """The CLI flag of an option or argument name: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


def with_article(name: str) -> str:
    """`name` with its article, as read aloud: a gan, a vae, an ae, an sd (ess-dee) bundle, an unconditional ddpm."""
    return f"{'an' if name[:1].lower() in 'aeio' or name.lower().startswith(('sd', 'un')) else 'a'} {name}"


def agree(items, one: str, many: str) -> str:
    """The verb (or pronoun) that agrees with a list of refused options: one for one, many for more."""
    return one if len(items) == 1 else many


def shown(value, limit: int = 80) -> str:
    """A value as an error message shows it: its repr where that says what it is (numbers, text, short
    lists), else what it is (`a BytesIO`, not `<_io.BytesIO object at 0x7f...>`); cut at `limit`."""
    text = repr(value)
    if " object at 0x" in text or (text.startswith("<") and text.endswith(">")):
        return f"{with_article(type(value).__name__)}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


class GenError(Exception):
    """A problem the user can fix (bad argument, bad file); the message says what and how.
    `argument` names the generate() argument at fault where there is one (the demo's 422 says it)."""

    def __init__(self, message: str = "", argument: str | None = None):
        super().__init__(message)
        self.argument = argument
