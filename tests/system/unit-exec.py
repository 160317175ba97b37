#!/usr/bin/env python3
"""Print a systemd unit's ExecStart= as NUL-separated argv, with the variables of an
EnvironmentFile substituted the way systemd does, so tests run the unit's real command
line instead of a retyped copy.

    unit-exec.py UNIT ENVFILE [KEY]     KEY defaults to ExecStart; other single-value keys
                                        (e.g. RestartSec) are printed as plain text.

Handles what our units use: backslash line continuation, comments, the [Service]
section, `${VAR}` (one word) and `$VAR` (split into words), systemd's quoting (close
enough to POSIX shell words for these units), and the ExecStart prefixes -@:+!.
Unknown variables are an error here (systemd would substitute nothing, silently).
"""
import re
import shlex
import sys


def read_env(path):
    env = {}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            key, sep, value = line.partition("=")
            if not sep:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            env[key.strip()] = value
    return env


def read_service_key(path, want):
    section, logical, found = None, "", []
    with open(path) as f:
        lines = f.read().split("\n")
    for raw in lines:
        if logical:
            if raw.lstrip().startswith(("#", ";")):
                continue  # comments inside continued lines are skipped by systemd
            logical += " " + raw.strip()
        else:
            stripped = raw.strip()
            if not stripped or stripped[0] in "#;":
                continue
            if stripped.startswith("["):
                section = stripped
                continue
            logical = stripped
        if logical.endswith("\\"):
            logical = logical[:-1].rstrip()
            continue
        key, _, value = logical.partition("=")
        if section == "[Service]" and key.strip() == want:
            found.append(value.strip())
        logical = ""
    if not found:
        sys.exit(f"{path}: no {want}= in [Service]")
    return found[-1]


def expand(words, env):
    out = []
    for word in words:
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            if m.group(1) not in env:
                sys.exit(f"variable ${m.group(1)} not set in the environment file")
            out.extend(env[m.group(1)].split())
            continue

        def sub(m):
            if m.group(1) not in env:
                sys.exit(f"variable ${{{m.group(1)}}} not set in the environment file")
            return env[m.group(1)]

        out.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, word))
    return out


def main():
    unit, envfile = sys.argv[1], sys.argv[2]
    key = sys.argv[3] if len(sys.argv) > 3 else "ExecStart"
    value = read_service_key(unit, key)
    if key != "ExecStart":
        print(value)
        return
    value = value.lstrip("-@:+!")
    argv = expand(shlex.split(value), read_env(envfile))
    sys.stdout.write("\0".join(argv) + "\0")


if __name__ == "__main__":
    main()
