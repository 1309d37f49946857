#!/usr/bin/env python3
"""Mutation testing of one Swift source file: every single-rule change a hand could make, and the tests that catch it.

    Tools/mutate.py                                   # Sources/Consensus/Rules.swift against the consensus and simulation tests
    Tools/mutate.py --list                            # the mutants only, no build
    Tools/mutate.py --file F --filter 'A|B' --only 3,17

Each mutant changes one thing in the file: a comparison flipped or moved across its boundary (== !=, < <=, > >=),
&& and || swapped, one side of a conjunction or disjunction dropped, a negation dropped, -1 and 0, true and false,
a quorum made a one-third check and back, a rule's statement (sign, set the lock, set the valid value, change step,
start a round) deleted, a vote for a value turned into a vote for nil. The planted-bug hooks (`settings.planted`) are
left alone: with no bug planted they are dead code.

For each mutant the script writes the file, builds the tests (`swift build --build-tests`), runs `swift test
--skip-build --filter STAGE` for each stage of FILTER until one fails, and records: killed (and the first failing test), survived, or not compiled. The
original file is restored afterwards, also on Ctrl-C. A table is printed and written to .faultline/mutate.json.
Exit 0 when no mutant survived, 1 otherwise (a survivor is a change no test notices: either an equivalent change,
or a missing test).
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

OPERATORS = [("==", "!="), ("!=", "=="), ("<=", "<"), (">=", ">"), ("&&", "||"), ("||", "&&")]
SINGLE = [("<", "<="), (">", ">=")]
WORDS = [("isQuorum", "validators.isOneThirdPlus"), ("quorum", "validators.isOneThirdPlus"),
         ("validators.isOneThirdPlus", "isQuorum"), ("true", "false"), ("false", "true"), ("-1", "0"),
         (".prevote", ".precommit"), (".precommit", ".prevote")]
STATEMENTS = re.compile(r"^\s*(sign|setStep|setLock|setValid|updateRound|startRound|markDecided)\(.*\)\s*$")
PLANTED = re.compile(r"settings\.planted\s*[!=]=\s*\.\w+(\s*\?[^:]*:)?")
HOOK = re.compile(r"^(if settings\.planted\s*[!=]=\s*\.\w+\s*\{|let planted\b)")


def code_part(line):
    """The line without its // comment (strings in this file hold no //)."""
    cut = line.find("//")
    return line if cut < 0 else line[:cut]


def masked(line):
    """Spans of the line that are never mutated: the planted-bug comparisons."""
    return [m.span() for m in PLANTED.finditer(line)]


def inside(position, spans):
    return any(start <= position < end for start, end in spans)


