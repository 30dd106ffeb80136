"""Check the internal links of a built HTML site: every relative ``href``/``src`` must exist.

Usage: ``python docs/_ext/check_links.py docs/_build/html``. Links with a scheme (``https:``,
``mailto:``...) are external and not checked (the build has no network); a relative link must
name an existing file, and its ``#fragment`` an ``id`` (or ``name``) in that file. Exits 1 and
lists the broken links otherwise. The fragments of the highlighted-source pages (``_modules/``,
whose "[docs]" links viewcode guesses from the defining module, not from the name an object is
documented under) are not checked, their files are.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if value is None:
                continue
            if key in ("id", "name"):
                self.ids.add(value)
            if (key == "href" and tag in ("a", "link")) or (
                key == "src" and tag in ("img", "script")
            ):
                self.links.append(value)


def _parse(path: Path, cache: dict[Path, _Collector]) -> _Collector:
    if path not in cache:
        collector = _Collector()
        collector.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = collector
    return cache[path]


def broken_links(root: Path) -> list[str]:
    """``page: link (reason)`` for every broken internal link of the site under ``root``."""
    root = root.resolve()
    cache: dict[Path, _Collector] = {}
    broken = []
    for page in sorted(root.rglob("*.html")):
        if "_static" in page.relative_to(root).parts:
            continue
        viewcode = "_modules" in page.relative_to(root).parts
        for link in _parse(page, cache).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("javascript:", "data:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(root)}: {link}"
            if not target.is_file():
                broken.append(f"{where} (no file {target})")
            elif parts.fragment and target.suffix == ".html" and not viewcode:
                if unquote(parts.fragment) not in _parse(target, cache).ids:
                    broken.append(f"{where} (no anchor #{parts.fragment})")
    return broken


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: check_links.py BUILT_HTML_FOLDER", file=sys.stderr)
        return 2
    root = Path(argv[0])
    broken = broken_links(root)
    pages = sum(1 for _ in root.rglob("*.html"))
    for line in broken:
        print("broken link:", line)
    print(f"internal links: {pages} pages checked, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
