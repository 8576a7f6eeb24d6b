"""What goes into CSV downloads people open in spreadsheets."""


def csv_cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (usernames and notes are free
    text): text starting with = + - @ or a tab/return gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
