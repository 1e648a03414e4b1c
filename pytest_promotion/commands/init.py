"""``promotion init``: promotion gates for the repository in the current directory.

    promotion init                    # promotion.toml, gates/, Makefile targets
    promotion init --ci github        # and .github/workflows/environment-promotion.yml
    promotion init --ci gitlab        # or .gitlab-ci.yml, --ci jenkins: Jenkinsfile
    promotion init --makefile         # add the targets to an existing Makefile too
    promotion init --force            # replace existing files (each one is listed)

It looks at what is there (a Python package and its tests, a Go module, a Dockerfile,
.github/workflows/, .gitlab-ci.yml, Jenkinsfile, a Makefile) and writes the gates that
fit. An existing file is never replaced without --force: init then writes nothing and
exits 4 naming them. It prints what it wrote and the next command to run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import OK, USAGE_ERROR, Subparsers

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("init", help="write promotion.toml, gates/, Makefile targets, CI")
    parser.add_argument(
        "--ci",
        choices=("github", "gitlab", "jenkins", "none"),
        help="the CI recipe to write (default: the CI the repository already uses, if one)",
    )
    parser.add_argument(
        "--makefile", action="store_true", help="add targets to an existing Makefile"
    )
    parser.add_argument("--force", action="store_true", help="replace existing files")
    parser.add_argument("--dir", default=".", help="the repository (default: .)")
    parser.set_defaults(handler=run)


def _error(message: str) -> int:
    print(f"ERROR: promotion init: {message}", file=sys.stderr)
    return USAGE_ERROR


def run(args: argparse.Namespace) -> int:
    from ..scaffold import detect, plan_files
    from ..scaffold.render import MAKEFILE_MARK

    root = Path(args.dir).resolve()
    if not root.is_dir():
        return _error(f"--dir {args.dir}: not a directory")
    layout = detect(root)
    ci = args.ci if args.ci != "none" else None
    if args.ci is None and len(layout.ci) == 1:
        ci = layout.ci[0]
    planned = plan_files(layout, ci, args.makefile)
    existing = [p.path for p in planned if not p.append and (root / p.path).exists()]
    if existing and not args.force:
        return _error(
            f"would replace {', '.join(existing)}: nothing written (--force replaces them)"
        )
    print(f"promotion init: found {'; '.join(layout.describe())}")
    for note in layout.notes:
        print(f"  note: {note}")
    try:
        for item in planned:
            path = root / item.path
            if item.append:
                text = path.read_text(errors="replace")
                if MAKEFILE_MARK in text:
                    print(f"  kept     {item.path} (its promotion targets are there already)")
                    continue
                with path.open("a", encoding="utf-8") as f:
                    f.write(("" if text.endswith("\n") else "\n") + item.text)
                print(f"  added to {item.path}: promote-dev, promote-staging, promote-prod")
                continue
            verb = "replaced" if path.exists() else "wrote   "
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(item.text, encoding="utf-8")
            print(f"  {verb} {item.path}")
    except OSError as exc:
        return _error(f"{exc.filename or 'output'}: {exc.strerror or exc}")
    if layout.makefile and not args.makefile:
        print("  kept     Makefile as it is (--makefile adds promote-dev/-staging/-prod to it)")
    _next_steps(ci)
    return OK


def _next_steps(ci: str | None) -> None:
    print("next:")
    print("  export DEV_URL=https://dev.example.com STAGING_URL=... PROD_URL=...")
    print("  promotion validate && promotion plan --env dev")
    print("  pytest --env=dev gates/          # or: make promote-dev")
    if ci == "github":
        print("  then set DEV_URL, STAGING_URL, PROD_URL as environment secrets and commit")
    elif ci is None:
        print("  a CI recipe: promotion init --ci github|gitlab|jenkins")
