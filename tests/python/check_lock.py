"""Checks that the Python running this script has installed exactly what a lock
file names: every distribution pinned at its locked version, nothing missing,
and nothing the lock does not name. `make test` runs it with `.venv/bin/python`,
so a dependency that slipped in unpinned fails the suite on the machine that
added it, not a newcomer's first run.

    python check_lock.py LOCK

Exits 0 when the environment matches, 1 with one line per difference."""

import re
import sys
from importlib import metadata

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name):
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path):
    """{name: version} for every `name==version` requirement of the lock; each
    must carry at least one hash, as `pip install --require-hashes` needs."""
    pins, hashed, current = {}, set(), None
    with open(path) as lock:
        for line in lock:
            match = PIN.match(line)
            if match:
                current = canonical(match.group(1))
                pins[current] = match.group(2)
            if current and "--hash=sha256:" in line:
                hashed.add(current)
    return pins, set(pins) - hashed


def installed():
    """{name: version} of every distribution this interpreter can import."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}


def differences(pins, unhashed, present):
    found = [f"{name}: locked without a hash" for name in sorted(unhashed)]
    for name in sorted(set(pins) | set(present)):
        want, have = pins.get(name), present.get(name)
        if want is None:
            found.append(f"{name} {have} is installed but not in the lock")
        elif have is None:
            found.append(f"{name}=={want} is locked but not installed")
        elif want != have:
            found.append(f"{name} is {have}, the lock says {want}")
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    pins, unhashed = locked(sys.argv[1])
    if not pins:
        sys.exit(f"{sys.argv[1]}: no pinned requirement")
    found = differences(pins, unhashed, installed())
    for line in found:
        print(f"{sys.argv[1]}: {line}", file=sys.stderr)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
