"""Identity names as the gate accepts them: NFKC-normalised, compared case-folded, without
invisible or bidirectional control characters, in one script, and not a look-alike of an
enrolled name (Cyrillic or Greek letters posing as Latin ones).

>>> identity_key("ALICE") == identity_key("alice")
True
>>> skeleton("\\u0410lice") == skeleton("Alice")  # Cyrillic A
True
"""

from __future__ import annotations

import unicodedata

MAX_IDENTITY = 200
# characters that render as nothing beyond the Unicode categories refused below
INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0")
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})
# scripts that legitimately share one name (Japanese, Korean, Chinese writing)
SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "CJK": "CJK",
                 "IDEOGRAPHIC": "CJK"}
# Cyrillic and Greek letters drawn like Latin ones (Unicode's confusables, the common part)
CONFUSABLE = str.maketrans(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u04bb\u0501\u051b"
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0406\u0408\u0405"
    "\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7"
    "\u03bf\u03b9\u03bd\u03c1",
    "aeopcyxijshdq"
    "ABEKMHOPCTXIJS"
    "ABEZHIKMNOPTYX"
    "oivp")


class BadName(ValueError):
    """An identity name the gate refuses (the message says why)."""


def script_of(ch: str) -> str | None:
    """The script of a letter by its Unicode name (``LATIN``, ``CYRILLIC``, ...), grouped
    for writing systems that mix scripts; ``None`` for digits, spaces and punctuation."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    first = unicodedata.name(ch, "UNKNOWN").split()[0]
    return SCRIPT_GROUPS.get(first, first)


def check_identity(value: str) -> str:
    """``value`` NFKC-normalised and stripped; :class:`BadName` for invisible or control
    characters (e.g. U+200B, U+202E), bad lengths, and letters of two scripts."""
    value = unicodedata.normalize("NFKC", value).strip()
    for ch in value:
        if ch in INVISIBLE or unicodedata.category(ch) in REFUSED_CATEGORIES:
            raise BadName(f"invisible or control character U+{ord(ch):04X} "
                             f"({unicodedata.name(ch, 'unnamed')}) is not allowed in a name")
    if not value or len(value) > MAX_IDENTITY or not value.isprintable():
        raise BadName(f"must be 1-{MAX_IDENTITY} printable characters")
    scripts = sorted({s for s in map(script_of, value) if s is not None})
    if len(scripts) > 1:
        raise BadName(f"mixes letters of the {' and '.join(scripts)} scripts (a look-alike "
                         "of another name?); write the name in one script")
    return value


def identity_key(name: str) -> str:
    """What makes two identity names the same: NFKC, then case-folded."""
    return unicodedata.normalize("NFKC", name).casefold()


def skeleton(name: str) -> str:
    """What a name looks like: confusable letters mapped to Latin, then case-folded."""
    return identity_key(name).translate(CONFUSABLE).casefold()


def resolve(name: str, known: list[str]) -> str:
    """The enrolled spelling of ``name`` (same :func:`identity_key`), else ``name`` itself;
    :class:`BadName` when it only *looks* like an enrolled name."""
    key, look = identity_key(name), skeleton(name)
    for other in known:
        if identity_key(other) == key:
            return other
    for other in known:
        if skeleton(other) == look:
            raise BadName(f"looks like the enrolled identity {other!r} but is spelled with "
                             "other characters")
    return name


__all__ = ["MAX_IDENTITY", "BadName", "check_identity", "identity_key", "resolve",
           "script_of", "skeleton"]