def operand_end(code, start):
    """Where the operand starting at `start` ends: at depth 0, the next && || , { ? : ) or end of code."""
    depth, i = 0, start
    while i < len(code):
        c = code[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0 and (code.startswith("&&", i) or code.startswith("||", i) or c in ",{?"):
            return i
        elif depth == 0 and c == ":" and not code.startswith("::", i):
            return i
        i += 1
    return i


def operand_start(code, end):
    """Where the operand ending just before `end` starts (mirror of operand_end)."""
    depth, i = 0, end - 1
    while i >= 0:
        c = code[i]
        if c in ")]":
            depth += 1
        elif c in "([":
            if depth == 0:
                return i + 1
            depth -= 1
        elif depth == 0 and (code[i - 1:i + 1] in ("&&", "||") or c in ",{?"):
            return i + 1
        elif depth == 0 and c == "=" and code[i - 1:i] not in "=<>!" and code[i + 1:i + 2] != "=":
            return i + 1
        elif depth == 0 and code[max(0, i - 6):i + 1].endswith(("if ", "guard ")):
            return i + 1
        i -= 1
    return 0


def dropped_conditions(code):
    """An `if`/`guard` with several comma-separated conditions, one condition left out at a time."""
    m = re.match(r"^(\s*(?:\}\s*else\s+)?(?:if|guard)\s+)(.*?)(\s*(?:\{|else\b).*)$", code)
    if not m or m.group(2).startswith(("let ", "var ", "case ")):
        return []
    head, conditions, tail = m.groups()
    parts, depth, current = [], 0, ""
    for c in conditions:
        depth += c in "(["
        depth -= c in ")]"
        if c == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += c
    parts.append(current.strip())
    if len(parts) < 2 or any(p.startswith(("let ", "var ", "case ")) or PLANTED.search(p) for p in parts):
        return [] if len(parts) < 2 else [
            (f"drop condition `{p}`", head + ", ".join(parts[:i] + parts[i + 1:]) + tail)
            for i, p in enumerate(parts) if not p.startswith(("let ", "var ", "case ")) and not PLANTED.search(p)]
    return [(f"drop condition `{p}`", head + ", ".join(parts[:i] + parts[i + 1:]) + tail) for i, p in enumerate(parts)]


def mutants_of(lines):
    out = []
    for number, line in enumerate(lines, start=1):
        code = code_part(line)
        stripped = code.strip()
        if not stripped or stripped.startswith(("import", "precondition")) or HOOK.match(stripped):
            continue
        if "passes" in stripped:
            continue
        spans = masked(code)

        def add(start, end, replacement, what):
            if inside(start, spans) or inside(max(start, end - 1), spans):
                return
            mutated = line[:start] + replacement + line[end:]
            out.append({"line": number, "what": f"{what} (column {start + 1})", "text": mutated})

        taken = set()
        for old, new in OPERATORS:
            for m in re.finditer(re.escape(old), code):
                taken.update(range(m.start(), m.end()))
                add(m.start(), m.end(), new, f"{old} → {new}")
        for old, new in SINGLE:
            for m in re.finditer(rf"(?<![<>=!-]){re.escape(old)}(?![=<>])", code):
                if m.start() in taken or code[m.start() - 1:m.start()] == "-":
                    continue
                if re.match(r"\s", code[m.start() + 1:m.start() + 2] or "x") is None:
                    continue  # a generic bracket, not a comparison
                add(m.start(), m.end(), new, f"{old} → {new}")
        for old, new in WORDS:
            for m in re.finditer(rf"(?<![\w.]){re.escape(old)}(?!\w)" if old[0] != "-" else re.escape(old), code):
                if "uorum" in old or "OneThird" in old:
                    if code[m.end():m.end() + 1] != "(":
                        continue
                add(m.start(), m.end(), new, f"{old} → {new}")
        for m in re.finditer(r"&&|\|\|", code):
            right_end = operand_end(code, m.end())
            add(m.start(), right_end, "", f"drop `{code[m.start():right_end].strip()}`")
            left_start = operand_start(code, m.start())
            while left_start < m.start() and code[left_start] == " ":
                left_start += 1
            if code[left_start:m.start()].strip():
                add(left_start, m.end() + 1, "", f"drop `{code[left_start:m.end()].strip()}`")
        for m in re.finditer(r"!(?=[\w(])", code):
            add(m.start(), m.end(), "", "drop !")
        m = re.search(r"accept \? ([\w.]+) : nil", code)
        if m:
            add(m.start(), m.end(), "nil", f"vote nil instead of `{m.group(1)}`")
        for what, mutated in dropped_conditions(code):
            out.append({"line": number, "what": what, "text": mutated})
        if STATEMENTS.match(code):
            out.append({"line": number, "what": f"delete `{stripped}`", "text": ""})
    for index, mutant in enumerate(out, start=1):
        mutant["id"] = index
    return out


def run(command, timeout):
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        return done.returncode, done.stdout
    except subprocess.TimeoutExpired as error:
        return None, (error.stdout or b"").decode(errors="replace") if isinstance(error.stdout, bytes) else (error.stdout or "")


def first_failure(output):
    fatal = re.search(r"Fatal error: ([^\n]{0,80})", output)
    if fatal:
        return "crash: " + fatal.group(1)
    for pattern in (r"✘ Test (\w+)\(", r"Test (\S+) recorded an issue", r"✘ Test \"?([^\"]+?)\"? "):
        m = re.search(pattern, output)
        if m:
            return m.group(1)
    return "failed"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", default="Sources/Consensus/Rules.swift")
    parser.add_argument("--filter", default="ConsensusTests;SimulationTests|TwinsTests",
                        help="test filters, in stages separated by ';' (a later stage runs only for a survivor)")
    parser.add_argument("--only", default="", help="comma-separated mutant numbers")
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per test run (a hang counts as killed)")
    parser.add_argument("--out", default=".faultline/mutate.json")
    args = parser.parse_args()

    if not os.path.isfile(args.file):
        sys.exit(f"mutate: {args.file}: no such file (run from the repository's top folder)")
    with open(args.file, encoding="utf-8") as handle:
        original = handle.read()
    lines = original.split("\n")
    mutants = mutants_of(lines)
    if args.only:
        try:
            wanted = {int(x) for x in args.only.split(",") if x.strip()}
        except ValueError:
            sys.exit(f"mutate: --only {args.only!r}: expected mutant numbers separated by commas (see --list)")
        unknown = wanted - {m["id"] for m in mutants}
        if unknown:
            sys.exit(f"mutate: --only: no mutant {sorted(unknown)} in {args.file} (it has 1-{len(mutants)}; see --list)")
        mutants = [m for m in mutants if m["id"] in wanted]
    if args.list:
        for m in mutants:
            print(f"{m['id']:3}  {args.file}:{m['line']}  {m['what']}")
        print(f"{len(mutants)} mutants")
        return 0

    def restore(*_):
        with open(args.file, "w", encoding="utf-8") as handle:
            handle.write(original)
        if _:
            sys.exit(130)

    signal.signal(signal.SIGINT, restore)
    signal.signal(signal.SIGTERM, restore)
    results = []
    started = time.time()
    try:
        for m in mutants:
            changed = list(lines)
            changed[m["line"] - 1] = m["text"]
            with open(args.file, "w", encoding="utf-8") as handle:
                handle.write("\n".join(changed))
            t0 = time.time()
            code, output = run(["swift", "build", "--build-tests"], 1800)
            if code != 0:
                verdict, by = "not compiled", ""
            else:
                verdict, by = "survived", ""
                for stage in args.filter.split(";"):
                    code, output = run(["swift", "test", "--skip-build", "--filter", stage], args.timeout)
                    if code is None:
                        verdict, by = "killed", "timeout"
                    elif code != 0:
                        verdict, by = "killed", first_failure(output)
                    if verdict == "killed":
                        break
            seconds = time.time() - t0
            results.append({**{k: m[k] for k in ("id", "line", "what")}, "verdict": verdict, "by": by,
                            "seconds": round(seconds, 1)})
            print(f"{m['id']:3}  line {m['line']:3}  {m['what']:<48.48}  {verdict:<12} {by}  ({seconds:.0f} s)",
                  flush=True)
    finally:
        restore()
    killed = sum(r["verdict"] == "killed" for r in results)
    survived = [r for r in results if r["verdict"] == "survived"]
    compiled = sum(r["verdict"] != "not compiled" for r in results)
    print(f"\n{args.file}: {len(results)} mutants, {compiled} compiled, {killed} killed, {len(survived)} survived "
          f"({time.time() - started:.0f} s)")
    for r in survived:
        print(f"  survived: line {r['line']}: {r['what']}")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"file": args.file, "filter": args.filter, "mutants": results}, handle, indent=1)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
