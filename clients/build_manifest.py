"""Build a client's trusted-document manifest: `clients/<client>/*.graphql` -> `manifest.json`.

    python clients/build_manifest.py                  # the mini-program (the default)
    python clients/build_manifest.py --client NAME    # clients/NAME/
    python clients/build_manifest.py --check          # fail if manifest.json is out of date

The manifest maps the SHA-256 (hex) of each document to the document; the client sends
`extensions.persistedQuery.sha256Hash` (Apollo's protocol) and the server looks the document up after
`python server.py load-documents --client mini-program clients/mini-program/manifest.json`.
Each file holds one named operation; its text, with surrounding whitespace removed, is the document.
Standard library only, so a front-end build can run it too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def document_of(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip() + "\n"


def build(client_dir: Path) -> dict[str, str]:
    manifest: dict[str, str] = {}
    for path in sorted(client_dir.glob("*.graphql")):
        document = document_of(path)
        digest = hashlib.sha256(document.encode("utf-8")).hexdigest()
        if digest in manifest:
            raise SystemExit(f"{path.name} repeats another document")
        manifest[digest] = document
    return manifest


def render(manifest: dict[str, str]) -> str:
    return json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", default="mini-program")
    parser.add_argument("--output", help="default: clients/<client>/manifest.json")
    parser.add_argument("--check", action="store_true", help="fail if the manifest on disk is not up to date")
    args = parser.parse_args(argv)
    client_dir = HERE / args.client
    if not client_dir.is_dir():
        raise SystemExit(f"no such client directory: {client_dir}")
    output = Path(args.output) if args.output else client_dir / "manifest.json"
    text = render(build(client_dir))
    if args.check:
        if not output.exists() or output.read_text(encoding="utf-8") != text:
            print(f"{output} is out of date: run python clients/build_manifest.py --client {args.client}")
            return 1
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"{output}: {len(json.loads(text))} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
