# Burns CPU in a known ratio: heavy() three times as long as light(), for SECONDS (argv[1]).
import sys
import time


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def heavy():
    spin(0.03)


def light():
    spin(0.01)


def main(seconds):
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        heavy()
        light()


main(float(sys.argv[1]))
