"""Writes the disposable-email-domains list of the pinned PyPI package (Makefile PIP_PINS)
to shared/src/enrich/verify/data/, one domain a line, with the package's licence beside
it. Run by `make disposable-domains` after changing the pin; the build embeds the file."""

import importlib.metadata
import pathlib

import disposable_email_domains

DATA = pathlib.Path(__file__).resolve().parent.parent / "shared/src/enrich/verify/data"
PACKAGE = "disposable-email-domains"


def main():
    version = importlib.metadata.version(PACKAGE)
    domains = sorted(disposable_email_domains.blocklist - disposable_email_domains.allowlist)
    header = (
        f"# Disposable (throwaway) mailbox domains: the {PACKAGE} package {version} (PyPI;\n"
        "# github.com/disposable-email-domains/disposable-email-domains), its blocklist less its\n"
        "# allowlist. Refreshed by `make disposable-domains`; licence: disposable_domains.LICENSE.txt.\n"
    )
    (DATA / "disposable_domains.txt").write_text(header + "\n".join(domains) + "\n")
    files = importlib.metadata.distribution(PACKAGE).files or []
    licence = next(f for f in files if f.name.upper().startswith("LICENSE"))
    (DATA / "disposable_domains.LICENSE.txt").write_text(licence.read_text())
    print(f"{len(domains)} domains from {PACKAGE} {version}")


if __name__ == "__main__":
    main()
