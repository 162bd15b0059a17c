#!/usr/bin/env python3
"""The man page against the command line: every verb and option tether takes is in
docs/tether.1, in its verb's section, and the page names none that tether does not take;
every environment variable the sources read is under ENVIRONMENT; the version matches;
groff finds nothing to warn about.

  man_page_test.py TETHER MANPAGE SRC_DIR

What tether takes comes from the binary itself (`tether __complete`, src/cli/complete.h),
the same answers the shell completions use. The page's conventions: a verb's section is
an .SS whose title starts with the verb ("agent install ..."), an option is the tag line
after a .TP (\\fB\\-L\\fR \\fISPEC\\fR) in that section, global options under .SH OPTIONS.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# -h/--help: every verb has them, and the page says so once, under OPTIONS.
HELP = {"-h", "--help"}


def complete(tether, *args):
    out = subprocess.run([tether, "__complete", *args], check=True, capture_output=True,
                         text=True, timeout=30).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def verb_paths(tether, path=()):
    """Every verb that runs something, as a tuple of words: ("up",), ("agent", "install")."""
    paths = []
    for name, *_ in complete(tether, "verbs", *path):
        sub = path + (name,)
        nested = complete(tether, "verbs", *sub)
        paths.extend(verb_paths(tether, sub) if nested else [sub])
    return paths


def plain(roff):
    """Text of a roff line: font escapes out, \\- as -, quotes dropped."""
    text = re.sub(r"\\f[BIRP]", "", roff).replace("\\-", "-").replace("\\(aq", "'")
    text = re.sub(r"^\.(SS|SH|B|BR|I|IR|RB|RI|BI)\s+", "", text)
    return text.replace('"', "").strip()


def option_names(tag_line):
    """The options a .TP tag names: "-f, --follow" -> {-f, --follow}; "--proxy[=PORT]"."""
    return set(re.findall(r"(?:^|[\s,|])(--?[A-Za-z0-9][A-Za-z0-9-]*)", plain(tag_line)))


def read_page(path):
    """{section key: set of option names}; verb sections keyed by their title, and
    ("OPTIONS",) for the globals. Also the ENVIRONMENT tags and the .TH line."""
    sections, env, th = {}, set(), ""
    key, in_env = None, False
    lines = Path(path).read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".TH "):
            th = line
        elif line.startswith(".SH "):
            title = plain(line)
            key = ("OPTIONS",) if title == "OPTIONS" else None
            if key:
                sections[key] = set()
            in_env = title == "ENVIRONMENT"
        elif line.startswith(".SS "):
            key = tuple(plain(line).split())
            sections[key] = set()
        elif line.startswith(".TP") and i + 1 < len(lines):
            tag = lines[i + 1]
            if in_env:
                env.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", plain(tag)))
            elif key is not None:
                sections[key] |= option_names(tag)
    return sections, env, th


def env_read_by(src):
    """getenv("NAME") (and ssh/prompter.cc's SetAndNotEmpty("NAME")), "TETHER_..."
    constants in src/, and the proxy variables that proxy/upstream.cc reads through its
    own lookup."""
    names = set()
    for f in Path(src).rglob("*.[ch]*"):
        text = f.read_text(errors="replace")
        names |= set(re.findall(r'(?:getenv|SetAndNotEmpty)\("([A-Za-z_][A-Za-z0-9_]*)"\)', text))
        names |= set(re.findall(r'"(TETHER_[A-Z0-9_]+)"', text))
        names |= set(re.findall(r'get\("([a-z_]+_proxy)", "[A-Z_]+"\)', text))
    return names


def main():
    tether, page, src = sys.argv[1:4]
    sections, env, th = read_page(page)
    problems = []

    # Section titles start with the verb's words; match the longest known verb.
    verbs = verb_paths(tether)
    owner = {}
    for key in sections:
        if key == ("OPTIONS",):
            continue
        match = [v for v in verbs if key[: len(v)] == v]
        if not match:
            problems.append(f"the page has a section '{' '.join(key)}' for no verb tether has")
            continue
        owner[max(match, key=len)] = key

    checks = [(("OPTIONS",), (), "the global options")]
    for verb in verbs:
        if verb not in owner:
            problems.append(f"verb '{' '.join(verb)}' is missing from the page (no .SS for it)")
            continue
        checks.append((owner[verb], verb, f"'{' '.join(verb)}'"))
    for key, verb, what in checks:
        taken = {row[0] for row in complete(tether, "options", *verb)}
        if verb:
            taken -= HELP
        documented = sections[key]
        for name in sorted(taken - documented):
            problems.append(f"{what}: option {name} is missing from the page")
        for name in sorted(documented - taken):
            problems.append(f"{what}: the page documents {name}, which tether does not take")

    for name in sorted(env_read_by(src) - env):
        problems.append(f"environment variable {name} is read by src/ but not under ENVIRONMENT")

    version = subprocess.run([tether, "--version"], check=True, capture_output=True,
                             text=True, timeout=30).stdout.split()[-1]
    if f'"tether {version}"' not in th:
        problems.append(f".TH says {th!r}, tether --version says {version}")

    # groff's own complaints (a bad request, an unknown escape), where groff is installed.
    if shutil.which("groff"):
        lint = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", page], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "LC_ALL": "C.UTF-8"})
        problems += [f"groff: {line}" for line in lint.stderr.splitlines()]

    for p in problems:
        print(f"man page: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"man page: {len(verbs)} verbs, their options and {len(env)} environment "
          "variables agree with tether")
    return 0


if __name__ == "__main__":
    sys.exit(main())
