"""Audit the installed dependencies for known vulnerabilities (pip-audit), and say if it could not.

    .venv/bin/python -m bench.audit            # exit 1 on a known vulnerability
    .venv/bin/python -m bench.audit --strict   # also exit 2 when packages could not be audited

The venv's exact versions (pip freeze, the project itself left out) are what
is audited: that is what runs. pip-audit on its own prints "No known
vulnerabilities found" even when it could reach no vulnerability service and
so audited nothing; this says so plainly instead.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 2) when any package could not be audited")
    parser.add_argument("--service", choices=["pypi", "osv"], default="pypi",
                        help="pip-audit's vulnerability service (pypi)")
    args = parser.parse_args(argv)

    frozen = subprocess.run([str(BIN / "python"), "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write(frozen)
    done = subprocess.run([str(BIN / "pip-audit"), "-r", handle.name, "--no-deps", "--disable-pip",
                           "--progress-spinner", "off", "-f", "json", "-s", args.service],
                          capture_output=True, text=True)
    Path(handle.name).unlink()
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "(no output)"
        print(f"NOT AUDITED: pip-audit could not reach the {args.service} service:\n{last}")
        return 2 if args.strict else 0
    packages = report.get("dependencies", [])
    skipped = [p for p in packages if p.get("skip_reason")]
    vulnerable = [p for p in packages if p.get("vulns")]
    audited = len(packages) - len(skipped)
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"VULNERABLE {package['name']} {package['version']}: {vuln['id']} (fixed in {fixes})")
    print(f"pip-audit ({args.service}): {len(packages)} packages, {audited} audited, "
          f"{len(skipped)} not audited, {len(vulnerable)} with known vulnerabilities")
    if skipped:
        reasons = {p["skip_reason"].split(":")[0] for p in skipped}
        print("NOT AUDITED: " + "; ".join(sorted(reasons))
              + " (the vulnerability service was not reachable or does not know these versions)")
    if vulnerable:
        return 1
    if skipped and args.strict:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
