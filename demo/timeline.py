"""The README's timeline: a few rounds of work with a recursive call, a JSON round trip, a first import and a
garbage collection each, and a short sleep between them (scripts/timeline-picture.sh traces it)."""
import gc
import json
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def parse(round):
    if round == 1:
        import decimal  # a module loaded for the first time, inside a call
    return json.loads(json.dumps({"round": round, "items": list(range(50))}))


def main():
    for round in range(3):
        fib(14)
        parse(round)
        gc.collect()
        time.sleep(0.01)


main()
