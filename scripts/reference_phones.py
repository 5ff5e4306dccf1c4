"""Phone numbers with libphonenumber's own answers (Python `phonenumbers`, pinned in the
Makefile), for the comparison test in shared/src/enrich/reference_checks.rs.

Prints JSON: {"version", "cases": [{"input", "region", "valid", "e164", "country", "type"}]}.
The corpus is every example number of every type in every region, written in the ways people
write them (national and international formats, `+`, `00`/`011` dialled from another region,
no spaces, dashes, full-width and Arabic-Indic digits, extensions, a trunk prefix after the
country code), plus near misses (one digit dropped, added or changed). Deterministic.
"""

import json
import sys

import phonenumbers
from phonenumbers import PhoneNumberFormat as F
from phonenumbers import PhoneNumberType as T

TYPES = [
    T.FIXED_LINE, T.MOBILE, T.TOLL_FREE, T.PREMIUM_RATE, T.SHARED_COST, T.VOIP,
    T.PERSONAL_NUMBER, T.PAGER, T.UAN, T.VOICEMAIL,
]
FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def answer(text, region):
    try:
        n = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return {"valid": False, "e164": None, "country": None, "type": "unknown"}
    valid = phonenumbers.is_valid_number(n)
    country = phonenumbers.region_code_for_number(n)
    kind = phonenumbers.number_type(n) if valid else T.UNKNOWN
    return {
        "valid": valid,
        "e164": phonenumbers.format_number(n, F.E164),
        "country": None if country in (None, "001", "ZZ") else country,
        "type": T.to_string(kind).lower(),
    }


def variants(n, region):
    """(text, region) pairs for one example number of `region` (None: non-geographic)."""
    e164 = phonenumbers.format_number(n, F.E164)
    intl = phonenumbers.format_number(n, F.INTERNATIONAL)
    national = phonenumbers.format_number(n, F.NATIONAL)
    cc = str(n.country_code)
    nsn = phonenumbers.national_significant_number(n)
    out = [(e164, None), (intl, None), (intl.replace(" ", "-"), None), (e164.translate(FULL_WIDTH), None)]
    out.append(("+" + cc + " " + nsn.translate(ARABIC_INDIC), None))
    out.append((e164 + ";ext=123", None))
    out.append((intl + " ext. 45", None))
    out.append(("00" + cc + nsn, "DE"))  # 00 is Germany's international prefix
    out.append(("011 " + cc + " " + nsn, "US"))
    out.append(("00" + cc + nsn, None))  # no region: not readable
    if region:
        out.append((national, region))
        out.append((national.replace(" ", ""), region))
        out.append((nsn, region))
        out.append((e164, region))
        prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix
        if prefix:
            # A trunk prefix written after the country code (+1 1 ..., +7 8 ..., +44 0 ...).
            out.append(("+" + cc + " " + prefix + " " + nsn, None))
    # Near misses: one digit dropped, one added, the last one changed.
    out.append(("+" + cc + nsn[:-1], None))
    out.append(("+" + cc + nsn + "5", None))
    out.append(("+" + cc + nsn[:-1] + str((int(nsn[-1]) + 3) % 10), None))
    return out


def corpus():
    seen = set()
    cases = []

    def add(text, region):
        if (text, region) not in seen:
            seen.add((text, region))
            cases.append({"input": text, "region": region, **answer(text, region)})

    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in TYPES:
            n = phonenumbers.example_number_for_type(region, kind)
            if n is not None:
                for text, r in variants(n, region):
                    add(text, r)
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        for kind in TYPES:
            n = phonenumbers.example_number_for_non_geo_entity(code) if kind == T.FIXED_LINE else None
            if n is not None:
                for text, r in variants(n, None):
                    add(text, r)
    # Written as people write them at home: Russian 8-800 numbers, US numbers with a 1.
    for text, region in [
        ("8 800 123-45-67", "RU"), ("8 (800) 555-35-35", "RU"), ("+7 800 123 45 67", None),
        ("+7 8 800 123 45 67", None), ("8-808-123-45-67", "RU"), ("+7 809 123 45 67", None),
        ("1 (415) 555-2671", "US"), ("+1 1 415 555 2671", None), ("+1-800-555-0199", None),
        ("+39 06 6982 1234", None), ("06 6982 1234", "IT"), ("+39 06 698 12345", None), ("+35322123455", None),
        ("tel:+1-415-555-2671", None), ("(0)30 901820", "DE"), ("+44 (0)20 7183 8750", None),
    ]:
        add(text, region)
    return cases


if __name__ == "__main__":
    json.dump({"version": phonenumbers.__version__, "cases": corpus()}, sys.stdout, ensure_ascii=False)
