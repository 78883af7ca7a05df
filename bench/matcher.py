"""Matcher benchmark: which Aho-Corasick library, and what a whole RuleSet.check costs.

Run from the repository root: ``python bench/matcher.py`` (add ``--quick`` for fewer repetitions).

Prints, for 100 and 100,000 terms (half Chinese, generated deterministically):
- the automaton build time and the time per 200-character message (mean, p50, p99), with and without
  hits, for pyahocorasick and for ahocorasick-rs (each of its automaton implementations);
- the end-to-end ``RuleSet.check`` time (normalisation + every rule kind + verdict) with 10,000 words,
  1,000 wildcards, 100 regexes and 10,000 blocked users, and its compile time;
- issue 9's targets (``--targets`` alone): check p50 at 100,000 terms with folding on, the rebuild
  time of 100,000 terms, and check latencies while a rebuild runs in another thread.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ahocorasick  # noqa: E402  (pyahocorasick)
import ahocorasick_rs  # noqa: E402

from webhooks.matching import NormText, Rule, RuleSet  # noqa: E402

SEED = 20260522
LATIN = "abcdefghijklmnopqrstuvwxyz"
# Common CJK Unified Ideographs: thousands of distinct first characters, as real Chinese lists have.
CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 6000)]


def make_terms(count: int, rng: random.Random) -> list[str]:
    terms: set[str] = set()
    while len(terms) < count:
        if len(terms) % 2:
            terms.add("".join(rng.choice(CJK) for _ in range(rng.randint(2, 4))))
        else:
            terms.add("".join(rng.choice(LATIN) for _ in range(rng.randint(5, 10))))
    return sorted(terms)


def make_message(rng: random.Random, terms: list[str] | None, length: int = 200) -> str:
    """A message of exactly `length` characters mixing Chinese runs and Latin words; with terms,
    three of them are inserted whole."""
    inserts = list(rng.sample(terms, 3)) if terms else []
    budget = length - sum(len(t) + 1 for t in inserts)
    parts: list[str] = []
    size = 0
    while size < budget:
        if rng.random() < 0.5:
            # Ideographs outside the generated list's range, so the filler never hits by chance.
            piece = "".join(
                chr(rng.randint(0x6000, 0x8FFF)) for _ in range(rng.randint(3, 12))
            )
        else:
            piece = "".join(rng.choice("xyzqjv") for _ in range(rng.randint(2, 8)))
        parts.append(piece)
        size += len(piece) + 1
    for term in inserts:
        parts.insert(
            rng.randrange(len(parts)), term
        )  # never last: only filler gets trimmed
    return " ".join(parts)[:length]


def timings(fn, messages: list[str], repeat: int) -> tuple[float, float, float]:
    samples: list[float] = []
    for _ in range(repeat):
        for text in messages:
            t0 = time.perf_counter_ns()
            fn(text)
            samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    return (
        statistics.fmean(samples),
        samples[len(samples) // 2],
        samples[int(len(samples) * 0.99)],
    )


def fmt(t: tuple[float, float, float]) -> str:
    return f"mean {t[0]:8.2f} µs  p50 {t[1]:8.2f} µs  p99 {t[2]:8.2f} µs"


def bench_automata(count: int, repeat: int) -> None:
    rng = random.Random(SEED + count)
    terms = make_terms(count, rng)
    raw_clean = [make_message(rng, None) for _ in range(200)]
    raw_dirty = [make_message(rng, terms) for _ in range(200)]
    clean = [NormText(t).strict for t in raw_clean]
    dirty = [NormText(t).strict for t in raw_dirty]
    letters = statistics.fmean(len(t) for t in clean)
    print(
        f"\n== {count:,} terms (half CJK); 200-character messages, scanned as the "
        f"{letters:.0f} letters left after normalisation =="
    )
    ruleset = RuleSet.compile(
        Rule(i, "word", term, "mask") for i, term in enumerate(terms)
    )
    print(
        f"RuleSet.compile of {count:,} words (normalisation + automaton): "
        f"{ruleset.build_seconds * 1000:.1f} ms"
    )

    def check(text: str) -> None:
        ruleset.check(
            from_account="viewer-1",
            msg_body=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}],
            cloud_custom_data=None,
        )

    print(
        "RuleSet.check (normalise + scan + verdict) of the raw 200-character message:"
    )
    print(f"  without hits  {fmt(timings(check, raw_clean, repeat))}")
    print(f"  with hits     {fmt(timings(check, raw_dirty, repeat))}")
    print("The automaton alone, on the normalised letters:")

    t0 = time.perf_counter()
    pya = ahocorasick.Automaton()
    for i, term in enumerate(terms):
        pya.add_word(term, i)
    pya.make_automaton()
    build = time.perf_counter() - t0

    def pya_scan(text: str) -> list:
        return list(pya.iter(text))

    print(f"pyahocorasick            build {build * 1000:9.1f} ms")
    print(f"  without hits  {fmt(timings(pya_scan, clean, repeat))}")
    print(
        f"  with hits     {fmt(timings(pya_scan, dirty, repeat))}  ({sum(len(pya_scan(t)) for t in dirty)} hits)"
    )

    for impl in ("auto (used)", "NoncontiguousNFA", "ContiguousNFA", "DFA"):
        t0 = time.perf_counter()
        ac = ahocorasick_rs.AhoCorasick(
            terms,
            matchkind=ahocorasick_rs.MatchKind.Standard,
            implementation=getattr(ahocorasick_rs.Implementation, impl, None),
            store_patterns=False,
        )
        build = time.perf_counter() - t0

        def rs_scan(text: str, ac=ac) -> list:
            return ac.find_matches_as_indexes(text, overlapping=True)

        print(f"ahocorasick-rs {impl:17s} build {build * 1000:9.1f} ms")
        print(f"  without hits  {fmt(timings(rs_scan, clean, repeat))}")
        print(
            f"  with hits     {fmt(timings(rs_scan, dirty, repeat))}  ({sum(len(rs_scan(t)) for t in dirty)} hits)"
        )


def make_ruleset_rules(rng: random.Random) -> tuple[list[Rule], list[str], list[str]]:
    words = make_terms(10_000, rng)
    rules: list[Rule] = []
    next_id = 1
    actions = ("forbid", "discard", "mask")
    for term in words:
        rules.append(Rule(next_id, "word", term, actions[next_id % 3]))
        next_id += 1
    for i in range(1_000):
        stem = "".join(rng.choice(LATIN) for _ in range(rng.randint(4, 7)))
        pattern = (f"{stem}*", f"*{stem}", f"*{stem}*", stem)[i % 4]
        rules.append(Rule(next_id, "wildcard", pattern, "mask"))
        next_id += 1
    for i in range(100):
        pattern = (
            rf"buy\s*{i}\s*followers",
            rf"wx{i}[:：]?\s*[a-z0-9_]{{6,}}",
            rf"\b\d{{3}}-\d{{4}}-{i:04d}\b",
            rf"promo{i}\s*code\s*\w+",
        )[i % 4]
        rules.append(Rule(next_id, "regex", pattern, "forbid"))
        next_id += 1
    users = [f"user{i:05d}" for i in range(10_000)]
    for user in users:
        rules.append(Rule(next_id, "user", user, "forbid"))
        next_id += 1
    rules.append(Rule(next_id, "allow", words[0] + "ok", "forbid"))
    return rules, words, users


def bench_ruleset(repeat: int) -> None:
    rng = random.Random(SEED)
    rules, words, users = make_ruleset_rules(rng)
    t0 = time.perf_counter()
    ruleset = RuleSet.compile(rules)
    build = time.perf_counter() - t0
    print(
        "\n== RuleSet.check: 10,000 words + 1,000 wildcards + 100 regexes + 10,000 users =="
    )
    print(
        f"compile {build * 1000:9.1f} ms ({len(ruleset.rules):,} rules, {len(ruleset.skipped)} skipped)"
    )

    def body(text: str) -> list:
        return [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]

    clean = [make_message(rng, None) for _ in range(200)]
    dirty = [make_message(rng, words) for _ in range(200)]
    cjk_punct = [
        t.replace(" ", "，", 3) for t in clean
    ]  # full-width commas: the slower normalisation path
    ccd = '{"ExtensionInfo":"{\\"level\\":3,\\"title\\":\\"fan\\"}"}'

    def run(text: str) -> None:
        ruleset.check(
            from_account="viewer-1", msg_body=body(text), cloud_custom_data=None
        )

    def run_ccd(text: str) -> None:
        ruleset.check(
            from_account="viewer-1", msg_body=body(text), cloud_custom_data=ccd
        )

    def run_user(text: str) -> None:
        ruleset.check(
            from_account=users[7], msg_body=body(text), cloud_custom_data=None
        )

    print(f"  text, no hits                {fmt(timings(run, clean, repeat))}")
    print(f"  text with full-width commas  {fmt(timings(run, cjk_punct, repeat))}")
    print(f"  text with 3 hits             {fmt(timings(run, dirty, repeat))}")
    print(f"  + CloudCustomData JSON       {fmt(timings(run_ccd, clean, repeat))}")
    print(f"  blocked user                 {fmt(timings(run_user, clean, repeat))}")
    for text in dirty[:1]:
        verdict = ruleset.check(
            from_account="viewer-1", msg_body=body(text), cloud_custom_data=None
        )
        print(f"  sample verdict: {verdict.action}, {len(verdict.hits)} hits")
    no_regex = RuleSet.compile([r for r in rules if r.kind != "regex"])

    def run_no_regex(text: str) -> None:
        no_regex.check(
            from_account="viewer-1", msg_body=body(text), cloud_custom_data=None
        )

    print(f"  without the 100 regexes      {fmt(timings(run_no_regex, clean, repeat))}")


def bench_targets(repeat: int) -> None:
    """The figures issue 9 sets: check p50 at 100,000 terms with folding on (<= 20 µs), a
    rebuild of 100,000 terms (<= 1 s), and answers while a rebuild runs beside them."""
    import threading

    rng = random.Random(SEED + 9)
    terms = make_terms(100_000, rng)
    rules = [Rule(i, "word", term, "forbid") for i, term in enumerate(terms)]
    clean = [make_message(rng, None) for _ in range(200)]
    print("\n== issue 9 targets: 100,000 words (half CJK), folding on (the default) ==")
    # Wall time and this thread's CPU time: on a shared machine the CPU time says what the
    # work costs, the wall time what the load made of it.
    builds = []
    for _ in range(3):
        started, cpu = time.perf_counter(), time.thread_time()
        ruleset = RuleSet.compile(rules, long_lived=True)
        builds.append((time.perf_counter() - started, time.thread_time() - cpu))
    print(
        f"first build {builds[0][0]:.2f} s wall / {builds[0][1]:.2f} s CPU; rebuild of 100,000 "
        f"terms: best {min(b[0] for b in builds[1:]):.2f} s wall / "
        f"{min(b[1] for b in builds[1:]):.2f} s CPU (target <= 1 s)"
    )

    def check(text: str) -> None:
        ruleset.check(
            from_account="viewer-1",
            msg_body=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}],
            cloud_custom_data=None,
        )

    quiet = timings(check, clean, repeat)
    cpu = time.thread_time_ns()
    for text in clean * repeat:
        check(text)
    cpu_us = (time.thread_time_ns() - cpu) / 1000 / (len(clean) * repeat)
    print(
        f"RuleSet.check, 200 characters, no hit: {fmt(quiet)}; CPU {cpu_us:.1f} µs per "
        "check (target p50 <= 20 µs)"
    )
    # Answers while another thread compiles the same 100,000 terms (as the rules cache
    # does for a change made elsewhere): none waits for the build to finish.
    done = threading.Event()
    build_time: list[float] = []

    def rebuild() -> None:
        started = time.perf_counter()
        RuleSet.compile(rules, long_lived=True)  # as the rules cache builds
        build_time.append(time.perf_counter() - started)
        done.set()

    samples: list[float] = []
    thread = threading.Thread(target=rebuild)
    thread.start()
    k = 0
    while not done.is_set():
        t0 = time.perf_counter_ns()
        check(clean[k % len(clean)])
        samples.append((time.perf_counter_ns() - t0) / 1000)
        k += 1
    thread.join()
    samples.sort()
    print(
        f"during a {build_time[0]:.2f} s rebuild in another thread: {len(samples)} checks, "
        f"p50 {samples[len(samples) // 2]:.1f} µs, p99 {samples[int(len(samples) * 0.99)]:.1f} µs, "
        f"max {samples[-1] / 1000:.1f} ms (the GIL's switch interval is "
        f"{sys.getswitchinterval() * 1000:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(
        "--targets", action="store_true", help="only the issue 9 targets"
    )
    args = parser.parse_args()
    repeat = 2 if args.quick else 10
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("pyahocorasick", "ahocorasick-rs")
    )
    import webhooks.matching

    print(
        f"Python {sys.version.split()[0]}, {versions}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; matcher "
        + (
            "compiled (webhooks/compiled.py)"
            if webhooks.matching.COMPILED
            else "as Python"
        )
    )
    if not args.targets:
        for count in (100, 100_000):
            bench_automata(count, repeat)
        bench_ruleset(repeat)
    bench_targets(repeat)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
